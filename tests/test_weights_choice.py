"""`--weights auto`: published weights when the bucket is reachable, else labelled random.

The local S3 server stands in for OpenFold's public bucket (EKSFOLD_S3_ENDPOINT, and
EKSFOLD_WEIGHTS_BUCKET for a fresh prefix per test). What it serves under the published name
`finetuning_ptm_2` is a real OpenFold checkpoint of the `tiny` preset with seeded RANDOM
(UNTRAINED) weights: the run must still treat it as the published path (downloaded once and
verified, digest in the manifest and every unit, relax on), which is the wiring under test.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import random_tiny_model
from eksfold.data.weights import cache_dir
from eksfold.weights_choice import choose_weights, published_name

pytestmark = pytest.mark.s3
PROJECT = Path(__file__).resolve().parents[1]
DEMO = PROJECT / "data" / "demo" / "targets.fasta"


@pytest.fixture(scope="module")
def untrained_checkpoint() -> bytes:
    """An OpenFold state dict for the tiny preset, seeded random values (UNTRAINED)."""
    import torch

    buf = io.BytesIO()
    torch.save(random_tiny_model(seed=11).state_dict(), buf)
    return buf.getvalue()


def serve(server, monkeypatch, body: bytes, sidecar: str | None = None) -> str:
    """Put `body` at <fresh prefix>/finetuning_ptm_2.pt on the stand-in bucket; point eksfold
    at that prefix. Returns the object's URI."""
    prefix = f"openfold_params-{os.urandom(4).hex()}"
    client = server.client()
    client.put_object(Bucket="openfold", Key=f"{prefix}/finetuning_ptm_2.pt", Body=body)
    if sidecar is not None:
        client.put_object(Bucket="openfold", Key=f"{prefix}/finetuning_ptm_2.pt.sha256",
                          Body=f"{sidecar}  finetuning_ptm_2.pt\n".encode())
    monkeypatch.setenv("EKSFOLD_WEIGHTS_BUCKET", f"s3://openfold/{prefix}")
    return f"s3://openfold/{prefix}/finetuning_ptm_2.pt"


