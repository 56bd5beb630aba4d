"""eksfold.data against a real local S3 server and a local HTTP server: weights (resume,
integrity, skip, errors), precomputed alignments, databases, references, the CLI and the bench."""
import gzip
import hashlib
import http.server
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from eksfold.config import DatabaseConfig
from eksfold.data.alignments import fetch_alignments
from eksfold.data.databases import DATABASES, MODES, database_config, describe, manifest
from eksfold.data.prepare import prepare_databases
from local_s3 import FaultyProxy
from eksfold.data.references import ReferenceError, fetch_reference, fetch_references
from eksfold.data.transfer import IntegrityError, fetch
from eksfold.data.weights import cache_dir, resolve_weights
from eksfold.errors import ConfigError, StorageError
from eksfold.storage import open_store
from s3_server import STRUCTURES, s3_bucket_uri, two_chain_mmcif

pytestmark = pytest.mark.s3
PROJECT = Path(__file__).resolve().parents[1]
MiB = 1 << 20
BIG = "s3://openfold/openfold_params/finetuning_ptm_1.pt"      # 24 MiB, multipart, no sidecar
SMALL = "s3://openfold/openfold_params/finetuning_ptm_2.pt"    # ~1 MiB, .sha256 sidecar


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def via(monkeypatch, endpoint: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)


# -- weights -------------------------------------------------------------------------------
def test_published_name_downloads_anonymously_into_the_cache_then_skips_offline(s3_as, monkeypatch):
    server = s3_as("anon")  # no credentials at all: the public bucket is read unsigned
    path = resolve_weights("finetuning_ptm_2")
    assert path == cache_dir() / "finetuning_ptm_2.pt" and str(path).startswith(os.environ["EKSFOLD_CACHE"])
    assert sha256(path) == server.seed.sha256[SMALL]
    assert Path(f"{path}.sha256").read_text().split()[0] == sha256(path)
    import torch
    assert set(torch.load(path, weights_only=True)) == {"evoformer.blocks.0.weight", "structure_module.linear.weight"}
    # Present and verified: no request at all, so it works with the endpoint unreachable.
    monkeypatch.setenv("EKSFOLD_S3_ENDPOINT", "http://127.0.0.1:9")
    assert resolve_weights("finetuning_ptm_2") == path
    assert resolve_weights(str(path)) == path  # a local path is used as is


def test_multipart_object_verified_by_its_etag(s3_env, tmp_path):
    result = fetch(BIG, tmp_path / "w.pt", progress=False)
    assert result.size == 24 * MiB + s3_env.seed.size[BIG] - 24 * MiB
    assert result.sha256 == s3_env.seed.sha256[BIG] and not result.skipped
    assert not list(tmp_path.glob("*.part*"))


def test_cut_connection_keeps_the_part_and_a_rerun_resumes_with_a_range_get(s3_env, monkeypatch, tmp_path):
    dest = tmp_path / "w.pt"
    with FaultyProxy(s3_env.endpoint, cut_after=10 * MiB) as proxy:
        via(monkeypatch, proxy.endpoint)
        with pytest.raises(StorageError) as err:
            fetch(BIG, dest, progress=False, max_reconnects=0)
    assert "run again to resume" in err.value.hint
    part = Path(f"{dest}.part").stat().st_size
    assert 0 < part <= 10 * MiB and not dest.exists()
    via(monkeypatch, s3_env.endpoint)
    result = fetch(BIG, dest, progress=False)
    assert result.resumed_from == part and result.transferred == s3_env.seed.size[BIG] - part
    assert sha256(dest) == s3_env.seed.sha256[BIG]
    assert not Path(f"{dest}.part").exists() and not Path(f"{dest}.part.json").exists()


