"""The score stage reads reference structures from an s3:// folder (the local S3 server), as a
run on EKS keeps them beside its run root: scores equal those against the same file on disk; a
missing reference is an empty score, an unreadable one fails that unit with the file's name."""
from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from conftest import PROJECT
from eksfold import metrics
from eksfold.config import ScoreConfig
from eksfold.errors import TargetError
from eksfold.stages.score import ScoreStage
from eksfold.target_files import read_fasta
from s3_server import s3_bucket_uri

pytestmark = pytest.mark.s3
CAMEO2022 = PROJECT / "data" / "cameo2022"


def stage_for(references: str) -> ScoreStage:
    stage = ScoreStage.__new__(ScoreStage)      # run_unit reads only the run's score config
    stage.run = stage.config = SimpleNamespace(score=ScoreConfig(references=references))
    return stage


@pytest.fixture
def refs_on_s3(s3_env):
    """The two shortest CAMEO 2022 references under a fresh s3:// prefix, the second broken."""
    targets = sorted(read_fasta(CAMEO2022 / "targets.fasta"), key=lambda t: t.length)[:3]
    uri = s3_bucket_uri(s3_env, "refs")
    bucket, prefix = uri[len("s3://"):].split("/", 1)
    client = s3_env.client()
    good, bad, absent = targets
    client.put_object(Bucket=bucket, Key=f"{prefix}/{good.pdb_id.lower()}.{good.chain}.pdb",
                      Body=(CAMEO2022 / "structures" / f"{good.pdb_id.lower()}.{good.chain}.pdb")
                      .read_bytes())
    client.put_object(Bucket=bucket, Key=f"{prefix}/{bad.pdb_id.lower()}.{bad.chain}.pdb",
                      Body=b"HEADER    NOT A STRUCTURE\nEND\n")
    return uri, good, bad, absent


def model_dir(tmp_path, target):
    """A prediction folder whose model is another CAMEO structure (any model scores)."""
    d = tmp_path / target.id / "infer"
    d.mkdir(parents=True)
    shutil.copy(CAMEO2022 / "structures" / f"{target.pdb_id.lower()}.{target.chain}.pdb",
                d / "unrelaxed.pdb")
    return d


def test_scores_against_references_on_s3(refs_on_s3, tmp_path):
    uri, good, bad, absent = refs_on_s3
    stage = stage_for(uri)
    assert stage.reference(good) == f"{uri}/{good.pdb_id.lower()}.{good.chain}.pdb"
    assert stage.reference(absent) is None
    got = stage.run_unit(good, model_dir(tmp_path, good), tmp_path / good.id / "score")
    local = metrics.compare_structures(
        (tmp_path / good.id / "infer" / "unrelaxed.pdb").read_text(),
        CAMEO2022 / "structures" / f"{good.pdb_id.lower()}.{good.chain}.pdb")
    assert got["tm_score"] == pytest.approx(local["tm_score"]) and got["tm_score"] > 0.99
    assert got["reference"].startswith("s3://")
    assert (tmp_path / good.id / "score" / "scores.json").is_file()
    empty = stage.run_unit(absent, model_dir(tmp_path, absent), tmp_path / absent.id / "score")
    assert empty["tm_score"] is None and empty["reference"] is None
    with pytest.raises(TargetError, match=f"reference {bad.pdb_id.lower()}.{bad.chain}.pdb "
                                          "not scored"):
        stage.run_unit(bad, model_dir(tmp_path, bad), tmp_path / bad.id / "score")


def test_pipeline_keeps_an_s3_references_folder(refs_on_s3, monkeypatch):
    from eksfold.pipeline import _score_config

    uri = refs_on_s3[0]
    monkeypatch.setenv("EKSFOLD_REFERENCES", uri)
    assert _score_config(CAMEO2022 / "targets.fasta").references == uri   # not folded to s3:/
