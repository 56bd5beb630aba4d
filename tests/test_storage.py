"""One Store test suite, run against every backend (LocalStore, S3Store on a real local server).

Like fsspec's AbstractTests: the behaviour a run root relies on is written once and each backend
must pass all of it. Backend-specific checks (multipart ETags, error mapping) follow.
"""
import hashlib
import os
import threading
from pathlib import Path

import pytest

from eksfold.errors import StorageError
from eksfold.storage import open_store
from eksfold.storage.s3 import S3Store
from s3_server import s3_bucket_uri

MiB = 1 << 20


def test_uri_names_where_the_object_really_is(store):
    """Written through the Store, read back through the back end's own interface."""
    store.write_text("a/b.txt", "written through the store")
    uri = store.uri("a/b.txt")
    if uri.startswith("s3://"):
        bucket, key = uri[len("s3://"):].split("/", 1)
        body = store.client.get_object(Bucket=bucket, Key=key)["Body"].read()
    else:
        body = Path(uri).read_bytes()
    assert body == b"written through the store"


def test_write_read_text_json_roundtrip(store):
    store.write_text("notes.txt", "héllo\n")
    store.write_json("manifest.json", {"b": [1, 2], "a": None})
    assert store.read_text("notes.txt") == "héllo\n"
    assert store.read_json("manifest.json") == {"a": None, "b": [1, 2]}
    assert store.exists("notes.txt") and not store.exists("other.txt")


def test_overwrite_replaces_whole_object(store):
    store.write_bytes("x.bin", b"a" * 1000)
    store.write_bytes("x.bin", b"b" * 10)
    assert store.read_bytes("x.bin") == b"b" * 10


def test_nested_paths_list_recursive_sorted_files_only(store):
    for rel in ("targets/t2/infer/metrics.json", "targets/t1/align/a.sto", "targets/t1/infer/x.pdb",
                "targets/t10/align/a.sto", "summary.csv"):
        store.write_text(rel, rel)
    assert store.list("targets/t1") == ["targets/t1/align/a.sto", "targets/t1/infer/x.pdb"]
    assert store.list("targets/t1/") == store.list("targets/t1")  # not t10
    assert store.list("targets") == sorted(store.list("targets"))
    assert len(store.list()) == 5
    assert store.list("targets/t1/align/a.sto") == ["targets/t1/align/a.sto"]
    assert store.list("missing") == []
    assert store.exists("targets/t1")  # a "directory" with objects under it


def test_missing_object_is_file_not_found(store):
    with pytest.raises(FileNotFoundError):
        store.read_bytes("nope/none.json")
    with pytest.raises(FileNotFoundError):
        store.get_file("nope.bin", "/tmp/never-written-by-eksfold-tests")


@pytest.mark.parametrize("bad", ["../escape.txt", "a/../../b", "/abs/path"])
def test_paths_escaping_the_root_are_refused(store, bad):
    with pytest.raises(StorageError):
        store.write_text(bad, "x")
    with pytest.raises(StorageError):
        store.read_bytes(bad)


def test_delete_file_and_directory(store):
    store.write_text("d/a.txt", "1")
    store.write_text("d/sub/b.txt", "2")
    store.write_text("keep.txt", "3")
    store.delete("d/a.txt")
    assert not store.exists("d/a.txt") and store.exists("d/sub/b.txt")
    store.delete("d")
    assert store.list() == ["keep.txt"]
    store.delete("never-existed.txt")  # deleting nothing is fine


