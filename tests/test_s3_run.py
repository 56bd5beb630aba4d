"""A run whose root is on S3, end to end: the real pipeline (local executor, worker subprocesses,
jackhmmer, OpenFold tiny preset) against the local S3 server, with weights resolved by name from
a user bucket into the cache, and nothing left behind but the run root and the weights cache."""
import hashlib
import io

import numpy as np
import pytest
from conftest import random_tiny_model
import torch

from eksfold.config import DatabaseConfig
from eksfold.pipeline import run_pipeline
from eksfold.progress import TextProgress
from eksfold.results import load_summary
from eksfold.run import Run
from eksfold.storage import open_store
from s3_server import s3_bucket_uri

pytestmark = pytest.mark.s3

SEQS = {"s3-one": "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF",
        "s3-two": "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSG"}


@pytest.fixture
def tiny_checkpoint_in_bucket(s3_env, monkeypatch):
    """A tiny-preset OpenFold checkpoint (every parameter random) published in a user bucket
    as `finetuning_ptm_2.pt`; EKSFOLD_WEIGHTS_BUCKET points published names at it."""
    model = random_tiny_model(seed=11)
    params = open_store(s3_bucket_uri(s3_env, "params"))
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    params.write_bytes("finetuning_ptm_2.pt", buf.getvalue())
    monkeypatch.setenv("EKSFOLD_WEIGHTS_BUCKET", params.uri())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def test_run_with_its_root_on_s3_end_to_end(s3_env, tiny_checkpoint_in_bucket, small_db, worker_env,
                                            tmp_path, monkeypatch):
    monkeypatch.setenv("EKSFOLD_SCRATCH", str(tmp_path / "scratch"))
    fasta = tmp_path / "in.fasta"
    fasta.write_text("".join(f">{k}\n{v}\n" for k, v in SEQS.items()))
    root = s3_bucket_uri(s3_env, "runs") + "/demo"
    run = run_pipeline(fasta, root, preset="tiny", weights="finetuning_ptm_2", relax=False,
                       databases=DatabaseConfig(uniref90=str(small_db)), reporter=TextProgress(bars=False))
    assert run.root == root
    df = load_summary(root)  # read back from S3
    assert sorted(df.target) == sorted(SEQS)
    assert (df.align_status == "done").all() and (df.infer_status == "done").all(), df.error.tolist()
    assert not df.untrained.any() and (df.weights == "finetuning_ptm_2").all()
    assert (df.mean_plddt != 50.0).all()  # real (non-zero-initialised) weights were loaded

    store = open_store(root)
    keys = set(store.list())
    assert {"manifest.json", "targets.json", "summary.csv"} <= keys
    for tid in SEQS:
        assert {f"targets/{tid}/align/uniref90_hits.sto", f"targets/{tid}/align/metrics.json",
                f"targets/{tid}/infer/unrelaxed.pdb", f"targets/{tid}/infer/plddt.npy",
                f"targets/{tid}/infer/metrics.json", f"logs/infer/{tid}.log"} <= keys
        metrics = store.read_json(f"targets/{tid}/infer/metrics.json")
        assert metrics["status"] == "ok"
        assert metrics["metrics"]["weights_sha256"] == tiny_checkpoint_in_bucket
        plddt = np.load(io.BytesIO(store.read_bytes(f"targets/{tid}/infer/plddt.npy")))
        assert plddt.shape == (len(SEQS[tid]),)
        pdb = store.read_text(f"targets/{tid}/infer/unrelaxed.pdb")
        assert sum(1 for line in pdb.splitlines() if line.startswith("ATOM") and line[12:16] == " CA ") == len(SEQS[tid])

    # the weights were fetched once into the cache (verified, with its sidecar)
    cache = tmp_path / "cache" / "weights" / "finetuning_ptm_2.pt"
    assert hashlib.sha256(cache.read_bytes()).hexdigest() == tiny_checkpoint_in_bucket
    assert cache.with_name("finetuning_ptm_2.pt.sha256").is_file()
    assert not [p for p in (tmp_path / "scratch").rglob("*") if p.is_file()]  # scratch cleaned

    # rerun: every unit is skipped, no object is rewritten
    def stamp(k):
        head = store.head(k)
        return head["ETag"], head["LastModified"]
    before = {k: stamp(k) for k in keys if k.endswith("metrics.json")}
    run_pipeline(fasta, root, preset="tiny", weights="finetuning_ptm_2", relax=False,
                 databases=DatabaseConfig(uniref90=str(small_db)), reporter=TextProgress(bars=False))
    assert before == {k: stamp(k) for k in before}
    assert Run.open(root).unit_status("infer", "s3-one") == "done"
