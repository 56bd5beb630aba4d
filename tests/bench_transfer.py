"""Transfer benchmark: throughput and resume behaviour against an S3-compatible server.

``bench_transfer()`` starts a local SeaweedFS server (or uses ``endpoint`` with the ambient
credentials), then for each size measures: multipart upload (``S3Store.put_file``), parallel
download (``S3Store.get_file``), the verified single-stream download used for weights
(``fetch``: SHA-256 + ETag), a download cut at half way and resumed by a second call, a
download whose connection is cut twice and resumed within the call, and the skip of a file
already present. Prints a table and returns its rows.

    .venv/bin/python tests/bench_transfer.py --sizes 16,64   (from the repository root)
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from eksfold.errors import StorageError

MiB = 1 << 20


@contextmanager
def _env(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _row(op: str, size: int, secs: float, moved: int | None = None, note: str = "") -> dict:
    moved = size if moved is None else moved
    return {"operation": op, "size_mib": size / MiB, "seconds": secs,
            "mib_per_s": moved / MiB / secs if secs > 0 else float("nan"),
            "transferred_mib": moved / MiB, "note": note}


def bench_transfer(sizes_mib=(16, 64), endpoint: str | None = None, bucket: str = "private",
                   workdir: str | os.PathLike | None = None, show: bool = True) -> list[dict]:
    from local_s3 import FaultyProxy, LocalS3Server
    from eksfold.data.transfer import fetch
    from eksfold.storage.s3 import S3Store

    tmp = Path(tempfile.mkdtemp(prefix="eksfold-bench-", dir=workdir))
    server = None
    rows: list[dict] = []
    try:
        if endpoint is None:
            server = LocalS3Server(tmp / "s3", public_buckets=(), private_buckets=(bucket,)).start()
            env, endpoint = server.env("admin"), server.endpoint
        else:
            env = {"AWS_ENDPOINT_URL": endpoint}
        with _env({**env, "EKSFOLD_PROGRESS": "0"}):
            store = S3Store(f"s3://{bucket}/eksfold-bench")
            for size_mib in sizes_mib:
                size = int(size_mib * MiB)
                src = tmp / f"src-{size_mib}.bin"
                with open(src, "wb") as fh:
                    fh.write(os.urandom(size))
                key = f"blob-{size_mib}.bin"
                t = time.perf_counter()
                store.put_file(src, key)
                rows.append(_row("upload (multipart, 4 threads)", size, time.perf_counter() - t))
                t = time.perf_counter()
                store.get_file(key, tmp / "get.bin")
                rows.append(_row("download (parallel ranges)", size, time.perf_counter() - t))
                uri = store.uri(key)
                out = tmp / f"fetch-{size_mib}.bin"
                r = fetch(uri, out, progress=False)
                rows.append(_row("fetch (1 stream, sha256+etag)", size, r.seconds))
                t = time.perf_counter()
                fetch(uri, out, progress=False)
                rows.append(_row("fetch again (present: skip)", size, time.perf_counter() - t, 0))
                for path in (out, Path(f"{out}.sha256")):
                    path.unlink()
                # cut at half way: the first call fails, the second resumes from the part file
                with FaultyProxy(endpoint, cut_after=size // 2, cuts=1) as proxy, \
                        _env({"AWS_ENDPOINT_URL": proxy.endpoint, "EKSFOLD_S3_ENDPOINT": proxy.endpoint}):
                    t = time.perf_counter()
                    try:
                        fetch(uri, out, progress=False, max_reconnects=0)
                    except StorageError:
                        pass
                    first = time.perf_counter() - t
                    part = Path(f"{out}.part").stat().st_size
                    r = fetch(uri, out, progress=False)
                rows.append(_row("fetch, cut at 50%, rerun", size, first + r.seconds,
                                 part + r.transferred,
                                 f"part kept {part / MiB:.1f} MiB; rerun fetched "
                                 f"{r.transferred / MiB:.1f} MiB from byte {r.resumed_from}"))
                for path in (out, Path(f"{out}.sha256")):
                    path.unlink()
                with FaultyProxy(endpoint, cut_after=size // 4, cuts=2) as proxy, \
                        _env({"AWS_ENDPOINT_URL": proxy.endpoint, "EKSFOLD_S3_ENDPOINT": proxy.endpoint}):
                    r = fetch(uri, out, progress=False)
                rows.append(_row("fetch, 2 cuts, in-call resume", size, r.seconds, r.transferred,
                                 f"{r.reconnects} reconnects, {r.transferred / MiB:.1f} MiB moved"))
                for path in (src, tmp / "get.bin", out, Path(f"{out}.sha256")):
                    path.unlink(missing_ok=True)
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if show:
        print(format_table(rows))
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [f"{'operation':<32}{'MiB':>7}{'seconds':>9}{'MiB/s':>9}  note"]
    for r in rows:
        lines.append(f"{r['operation']:<32}{r['size_mib']:>7.0f}{r['seconds']:>9.3f}"
                     f"{r['mib_per_s']:>9.1f}  {r['note']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64", help="object sizes in MiB, comma-separated")
    parser.add_argument("--endpoint", help="S3 endpoint (default: start a local SeaweedFS)")
    parser.add_argument("--bucket", default="private")
    args = parser.parse_args(argv)
    bench_transfer([float(s) for s in args.sizes.split(",")], args.endpoint, args.bucket)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