def test_killed_download_process_resumes_where_it_stopped(s3_env, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    part = cache / "finetuning_ptm_1.pt.part"
    with FaultyProxy(s3_env.endpoint, rate=6 * MiB) as proxy:  # slow enough to kill mid-way
        via(monkeypatch, proxy.endpoint)
        proc = subprocess.Popen([sys.executable, "-m", "eksfold.cli", "data", "weights",
                                 "finetuning_ptm_1", "--cache", str(cache)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size >= 6 * MiB):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    kept = part.stat().st_size
    assert 6 * MiB <= kept < 24 * MiB
    via(monkeypatch, s3_env.endpoint)
    result = fetch(BIG, cache / "finetuning_ptm_1.pt", progress=False)
    assert result.resumed_from == kept and result.transferred == s3_env.seed.size[BIG] - kept
    assert result.sha256 == s3_env.seed.sha256[BIG]


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with ``Range: bytes=N-`` support (python's own handler ignores Range)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        spec = self.headers.get("Range")
        if not spec:
            return super().do_GET()
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()[int(spec.split("=")[1].rstrip("-")):]
        self.send_response(206)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.mark.parametrize("ranges", [True, False])
def test_https_style_source_resumes_with_range_or_restarts_without(tmp_path, ranges):
    (tmp_path / "www").mkdir()
    data = os.urandom(3 * MiB)
    (tmp_path / "www" / "w.pt").write_bytes(data)
    handler = RangeHandler if ranges else http.server.SimpleHTTPRequestHandler
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(tmp_path / "www")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/w.pt"
    try:
        dest = tmp_path / "w.pt"
        Path(f"{dest}.part").write_bytes(data[:MiB])  # left by an interrupted attempt
        Path(f"{dest}.part.json").write_text(json.dumps({"source": url, "etag": None, "size": len(data)}))
        result = fetch(url, dest, sha256=hashlib.sha256(data).hexdigest(), progress=False)
        assert dest.read_bytes() == data
        assert (result.resumed_from, result.transferred) == ((MiB, 2 * MiB) if ranges else (0, 3 * MiB))
    finally:
        server.shutdown()
        server.server_close()


def test_concurrent_downloads_of_one_file_take_turns(s3_env, monkeypatch, tmp_path):
    """Two pods filling the same shared cache: one downloads, the other waits and skips."""
    cache = tmp_path / "shared-weights"
    with FaultyProxy(s3_env.endpoint, rate=8 * MiB) as proxy:  # ~3 s: the two overlap
        via(monkeypatch, proxy.endpoint)
        cmd = [sys.executable, "-m", "eksfold.cli", "data", "weights", "finetuning_ptm_1", "--cache", str(cache)]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    states = sorted("downloaded" if "(downloaded)" in out else "present" for out, _ in outs)
    assert states == ["downloaded", "present"], outs
    assert sum("waiting for another process" in err for _, err in outs) == 1
    assert sha256(cache / "finetuning_ptm_1.pt") == s3_env.seed.sha256[BIG]
    assert sorted(p.name for p in cache.iterdir()) == ["finetuning_ptm_1.pt", "finetuning_ptm_1.pt.sha256"]


def test_broken_streams_are_resumed_within_one_call(s3_env, monkeypatch, tmp_path):
    with FaultyProxy(s3_env.endpoint, cut_after=5 * MiB, cuts=2) as proxy:
        via(monkeypatch, proxy.endpoint)
        result = fetch(BIG, tmp_path / "w.pt", progress=False)
    assert result.reconnects == 2 and result.transferred == s3_env.seed.size[BIG]
    assert result.sha256 == s3_env.seed.sha256[BIG]


def test_object_changed_between_attempts_restarts_instead_of_splicing(s3_env, monkeypatch, tmp_path):
    store = open_store(s3_bucket_uri(s3_env, "changed"))
    v1, v2 = os.urandom(12 * MiB), os.urandom(12 * MiB)
    store.write_bytes("w.pt", v1)
    with FaultyProxy(s3_env.endpoint, cut_after=4 * MiB) as proxy:
        via(monkeypatch, proxy.endpoint)
        with pytest.raises(StorageError):
            fetch(store.uri("w.pt"), tmp_path / "w.pt", progress=False, max_reconnects=0)
    via(monkeypatch, s3_env.endpoint)
    store.write_bytes("w.pt", v2)
    result = fetch(store.uri("w.pt"), tmp_path / "w.pt", progress=False)
    assert result.resumed_from == 0 and (tmp_path / "w.pt").read_bytes() == v2


def test_checksum_mismatch_is_detected_and_nothing_is_kept(s3_env, tmp_path):
    with pytest.raises(IntegrityError) as err:
        fetch(SMALL, tmp_path / "w.pt", sha256="0" * 64, progress=False)
    assert "sha256" in str(err.value)
    assert list(tmp_path.iterdir()) == []
    # A wrong sidecar published next to the object is caught the same way.
    store = open_store(s3_bucket_uri(s3_env, "sidecar"))
    store.write_bytes("w.pt", b"weights")
    store.write_text("w.pt.sha256", "f" * 64 + "  w.pt\n")
    with pytest.raises(IntegrityError):
        fetch(store.uri("w.pt"), tmp_path / "w.pt", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_corrupted_partial_file_fails_the_etag_check(s3_env, tmp_path):
    dest = tmp_path / "w.pt"
    fetch(BIG, dest, progress=False)
    good = dest.read_bytes()
    dest.unlink()
    # a part file with the right length prefix but flipped bytes, as a bad disk would leave it
    Path(f"{dest}.part").write_bytes(bytes(b ^ 0xFF for b in good[:1000]) + good[1000:9 * MiB])
    head = open_store("s3://openfold/openfold_params").head("finetuning_ptm_1.pt")
    Path(f"{dest}.part.json").write_text(json.dumps({"source": BIG, "etag": head["ETag"], "size": len(good)}))
    with pytest.raises(IntegrityError) as err:
        fetch(BIG, dest, progress=False)
    assert "ETag" in str(err.value) and not dest.exists() and not Path(f"{dest}.part").exists()


def test_tampered_cached_file_is_replaced_when_verifying(s3_env, tmp_path):
    dest = fetch(SMALL, tmp_path / "w.pt", progress=False).path
    assert fetch(SMALL, dest, progress=False).skipped
    data = bytearray(dest.read_bytes())
    data[100] ^= 0xFF
    dest.write_bytes(bytes(data))  # newer than its sidecar: rehashed, mismatch, downloaded again
    result = fetch(SMALL, dest, progress=False)
    assert not result.skipped and sha256(dest) == s3_env.seed.sha256[SMALL]
    # a file put in the cache by other means (no sidecar) is adopted after checking it
    Path(f"{dest}.sha256").unlink()
    result = fetch(SMALL, dest, progress=False)
    assert result.skipped and result.transferred == 0 and Path(f"{dest}.sha256").exists()


def test_denied_missing_and_unknown_weights_give_clear_errors(s3_as, monkeypatch, tmp_path):
    s3_as("reader")  # valid credentials without access to the private bucket
    with pytest.raises(StorageError) as err:
        resolve_weights("s3://private/secret/finetuning_ptm_2.pt")
    assert "access denied" in str(err.value) and "IRSA" in err.value.hint
    s3_as("admin")  # (SeaweedFS checks permissions first: a reader gets 403 for any bucket)
    monkeypatch.setenv("EKSFOLD_WEIGHTS_BUCKET", "s3://no-such-bucket-eksfold/params")
    with pytest.raises(StorageError) as err:
        resolve_weights("finetuning_ptm_2")
    assert "does not exist" in str(err.value)
    monkeypatch.delenv("EKSFOLD_WEIGHTS_BUCKET")
    with pytest.raises(FileNotFoundError):
        resolve_weights("s3://openfold/openfold_params/no_such_params.pt")
    with pytest.raises(ConfigError, match="finetuning_ptm_2"):
        resolve_weights("finetuning_ptm_9")
    with pytest.raises(FileNotFoundError):
        resolve_weights(str(tmp_path / "missing" / "w.pt"))
    assert not list(cache_dir().glob("*")) if cache_dir().exists() else True


def test_user_bucket_with_credentials(s3_env, tmp_path):
    path = resolve_weights("s3://private/secret/finetuning_ptm_2.pt", cache=tmp_path / "fsx-weights")
    assert path.parent == tmp_path / "fsx-weights" and sha256(path) == s3_env.seed.sha256[SMALL]


# -- precomputed alignments ----------------------------------------------------------------
def test_precomputed_alignments_are_fetched_flat_or_none(s3_as, tmp_path):
    server = s3_as("anon")
    out = fetch_alignments("7RUP", "A", tmp_path / "align")
    assert out == tmp_path / "align"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == server.seed.alignments  # pdb/ skipped
    assert fetch_alignments("7rup", "Z", tmp_path / "none") is None and not (tmp_path / "none").exists()


# -- references ----------------------------------------------------------------------------
def ca_coords(pdb_text: str) -> dict:
    out = {}
    for line in pdb_text.splitlines():
        if line.startswith(("ATOM", "HETATM")) and line[12:16].strip() == "CA" and line[16] in " A":
            out[(line[22:27].strip(), line[17:20])] = tuple(float(line[i:i + 8]) for i in (30, 38, 46))
    return out


@pytest.fixture
def pdb_http(tmp_path):
    """A local HTTP server with an RCSB-like /download/<PDB>.cif for a real two-chain entry."""
    root = tmp_path / "www" / "download"
    root.mkdir(parents=True)
    (root / "7RUP.cif").write_text(two_chain_mmcif({"A": STRUCTURES / "7rup.A.pdb",
                                                    "B": STRUCTURES / "7tgi.B.pdb"}, "7rup"))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/download/{{PDB}}.cif"
    server.shutdown()
    server.server_close()


def test_reference_chain_extracted_from_an_http_mmcif(pdb_http, tmp_path):
    out = fetch_reference("7rup", "A", tmp_path / "refs", base_url=pdb_http)
    assert out == tmp_path / "refs" / "7rup.A.pdb"
    got, want = ca_coords(out.read_text()), ca_coords((STRUCTURES / "7rup.A.pdb").read_text())
    assert got == want and len(got) > 50  # same residues, author numbering, coordinates
    assert {line[21] for line in out.read_text().splitlines() if line.startswith("ATOM")} == {"A"}
    assert not [line for line in out.read_text().splitlines() if line.startswith("ATOM") and line[16] not in " A"]
    with pytest.raises(ReferenceError, match="no chain 'C'"):
        fetch_reference("7rup", "C", tmp_path / "refs", base_url=pdb_http)
    with pytest.raises(FileNotFoundError):
        fetch_reference("1abc", "A", tmp_path / "refs", base_url=pdb_http)
    results = fetch_references([("7RUP", "B"), ("1abc", "A")], tmp_path / "refs", base_url=pdb_http,
                               progress=False)
    assert results["7rup.B"] == tmp_path / "refs" / "7rup.B.pdb"
    assert isinstance(results["1abc.A"], FileNotFoundError)


def test_reference_from_the_pdbsnapshots_bucket_layout(s3_as, tmp_path):
    s3_as("anon")
    base = "s3://pdbsnapshots/20240101/pub/pdb/data/structures/divided/mmCIF/{mid}/{pdb}.cif.gz"
    out = fetch_reference("7RUP", "B", tmp_path, base_url=base)
    assert ca_coords(out.read_text()) == ca_coords((STRUCTURES / "7tgi.B.pdb").read_text())


def test_cli_references_from_a_cameo_style_fasta(pdb_http, tmp_path):
    seq = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
    fasta = tmp_path / "t.fasta"
    fasta.write_text(f">Cameo_3D target id: x | pdbid: 7RUP | chain: B\n{seq}\n"
                     f">Cameo_3D target id: y | pdbid: 1ABC | chain: A\n{seq}\n")
    res = subprocess.run([sys.executable, "-m", "eksfold.cli", "data", "references", str(fasta),
                          "--out", str(tmp_path / "refs"), "--base-url", pdb_http],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "1 of 2 references" in res.stdout and "1abc.A" in res.stderr
    assert (tmp_path / "refs" / "7rup.B.pdb").is_file()


# -- databases -----------------------------------------------------------------------------
def test_manifest_modes_sizes_and_the_cluster_layout_agree():
    assert {d.name for d in manifest("reduced")} == {"uniref90", "mgnify", "small_bfd", "pdb70",
                                                     "pdb_seqres", "pdb_mmcif"}
    assert {"pdb70", "pdb_seqres", "pdb_mmcif"} <= {d.name for d in manifest("full")}   # templates
    assert {"bfd", "uniref30"} <= {d.name for d in manifest("full")}
    assert "uniclust30" in MODES["casp14"]
    for db in DATABASES.values():
        assert db.sources and db.size_gb > 0 and db.download_gb >= 0
    assert 150 < sum(d.download_gb for d in manifest("reduced")) < 200
    assert "total" in describe("full")
    with pytest.raises(ConfigError):
        manifest("huge")
    # the cluster's data-preparation script writes the same layout
    script = (PROJECT / "cluster" / "data-prep" / "prepare-data.sh").read_text()
    for name in ("uniref90", "mgnify", "small_bfd", "pdb70", "pdb_seqres", "bfd", "uniref30",
                 "uniprot"):
        assert DATABASES[name].sources[0].url.split("/")[-1] in script.replace("$GCS", "")


def make_mirror(store) -> dict:
    """A small database mirror laid out like the real sources: <db>/<file of the source>."""
    fasta = "".join(f">UniRef90_S{i} n=1\n{'MKTAYIAKQRQISFVKSHFSRQ'[i % 5:]}{'G' * i}\n" for i in range(20))
    store.write_bytes("uniref90/uniref90.fasta.gz", gzip.compress(fasta.encode()))
    store.write_bytes("mgnify/mgy_clusters_2022_05.fa.gz", gzip.compress(b">MGYP000000000001\nMKVL\n"))
    store.write_bytes("small_bfd/bfd-first_non_consensus_sequences.fasta.gz", gzip.compress(b">bfd1\nMKV\n"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("pdb70_a3m.ffdata", "pdb70_a3m.ffindex", "pdb70_hhm.ffdata", "pdb70_hhm.ffindex",
                     "pdb70_cs219.ffdata", "pdb70_cs219.ffindex", "md5sum", "pdb70_clu.tsv"):
            data = f"{name}\n".encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    store.write_bytes("pdb70/pdb70_from_mmcif_200401.tar.gz", buf.getvalue())
    for pdb, chain_file in (("7rup", "7rup.A.pdb"), ("7tgi", "7tgi.B.pdb")):
        cif = two_chain_mmcif({"A": STRUCTURES / chain_file}, pdb).encode()
        store.write_bytes(f"pdb_mmcif/mmCIF/{pdb[1:3]}/{pdb}.cif.gz", gzip.compress(cif))
    store.write_text("pdb_mmcif/obsolete.dat", "OBSLTE    31-JUL-94 116L     216L\n")
    store.write_text("pdb_seqres/pdb_seqres.txt", ">7rup_A mol:protein length:4  X\nMKVL\n")
    return {"uniref90": fasta}


def test_prepare_databases_from_a_mirror_then_rerun_skips(s3_env, tmp_path):
    mirror = open_store(s3_bucket_uri(s3_env, "dbmirror"))
    expected = make_mirror(mirror)
    dest = tmp_path / "db"
    done = prepare_databases("reduced", dest, mirror=mirror.uri(), progress=False)
    assert [r.name for r in done] == list(MODES["reduced"]) and not any(r.skipped for r in done)
    assert (dest / "uniref90" / "uniref90.fasta").read_text() == expected["uniref90"]
    assert (dest / "small_bfd" / "bfd-first_non_consensus_sequences.fasta").read_text() == ">bfd1\nMKV\n"
    assert (dest / "pdb70" / "pdb70_a3m.ffdata").is_file()
    assert sorted(p.name for p in (dest / "pdb_mmcif" / "mmcif_files").iterdir()) == ["7rup.cif", "7tgi.cif"]
    assert (dest / "pdb_mmcif" / "obsolete.dat").is_file()
    assert not list(dest.rglob("*.gz")) and not list(dest.rglob("*.part"))  # archives removed
    assert all((dest / name / ".done").is_file() for name in MODES["reduced"])
    config = database_config("reduced", dest)
    assert isinstance(config, DatabaseConfig)
    assert Path(config.uniref90).is_file() and Path(config.mgnify).is_file()
    assert Path(config.small_bfd).is_file()   # every database of the mode has its field
    assert list(Path(config.pdb70).parent.glob("pdb70_*"))
    # the template databases fill their fields too (issue 20)
    assert Path(config.pdb_seqres).read_text().startswith(">7rup_A mol:protein")
    assert Path(config.template_mmcif_dir).is_dir() and Path(config.obsolete_pdbs).is_file()
    again = prepare_databases("reduced", dest, mirror=mirror.uri(), progress=False)
    assert all(r.skipped for r in again)


def test_interrupted_mmcif_mirror_resumes_per_file(s3_env, tmp_path):
    mirror = open_store(s3_bucket_uri(s3_env, "dbmirror"))
    make_mirror(mirror)
    dest = tmp_path / "db"
    files = dest / "pdb_mmcif" / "mmcif_files"
    files.mkdir(parents=True)
    (files / "7rup.cif").write_text("already here")  # from an earlier, interrupted attempt
    prepare_databases("reduced", dest, mirror=mirror.uri(), only=["pdb_mmcif"], progress=False)
    assert (files / "7rup.cif").read_text() == "already here" and (files / "7tgi.cif").stat().st_size > 1000


def test_uniprot_is_trembl_then_swissprot_and_mmseqs2_mode_gets_its_mmseqs2_database(
        s3_env, small_db, tmp_path):
    """The catalogue's uniprot (AlphaFold's download_uniprot.sh sources) from a mirror of
    UniProt-format records of the stand-in: concatenated, its MMseqs2 database built in mode
    colabfold, and the run's pairing finds both (issue 24)."""
    from eksfold.alignment.pairing import plan
    from eksfold.config import AlignConfig, InferConfig, RunConfig

    db = DATABASES["uniprot"]
    assert [src.url.rsplit("/", 1)[1] for src in db.sources] == [
        "uniprot_trembl.fasta.gz", "uniprot_sprot.fasta.gz"]
    assert all(src.url.startswith("https://ftp.ebi.ac.uk/pub/databases/uniprot/current_release/"
                                  "knowledgebase/complete/") for src in db.sources)
    assert db.download_gb == 53 and db.size_gb == 105 and db.role == "uniprot"
    assert "uniprot" in MODES["full"] and "uniprot" in MODES["colabfold"]
    assert "uniprot" not in MODES["reduced"] and "uniprot" in describe("full")
    records = [">" + r for r in small_db.read_text().split("\n>")[1:31]]
    trembl = "".join(r.rstrip("\n") + "\n" for r in records if r.startswith(">tr|"))
    sprot = "".join(r.rstrip("\n") + "\n" for r in records if r.startswith(">sp|"))
    assert trembl and sprot
    mirror = open_store(s3_bucket_uri(s3_env, "unimirror"))
    mirror.write_bytes("uniprot/uniprot_trembl.fasta.gz", gzip.compress(trembl.encode()))
    mirror.write_bytes("uniprot/uniprot_sprot.fasta.gz", gzip.compress(sprot.encode()))
    dest = tmp_path / "db"
    # any mode's --only names it; a reduced set gains no MMseqs2 database
    [done] = prepare_databases("reduced", dest, mirror=mirror.uri(), only=["uniprot"],
                               progress=False)
    fasta = dest / "uniprot" / "uniprot.fasta"
    assert done.path == fasta and fasta.read_text() == trembl + sprot
    assert sorted(p.name for p in fasta.parent.iterdir()) == [".done", "uniprot.fasta"]
    with pytest.raises(ConfigError, match="not in mode 'reduced' nor in the database catalogue"):
        prepare_databases("reduced", dest, mirror=mirror.uri(), only=["uniprot_x"])
    [again] = prepare_databases("colabfold", dest, mirror=mirror.uri(), only=["uniprot"],
                                progress=False)
    assert again.skipped and (dest / "uniprot" / "mmseqs" / "uniprot.dbtype").is_file()
    config = RunConfig(databases=database_config("colabfold", dest),
                       infer=InferConfig(preset="of3-tiny"), align=AlignConfig(msa_mode="mmseqs2"))
    assert config.databases.uniprot == str(fasta)
    pairing = plan(config)
    assert pairing.active and pairing.database == str(dest / "uniprot" / "mmseqs" / "uniprot")


# -- CLI and benchmark ---------------------------------------------------------------------
def test_cli_weights_and_databases(s3_env, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "eksfold.cli", "data", *args],
                              capture_output=True, text=True, timeout=120)
    res = run("weights", "--list")
    assert res.returncode == 0 and "finetuning_ptm_2" in res.stdout.split()
    res = run("weights", "finetuning_ptm_2", "--cache", str(tmp_path / "w"))
    assert res.returncode == 0 and "downloaded" in res.stdout, res.stderr
    res = run("weights", "finetuning_ptm_2", "--cache", str(tmp_path / "w"))
    assert "present" in res.stdout
    res = run("weights", "finetuning_ptm_9", "--cache", str(tmp_path / "w"))
    assert res.returncode == 2 and "unknown OpenFold weights" in res.stderr
    res = run("databases", "show", "--mode", "full")
    assert res.returncode == 0 and "uniref30" in res.stdout and "bfd" in res.stdout
    res = run("alignments", "7rup_A", "--out", str(tmp_path / "aln"))
    assert res.returncode == 0 and (tmp_path / "aln" / "7rup_A" / "uniref90_hits.a3m").is_file()


def test_progress_bar_reports_to_stderr(s3_env, tmp_path, capsys):
    fetch(SMALL, tmp_path / "w.pt", progress=True, desc="weights test")
    assert "weights test" in capsys.readouterr().err


def test_transfer_bench_against_the_local_server(s3_env):
    from bench_transfer import bench_transfer, format_table
    rows = bench_transfer([4], endpoint=s3_env.endpoint, show=False)
    ops = {r["operation"]: r for r in rows}
    assert len(rows) == 6
    for r in rows:   # each rate is the bytes it moved over the time it took
        if r["transferred_mib"] > 0:
            assert r["seconds"] > 0 and r["mib_per_s"] == pytest.approx(r["transferred_mib"] / r["seconds"])
    skip = ops["fetch again (present: skip)"]
    assert skip["transferred_mib"] == 0 and skip["seconds"] < 0.5
    resumed = ops["fetch, cut at 50%, rerun"]
    assert resumed["transferred_mib"] == pytest.approx(4.0)
    assert "2 reconnects" in ops["fetch, 2 cuts, in-call resume"]["note"]
    assert "MiB/s" in format_table(rows)