def eksfold(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "eksfold.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_presets_name_their_published_weights():
    assert published_name("demo") == published_name("tiny") == "finetuning_ptm_2"
    assert published_name("model_3_ptm") == "finetuning_ptm_2"
    assert published_name("model_2") == "finetuning_2"
    assert published_name("finetuning_no_templ_ptm") == "finetuning_no_templ_ptm_1"
    assert published_name("initial_training") == "initial_training"


def test_explicit_specs_are_left_alone():
    assert choose_weights("random").weights == "random" and choose_weights("random").untrained
    assert "asked for" in choose_weights("random:3").line()
    assert choose_weights("finetuning_ptm_1").weights == "finetuning_ptm_1"


def test_reachable_bucket_folds_relaxes_and_records_the_digest(s3_as, monkeypatch, tmp_path,
                                                               untrained_checkpoint, small_db,
                                                               worker_env):
    server = s3_as("anon")                      # the public bucket is read unsigned
    digest = hashlib.sha256(untrained_checkpoint).hexdigest()
    serve(server, monkeypatch, untrained_checkpoint, sidecar=digest)
    root = tmp_path / "run"
    args = ["run", str(DEMO), "--root", str(root), "--preset", "tiny", "--weights", "auto",
            "--limit", "2", "--shortest", "--uniref90", str(small_db)]
    res = eksfold(*args)
    # 1: the relax units ran and refused the (untrained, collapsed) models, as they should
    assert res.returncode in (0, 1), res.stdout[-2000:] + res.stderr[-3000:]
    assert res.stdout.splitlines()[0] == (f"weights: finetuning_ptm_2, sha256 {digest[:12]} "
                                          "(published OpenFold parameters)")
    assert "UNTRAINED" not in res.stdout
    cached = cache_dir() / "finetuning_ptm_2.pt"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == digest
    assert Path(f"{cached}.sha256").read_text().split()[0] == digest   # verified, cached
    manifest = json.loads((root / "manifest.json").read_text())
    chosen = manifest["inputs"]["weights"]
    assert chosen["weights"] == "finetuning_ptm_2" and chosen["sha256"] == digest
    assert chosen["untrained"] is False and chosen["reason"] is None
    assert manifest["config"]["relax"]["enabled"] is True          # as for published weights
    targets = [t.name for t in (root / "targets").iterdir()]
    assert len(targets) == 2
    for tid in targets:
        infer = json.loads((root / "targets" / tid / "infer" / "metrics.json").read_text())
        assert infer["metrics"]["weights_sha256"] == digest
        assert infer["metrics"]["untrained"] is False
        # relax ran as for published weights; on these UNTRAINED weights' collapsed models it
        # may refuse with its own reason (never "not run")
        relax = json.loads((root / "targets" / tid / "relax" / "metrics.json").read_text())
        assert relax["status"] == "ok" or "degenerate" in relax["error"], relax["error"]
        assert relax["status"] != "ok" or (root / "targets" / tid / "relax" / "relaxed.pdb").is_file()
    # Accuracy against the shipped references is in the summary (scoring as for a real run).
    import pandas as pd
    df = pd.read_csv(root / "summary.csv")
    assert df.tm_score.notna().all() and df.lddt_ca.notna().all()
    assert (df.weights == "finetuning_ptm_2").all() and not df.untrained.any()
    # A rerun downloads nothing: the cached, verified file is used even with the bucket gone.
    mtime = cached.stat().st_mtime_ns
    monkeypatch.setenv("EKSFOLD_S3_ENDPOINT", "http://127.0.0.1:9")
    choice = choose_weights("auto", "tiny")
    assert choice.untrained   # auto probes the bucket first: offline, it says so ...
    assert "not reachable" in choice.reason
    assert cached.stat().st_mtime_ns == mtime  # ... and leaves the cache alone


def test_unreachable_bucket_falls_back_to_labelled_random_weights(s3_env, monkeypatch, tmp_path,
                                                                  small_db, worker_env):
    monkeypatch.setenv("EKSFOLD_S3_ENDPOINT", "http://127.0.0.1:9")   # nothing listens there
    monkeypatch.setenv("EKSFOLD_WEIGHTS_BUCKET", "s3://openfold/openfold_params")  # tiny: ask anyway
    root = tmp_path / "run"
    res = eksfold("run", str(DEMO), "--root", str(root), "--preset", "tiny", "--weights", "auto",
                  "--limit", "1", "--shortest", "--uniref90", str(small_db))
    assert res.returncode == 0, res.stderr[-3000:]
    first = res.stdout.splitlines()[0]
    assert first.startswith("UNTRAINED random weights: published weights finetuning_ptm_2 "
                            "could not be fetched: http://127.0.0.1:9 is not reachable")
    chosen = json.loads((root / "manifest.json").read_text())["inputs"]["weights"]
    assert chosen["weights"] == "random" and chosen["untrained"] is True
    assert chosen["line"] == first
    assert not list(root.glob("targets/*/relax"))   # untrained: no relax stage
    assert not list(cache_dir().glob("*.pt"))


def test_tiny_preset_does_not_download_the_published_network(monkeypatch):
    monkeypatch.delenv("EKSFOLD_WEIGHTS_BUCKET", raising=False)
    monkeypatch.setenv("EKSFOLD_S3_ENDPOINT", "http://127.0.0.1:9")   # would fail if asked
    choice = choose_weights("auto", "tiny")
    assert choice.untrained and "test-sized network (2 Evoformer blocks)" in choice.reason


def test_checkpoint_of_another_architecture_is_not_used(s3_as, monkeypatch,
                                                       untrained_checkpoint):
    """The tiny checkpoint served for the full-size demo preset: downloaded, verified, refused."""
    server = s3_as("anon")
    serve(server, monkeypatch, untrained_checkpoint,
          sidecar=hashlib.sha256(untrained_checkpoint).hexdigest())
    choice = choose_weights("auto", "demo")
    assert choice.untrained
    assert "finetuning_ptm_2 has 2 Evoformer blocks, preset 'demo' has 48" in choice.reason


def test_missing_object_is_named(s3_as, monkeypatch):
    s3_as("anon")
    monkeypatch.setenv("EKSFOLD_WEIGHTS_BUCKET", "s3://openfold/no-such-prefix")
    choice = choose_weights("auto", "demo")
    assert choice.untrained
    assert "s3://openfold/no-such-prefix/finetuning_ptm_2.pt does not exist" in choice.reason


def test_corrupt_download_fails_verification_and_keeps_nothing(s3_as, monkeypatch,
                                                               untrained_checkpoint):
    """The served bytes do not match the published SHA-256: no file is kept, the run gets
    random weights and the reason says the download failed verification."""
    server = s3_as("anon")
    wrong = hashlib.sha256(b"the checkpoint that was published").hexdigest()
    uri = serve(server, monkeypatch, untrained_checkpoint, sidecar=wrong)
    choice = choose_weights("auto", "tiny")
    assert choice.untrained and choice.source == uri
    assert "failed verification" in choice.reason and wrong in choice.reason
    assert not list(cache_dir().glob("finetuning_ptm_2.pt*"))   # no file, no part
    assert choice.line().startswith("UNTRAINED random weights: published weights "
                                    "finetuning_ptm_2 could not be fetched: downloading")