def test_upload_and_download_dir(store, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.sto").write_text("A")
    (src / "sub" / "b.hhr").write_text("B")
    assert store.upload_dir(src, "targets/t/align") == ["targets/t/align/a.sto", "targets/t/align/sub/b.hhr"]
    out = tmp_path / "out"
    got = store.download_dir("targets/t/align", out)
    assert sorted(p.relative_to(out).as_posix() for p in got) == ["a.sto", "sub/b.hhr"]
    assert (out / "sub" / "b.hhr").read_text() == "B"


def test_20_mib_multipart_roundtrip_through_files_and_bytes(store, tmp_path):
    data = os.urandom(20 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    store.put_file(src, "weights/big.bin")
    store.get_file("weights/big.bin", tmp_path / "back" / "big.bin")
    assert hashlib.sha256((tmp_path / "back" / "big.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
    store.write_bytes("weights/big2.bin", data)
    assert store.read_bytes("weights/big2.bin") == data
    assert not [p for p in (tmp_path / "back").iterdir() if p.name != "big.bin"]  # no temp left
    if isinstance(store, S3Store):  # really multipart: 3 parts of 8 MiB
        assert store.head("weights/big.bin")["ETag"].strip('"').endswith("-3")
        assert store.head("weights/big2.bin")["ETag"].strip('"').endswith("-3")


def test_readers_never_see_a_partial_object(store):
    """Concurrent readers of an object being rewritten see the old or the new bytes, whole."""
    old, new = b"o" * (9 * MiB), b"n" * (10 * MiB)
    store.write_bytes("obj.bin", old)
    seen, stop = set(), threading.Event()

    def reader():
        while not stop.is_set():
            seen.add(store.read_bytes("obj.bin"))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(3):
            store.write_bytes("obj.bin", new)
            store.write_bytes("obj.bin", old)
    finally:
        stop.set()
        thread.join()
    assert seen <= {old, new} and seen


# -- S3-specific ---------------------------------------------------------------------------
@pytest.mark.s3
def test_s3_store_from_uri_and_endpoint_env(s3_env):
    store = open_store("s3://private/some/prefix/")
    assert isinstance(store, S3Store)
    assert store.uri() == "s3://private/some/prefix" and store.local_path("x") is None
    assert store.client.meta.endpoint_url == s3_env.endpoint


@pytest.mark.s3
def test_s3_missing_bucket_is_a_clear_error(s3_env):
    store = open_store("s3://no-such-bucket-eksfold/run")
    for op in (lambda: store.read_bytes("x"), lambda: store.exists("x"), lambda: store.list(),
               lambda: store.write_text("x", "1")):
        with pytest.raises(StorageError) as err:
            op()
        assert "does not exist" in str(err.value) and "aws s3 mb" in err.value.hint


@pytest.mark.s3
def test_s3_denied_writes_and_reads_name_the_fix(s3_as):
    s3_as("reader")  # valid credentials, but only read access to the public buckets
    store = open_store("s3://private/run")
    with pytest.raises(StorageError) as err:
        store.write_text("x.txt", "1")
    assert "access denied" in str(err.value) and "IRSA" in err.value.hint
    with pytest.raises(StorageError) as err:
        open_store("s3://openfold/x").write_text("y.txt", "1")  # public is read-only
    assert "access denied" in str(err.value)
    assert "aws_secret_access_key" not in str(err.value).lower()
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in str(err.value)


@pytest.mark.s3
def test_s3_no_credentials_and_unreachable_endpoint(s3_as, monkeypatch):
    s3_as("anon")
    with pytest.raises(StorageError) as err:
        open_store("s3://private/run").read_text("x")
    assert "no AWS credentials" in str(err.value) and "EKSFOLD_S3_UNSIGNED" in err.value.hint
    monkeypatch.setenv("EKSFOLD_S3_UNSIGNED", "1")
    with pytest.raises(StorageError) as err:
        open_store("s3://private/run").read_text("x")
    assert "access denied" in str(err.value)
    import socket
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("EKSFOLD_S3_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("EKSFOLD_S3_MAX_ATTEMPTS", "2")
    with pytest.raises(StorageError) as err:
        open_store("s3://private/run").read_text("x")
    assert "cannot reach S3 endpoint" in str(err.value) and "VPC endpoint" in err.value.hint


@pytest.mark.s3
def test_s3_aborted_multipart_upload_leaves_nothing_visible(s3_env, tmp_path):
    store = open_store(s3_bucket_uri(s3_env, "abort"))
    client = store.client
    upload = client.create_multipart_upload(Bucket=store.bucket, Key=store.key("half.bin"))
    client.upload_part(Bucket=store.bucket, Key=store.key("half.bin"), UploadId=upload["UploadId"],
                       PartNumber=1, Body=b"x" * (5 * MiB))
    assert not store.exists("half.bin") and store.list() == []  # in flight: invisible
    client.abort_multipart_upload(Bucket=store.bucket, Key=store.key("half.bin"), UploadId=upload["UploadId"])
    assert not store.exists("half.bin") and store.list() == []


def test_committed_local_files_are_readable_by_others_as_plain_files_are(tmp_path):
    # results are shared (JupyterHub users, Pods of another uid on FSx): an atomic write must
    # not leave mkstemp's 0600 behind
    import os
    import stat

    from eksfold.storage import open_store

    local = open_store(str(tmp_path))
    local.write_text("a/b.txt", "x")
    assert local.create_exclusive("a/lock.json", b"{}")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    expected = stat.S_IMODE(os.stat(plain).st_mode)
    for rel in ("a/b.txt", "a/lock.json"):
        assert stat.S_IMODE(os.stat(tmp_path / rel).st_mode) == expected
