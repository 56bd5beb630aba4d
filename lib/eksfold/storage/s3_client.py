"""The S3 client eksfold uses everywhere (run roots, downloads): endpoint, credentials, retries,
and boto3 errors translated into FileNotFoundError or a StorageError with a hint."""
from __future__ import annotations

import os

import boto3
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectionClosedError,
                                 ConnectTimeoutError, EndpointConnectionError,
                                 NoCredentialsError, ReadTimeoutError)

from ..errors import StorageError

MiB = 1 << 20
# Buckets that are public and read without credentials unless EKSFOLD_S3_UNSIGNED=0.
PUBLIC_BUCKETS = frozenset({"openfold", "pdbsnapshots"})

HINT_DENIED = ("check the IAM role bound to the pod's service account (IRSA, annotation "
               "eks.amazonaws.com/role-arn) or your AWS credentials (`aws sts get-caller-identity`); "
               "for a public bucket use unsigned requests (EKSFOLD_S3_UNSIGNED=1)")
HINT_NO_CREDENTIALS = ("configure AWS credentials (AWS_PROFILE, `aws configure`, or IRSA on EKS), "
                       "or set EKSFOLD_S3_UNSIGNED=1 to read a public bucket anonymously")
HINT_NETWORK = ("check network access to S3 (NAT gateway or S3 VPC endpoint on EKS, proxy settings) "
                "and the endpoint in AWS_ENDPOINT_URL / EKSFOLD_S3_ENDPOINT")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``"s3://bucket/a/b"`` -> ``("bucket", "a/b")``."""
    if not uri.startswith("s3://"):
        raise StorageError(uri, "not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise StorageError(uri, "missing bucket name", "write s3://BUCKET/PREFIX")
    return bucket, key.strip("/")


def endpoint_url() -> str | None:
    """The S3 endpoint override, if any (``EKSFOLD_S3_ENDPOINT``, then ``AWS_ENDPOINT_URL*``)."""
    return (os.environ.get("EKSFOLD_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL") or None)


def want_unsigned(bucket: str | None = None) -> bool:
    """Whether to send unsigned requests: ``EKSFOLD_S3_UNSIGNED`` if set, else known public buckets."""
    flag = os.environ.get("EKSFOLD_S3_UNSIGNED", "").strip().lower()
    if flag:
        return flag in ("1", "true", "yes", "on")
    return bucket in PUBLIC_BUCKETS


def make_client(anon: bool = False, endpoint: str | None = None, max_attempts: int | None = None,
                connect_timeout: float = 10, read_timeout: float = 60):
    """A boto3 S3 client with retries (standard/adaptive backoff) and optional unsigned requests."""
    attempts = max_attempts or int(os.environ.get("EKSFOLD_S3_MAX_ATTEMPTS", "5"))
    config = Config(
        retries={"mode": os.environ.get("EKSFOLD_S3_RETRY_MODE", "standard"),
                 "max_attempts": attempts},
        connect_timeout=connect_timeout, read_timeout=read_timeout,
        signature_version=UNSIGNED if anon else None,
        s3={"addressing_style": "path"} if (endpoint or endpoint_url()) else None,
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint or endpoint_url(),
                          region_name=session.region_name or "us-east-1", config=config)


def transfer_config(threshold: int = 8 * MiB, chunksize: int = 8 * MiB,
                    concurrency: int = 4) -> TransferConfig:
    """Multipart settings for uploads/downloads above ``threshold`` bytes."""
    return TransferConfig(multipart_threshold=threshold, multipart_chunksize=chunksize,
                          max_concurrency=concurrency, use_threads=concurrency > 1)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, uri: str, client=None) -> Exception:
    """Map a boto3/botocore error to FileNotFoundError or a StorageError with a hint."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return FileNotFoundError(2, "no such object", uri)
        if code == "NoSuchBucket":
            bucket = uri[len("s3://"):].split("/", 1)[0]
            return StorageError(uri, f"bucket {bucket!r} does not exist",
                                "check the bucket name (and region/endpoint); create it with "
                                f"`aws s3 mb s3://{bucket}`")
        if code in ("AccessDenied", "403", "Forbidden", "InvalidAccessKeyId",
                    "SignatureDoesNotMatch", "AllAccessDisabled", "ExpiredToken",
                    "InvalidToken") or status == 403:
            return StorageError(uri, f"access denied ({code})", HINT_DENIED)
        # the service's own trouble (5xx, throttling) passes: retryable
        passing = (status or 0) >= 500 or code in ("SlowDown", "ServiceUnavailable",
                                                   "InternalError", "RequestTimeout")
        return StorageError(uri, f"S3 error {code or status}: {message}".rstrip(": "),
                            retryable=passing)
    if isinstance(exc, NoCredentialsError):
        return StorageError(uri, "no AWS credentials found", HINT_NO_CREDENTIALS)
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError,
                        ReadTimeoutError)):
        where = getattr(client, "meta", None) and client.meta.endpoint_url
        return StorageError(uri, f"cannot reach S3 endpoint {where or ''}".rstrip(), HINT_NETWORK,
                            retryable=True)
    if isinstance(exc, BotoCoreError):
        return StorageError(uri, f"S3 request failed: {exc}")
    return exc
