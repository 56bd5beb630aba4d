"""Where :func:`eksfold.data.transfer.fetch` reads from: S3 objects and HTTP(S) URLs.

A source answers ``head() -> (size, etag)``, ``open(offset, etag)`` (a readable stream from
``offset``; raises :class:`Changed` when the object changed or the server cannot resume),
``part_size()`` (of a multipart S3 object, for its ETag) and ``sidecar()`` (the published
``<uri>.sha256``, if any). Errors come out as ``FileNotFoundError`` or ``StorageError``.
"""
from __future__ import annotations

import urllib.error
import urllib.request

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import StorageError


class S3Source:
    """An object in S3 (or an S3-compatible server), read with ranged, If-Match GETs."""

    def __init__(self, uri: str, anon: bool | None):
        from ..storage.s3_client import make_client, parse_s3_uri, want_unsigned
        self.uri = uri
        self.bucket, self.key = parse_s3_uri(uri)
        self.client = make_client(want_unsigned(self.bucket) if anon is None else anon)

    def _err(self, exc):
        from ..storage.s3_client import translate
        return translate(exc, self.uri, self.client)

    def head(self) -> tuple[int, str | None]:
        try:
            meta = self.client.head_object(Bucket=self.bucket, Key=self.key)
        except (ClientError, BotoCoreError) as exc:
            err = self._err(exc)
            if isinstance(err, FileNotFoundError):
                self._check_bucket()
            raise err from None
        if meta.get("ServerSideEncryption", "").startswith("aws:kms") or meta.get("SSECustomerAlgorithm"):
            return meta["ContentLength"], None  # such ETags are not MD5 digests
        return meta["ContentLength"], meta.get("ETag")

    def _check_bucket(self) -> None:
        # HEAD gives a bare 404 for a missing bucket too: ask the bucket to tell them apart.
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.key, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            err = self._err(exc)
            if isinstance(err, StorageError):
                raise err from None

    def part_size(self) -> int | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key,
                                           PartNumber=1)["ContentLength"]
        except (ClientError, BotoCoreError):
            return None

    def open(self, offset: int, etag: str | None):
        kwargs = {"Bucket": self.bucket, "Key": self.key}
        if offset:
            kwargs["Range"] = f"bytes={offset}-"
        if etag:
            kwargs["IfMatch"] = etag
        try:
            return self.client.get_object(**kwargs)["Body"]
        except ClientError as exc:
            if etag and exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                raise Changed() from None
            raise self._err(exc) from None

    def sidecar(self) -> str | None:
        try:
            text = self.client.get_object(Bucket=self.bucket, Key=self.key + ".sha256")["Body"].read()
            return text.decode().split()[0].lower()
        except (ClientError, BotoCoreError, IndexError, UnicodeDecodeError):
            return None


class HttpSource:
    """A URL read with ``Range`` requests (a server that ignores them restarts the download)."""

    def __init__(self, uri: str, timeout: float = 60):
        self.uri, self.timeout = uri, timeout

    def _request(self, method="GET", headers=None):
        req = urllib.request.Request(self.uri, method=method, headers=headers or {})
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise FileNotFoundError(2, "not found (HTTP 404)", self.uri) from None
            if exc.code in (401, 403):
                raise StorageError(self.uri, f"access denied (HTTP {exc.code})",
                                   "check the URL and that the server allows downloads") from None
            raise StorageError(self.uri, f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StorageError(self.uri, f"cannot reach server: {reason}",
                               "check network access, proxy settings and the base URL") from None

    def head(self) -> tuple[int | None, str | None]:
        try:
            resp = self._request("HEAD")
        except StorageError as exc:
            if exc.problem.startswith("HTTP 4") or exc.problem.startswith("HTTP 5"):
                return None, None  # no HEAD support (405, presigned GET URLs): size unknown
            raise
        with resp:
            size = resp.headers.get("Content-Length")
            return (int(size) if size is not None else None), None

    def part_size(self):
        return None

    def open(self, offset: int, etag):
        resp = self._request(headers={"Range": f"bytes={offset}-"} if offset else None)
        if offset and resp.status != 206:  # server ignored the Range: start again
            resp.close()
            raise Changed()
        return resp

    def sidecar(self) -> str | None:
        try:
            with urllib.request.urlopen(self.uri + ".sha256", timeout=self.timeout) as resp:
                return resp.read().decode().split()[0].lower()
        except (urllib.error.URLError, OSError, IndexError, UnicodeDecodeError):
            return None


class Changed(Exception):
    """The remote object changed (or the server cannot resume): restart from zero."""


def open_source(uri: str, anon: bool | None):
    if uri.startswith("s3://"):
        return S3Source(uri, anon)
    if uri.startswith(("http://", "https://")):
        return HttpSource(uri)
    raise StorageError(uri, "unsupported source", "use s3://, http(s):// or a local path")
