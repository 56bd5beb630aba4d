"""What a ``weights`` setting means, parsed in one place, and the digest of a weights file.

A spec is one of:

- ``random`` or ``random:SEED``: untrained random weights (labelled UNTRAINED everywhere);
- a local ``.pt`` (OpenFold checkpoint) or ``.npz`` (AlphaFold parameters) file;
- an ``s3://`` / ``https://`` URI or a published name such as ``finetuning_ptm_2``, resolved to
  a cached file by :mod:`eksfold.data.weights`.

>>> parse_weights("random:7")
WeightsSpec(kind='random', value='random:7', seed=7)
>>> parse_weights("random_ft.pt").kind        # a file that happens to start with "random"
'file'
"""
from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

_RANDOM = re.compile(r"^random(?::(?P<seed>-?\d+))?$")
_DIGESTS: dict[tuple[str, int, int], str] = {}   # (path, size, mtime_ns) -> sha256


@dataclass(frozen=True)
class WeightsSpec:
    kind: str                  # "random" | "file" | "remote"
    value: str
    seed: int | None = None

    @property
    def untrained(self) -> bool:
        return self.kind == "random"


def parse_weights(spec: str) -> WeightsSpec:
    """Classify a weights setting (see the module docstring)."""
    spec = str(spec).strip()
    match = _RANDOM.match(spec)
    if match:
        return WeightsSpec("random", spec, int(match["seed"]) if match["seed"] else None)
    path = Path(spec).expanduser()
    if "://" not in spec and (path.suffix in (".pt", ".npz", ".pth", ".ckpt") or os.sep in spec):
        return WeightsSpec("file", str(path))
    return WeightsSpec("remote", spec)


def is_untrained(spec: str) -> bool:
    return parse_weights(spec).untrained


def resolve_weights_path(spec: str) -> Path:
    """A local weights file for a path, an ``s3://`` URI or a published parameter name."""
    parsed = parse_weights(spec)
    if parsed.kind == "random":
        raise ConfigError("random weights have no file")
    if parsed.kind == "file":
        path = Path(parsed.value)
        if not path.is_file():
            raise ConfigError(f"weights file {spec} not found")
        return path
    try:
        from .data.weights import resolve_weights
    except ImportError as exc:
        raise ConfigError(f"weights {spec!r}: not a local file, and the download helpers "
                          f"are unavailable ({exc})") from exc
    return Path(resolve_weights(spec))


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, computed once per (path, size, mtime) in this process.

    A warm worker folds many targets with the same weights; hashing a 370 MB checkpoint for
    each of them would cost seconds per target.
    """
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def check_weights_file(path: str | os.PathLike) -> None:
    """Refuse a weights file that is empty, truncated or corrupt, naming it, before any fold.

    ``.pt`` checkpoints (torch's zip format) and ``.npz`` parameters are zip archives: every
    member's CRC is checked (reads the file once, ~1 s for 370 MB). A ``<file>.sha256`` sidecar
    (written by the downloads) is compared too. Legacy (pre-zip) torch pickles are left to the
    loader, whose failure :func:`eksfold.models.openfold2.folder.load_weights` reports the same way.
    """
    path = Path(path)
    hint = "download it again (`eksfold data weights`) or point --weights at a good copy"
    problem = None
    if path.stat().st_size == 0:
        problem = "it is empty"
    elif zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad:
                problem = f"member {bad} fails its checksum"
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            problem = f"unreadable archive ({exc})"
    elif path.suffix in (".pt", ".npz", ".pth", ".ckpt"):
        with open(path, "rb") as fh:
            head = fh.read(2)
        if path.suffix == ".npz" or head != b"\x80\x02":   # neither zip nor a legacy pickle
            problem = "not a zip archive (truncated?) nor a legacy torch pickle"
    sidecar = path.with_name(path.name + ".sha256")
    if problem is None and sidecar.is_file():
        want = sidecar.read_text().split()[0] if sidecar.read_text().split() else ""
        if want and file_sha256(path) != want:
            problem = f"its SHA-256 differs from {sidecar.name}"
    if problem:
        raise ConfigError(f"weights file {path} is corrupt or truncated: {problem}; {hint}")
