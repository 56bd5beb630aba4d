"""Run roots on Amazon S3 (or any S3-compatible server) through boto3.

``S3Store("s3://bucket/prefix")`` implements the :class:`eksfold.storage.Store` primitives.
Objects appear whole or not at all: a small write is one PUT, a large one a multipart upload
that S3 publishes only when it completes (an aborted upload leaves nothing visible).

Configuration comes from the usual AWS places (IRSA on EKS, ``AWS_PROFILE``, environment
credentials) plus a few variables of ours:

``AWS_ENDPOINT_URL`` / ``EKSFOLD_S3_ENDPOINT``
    an S3-compatible endpoint (ours wins when both are set).
``EKSFOLD_S3_UNSIGNED=1``
    anonymous (unsigned) requests, for public buckets such as ``s3://openfold``.
``EKSFOLD_S3_MAX_ATTEMPTS`` / ``EKSFOLD_S3_RETRY_MODE``
    botocore retries with backoff (default 5 attempts, mode ``standard``).
``EKSFOLD_S3_OUTAGE_S``
    how long an unreachable or failing service (network errors, 5xx) is waited out, with
    backoff, before a clear, retryable error (default 300 s): an outage shorter than that
    costs time, not units.

>>> store = S3Store("s3://my-bucket/runs/demo")          # doctest: +SKIP
>>> store.write_json("manifest.json", {"a": 1})          # doctest: +SKIP
"""
from __future__ import annotations

import functools
import io
import logging
import os
import time

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import StorageError

from .atomic import atomic_path
from .base import Store, _check_rel
from .s3_client import (MiB, error_code, make_client, parse_s3_uri,  # noqa: F401  (public API)
                        transfer_config, translate, want_unsigned)


log = logging.getLogger(__name__)


def outage_s() -> float:
    return float(os.environ.get("EKSFOLD_S3_OUTAGE_S", "300"))


def _through_outages(method):
    """Retry ``method`` through a passing outage (retryable StorageError) for up to
    :func:`outage_s`, backing off to 10 s between tries; then say how long it was down."""
    @functools.wraps(method)
    def patient(self, *args, **kwargs):
        start, wait, warned = time.monotonic(), 0.5, False
        while True:
            try:
                return method(self, *args, **kwargs)
            except StorageError as exc:
                waited = time.monotonic() - start
                if not exc.retryable or waited + wait > outage_s():
                    if exc.retryable and waited > 0:
                        raise StorageError(exc.uri, f"{exc.problem}, still after {waited:.0f} s "
                                           "of retries", exc.hint + "; then run the same "
                                           "command again (finished units are kept)",
                                           retryable=True) from None
                    raise
                if not warned:
                    log.warning("%s: %s; retrying for up to %.0f s", exc.uri, exc.problem,
                                outage_s())
                    warned = True
                time.sleep(wait)
                wait = min(wait * 2, 10.0)
    return patient


class S3Store(Store):
    """A run root at ``s3://bucket/prefix``.

    Parameters
    ----------
    root_uri : ``s3://bucket[/prefix]``
    anon : send unsigned requests (default: ``EKSFOLD_S3_UNSIGNED``, else only for known
        public buckets)
    endpoint : S3 endpoint URL (default: ``EKSFOLD_S3_ENDPOINT`` / ``AWS_ENDPOINT_URL``)
    multipart_threshold, multipart_chunksize, max_concurrency : multipart transfer settings
    """

    def __init__(self, root_uri: str, anon: bool | None = None, endpoint: str | None = None,
                 max_attempts: int | None = None, multipart_threshold: int = 8 * MiB,
                 multipart_chunksize: int = 8 * MiB, max_concurrency: int = 4, client=None):
        self.bucket, self.prefix = parse_s3_uri(str(root_uri).rstrip("/"))
        self.root = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.anon = want_unsigned(self.bucket) if anon is None else anon
        self.client = client or make_client(self.anon, endpoint, max_attempts)
        self.transfer = transfer_config(multipart_threshold, multipart_chunksize, max_concurrency)

    def __repr__(self) -> str:
        return f"S3Store({self.root!r})"

    def key(self, rel: str = "") -> str:
        rel = _check_rel(rel) if rel else ""
        if rel in ("", "."):
            return self.prefix
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _err(self, exc: Exception, rel: str = "") -> Exception:
        return translate(exc, self.uri(rel) if rel else self.root, self.client)

    # -- primitives ---------------------------------------------------------------------
    @_through_outages
    def exists(self, rel: str) -> bool:
        """True for an object, or for a 'directory' with objects under it (as LocalStore)."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(rel))
            return True
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise self._err(exc, rel) from None
        except BotoCoreError as exc:
            raise self._err(exc, rel) from None
        # HEAD cannot tell a missing key from a missing bucket: a listing can (and finds dirs).
        return bool(self._keys(self.key(rel) + "/", limit=1, uri=self.uri(rel)))

    @_through_outages
    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._err(exc, rel) from None

    @_through_outages
    def write_bytes(self, rel: str, data: bytes) -> None:
        if len(data) < self.transfer.multipart_threshold:
            self._call(rel, self.client.put_object, Bucket=self.bucket, Key=self.key(rel), Body=data)
        else:
            self._call(rel, self.client.upload_fileobj, io.BytesIO(data), self.bucket,
                       self.key(rel), Config=self.transfer)

    @_through_outages
    def put_file(self, local: str | os.PathLike, rel: str, callback=None) -> None:
        """Upload a file (multipart above the threshold); ``callback(nbytes)`` reports progress."""
        self._call(rel, self.client.upload_file, str(local), self.bucket, self.key(rel),
                   Config=self.transfer, Callback=callback)

    @_through_outages
    def get_file(self, rel: str, local: str | os.PathLike, callback=None) -> None:
        """Download to ``local`` through a temporary file renamed into place."""
        with atomic_path(local) as tmp:
            self._call(rel, self.client.download_file, self.bucket, self.key(rel), str(tmp),
                       Config=self.transfer, Callback=callback)

    @_through_outages
    def list(self, prefix: str = "") -> list[str]:
        base = self.key(prefix.rstrip("/")) if prefix.strip("/") else self.prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys = self._keys(base + "/" if base else "", uri=self.uri(prefix.strip("/")))
        if base and not keys:  # `prefix` may name one object
            keys = [k for k in self._keys(base, limit=1) if k == base]
        return sorted(k[strip:] for k in keys if not k.endswith("/"))

    @_through_outages
    def delete(self, rel: str) -> None:
        """Delete an object, or every object under ``rel/`` (as LocalStore removes a dir)."""
        key = self.key(rel) if rel.strip("/") else self.prefix
        keys = ([key] if key else []) + self._keys(key + "/" if key else "")
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i:i + 1000]]
            self._call(rel, self.client.delete_objects, Bucket=self.bucket,
                       Delete={"Objects": batch, "Quiet": True})

    # -- conditional writes (leases): S3's If-None-Match / If-Match on PutObject ---------
    @_through_outages
    def create_exclusive(self, rel: str, data: bytes) -> bool:
        return self._conditional_put(rel, data, IfNoneMatch="*")

    @_through_outages
    def read_with_version(self, rel: str) -> tuple[bytes, str] | None:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key(rel))
            return obj["Body"].read(), obj["ETag"]
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._err(exc, rel) from None
        except BotoCoreError as exc:
            raise self._err(exc, rel) from None

    @_through_outages
    def replace_if(self, rel: str, data: bytes, version: str) -> bool:
        return self._conditional_put(rel, data, IfMatch=version)

    def _conditional_put(self, rel: str, data: bytes, **condition) -> bool:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data, **condition)
            return True
        except ClientError as exc:
            # 412: the condition failed; 409: a concurrent conditional write won
            if error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                return False
            raise self._err(exc, rel) from None
        except BotoCoreError as exc:
            raise self._err(exc, rel) from None

    # -- helpers ------------------------------------------------------------------------
    @_through_outages
    def head(self, rel: str) -> dict:
        """Object metadata (``ContentLength``, ``ETag``, ...); FileNotFoundError if missing."""
        return self._call(rel, self.client.head_object, Bucket=self.bucket, Key=self.key(rel))

    def _keys(self, prefix: str, limit: int | None = None, uri: str | None = None) -> list[str]:
        keys: list[str] = []
        kwargs = {"Bucket": self.bucket, "Prefix": prefix}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
                if limit and len(keys) >= limit:
                    break
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, uri or f"s3://{self.bucket}/{prefix}", self.client) from None
        return keys

    def _call(self, rel: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._err(exc, rel) from None
        except Exception as exc:  # s3transfer wraps some failures; unwrap one level
            cause = getattr(exc, "last_exception", None) or exc.__cause__ or exc.__context__
            if isinstance(cause, (ClientError, BotoCoreError)):
                raise self._err(cause, rel) from None
            raise
