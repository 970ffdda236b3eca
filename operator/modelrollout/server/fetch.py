"""Reading model artifacts from URIs into memory.

The bytes are read once and everything after (digest check, deserialization) works on
that copy, so a file that changes on disk between the check and the load cannot slip
through.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from modelrollout.server.digest import bytes_sha256

DEFAULT_PVC_ROOT = "/mnt/models"
PVC_ROOT_ENV = "MODELROLLOUT_PVC_ROOT"


class FetchError(Exception):
    """The artifact could not be read; the message is one line saying why."""


@dataclass(frozen=True)
class Artifact:
    """A model file (``files == {"": data}``) or a directory (relative path -> bytes)."""

    location: str
    files: dict[str, bytes]
    is_dir: bool

    @property
    def data(self) -> bytes:
        return self.files[""]


def resolve_uri(uri: str, pvc_root: str | None = None) -> str:
    """Map ``pvc://claim/path`` to the path where the claim is mounted; others unchanged."""
    if uri.startswith("pvc://"):
        rest = uri[len("pvc://") :].lstrip("/")
        if not rest:
            raise FetchError(f"pvc URI {uri!r} names no claim")
        root = pvc_root or os.environ.get(PVC_ROOT_ENV, DEFAULT_PVC_ROOT)
        return os.path.join(root, rest)
    return uri


def read_artifact(uri: str, pvc_root: str | None = None) -> Artifact:
    location = resolve_uri(uri, pvc_root)
    try:
        fs, path = url_to_fs(location)
    except (ImportError, ValueError) as exc:
        # s3:// without the optional extra lands here (fsspec names the missing package).
        raise FetchError(f"cannot open {uri!r}: {one_line(exc)}") from exc
    try:
        if _is_dir(fs, path):
            return Artifact(location, _read_tree(fs, path), is_dir=True)
        with fsspec.open(location, "rb") as f:
            data = f.read()
        return Artifact(location, {"": data}, is_dir=False)
    except FetchError:
        raise
    except (OSError, ValueError) as exc:
        raise FetchError(f"cannot read {uri!r}: {one_line(exc)}") from exc
    except Exception as exc:  # network stacks raise their own types (aiohttp, botocore)
        raise FetchError(f"cannot read {uri!r}: {type(exc).__name__}: {one_line(exc)}") from exc


def _is_dir(fs: Any, path: str) -> bool:
    try:
        return bool(fs.isdir(path))
    except (OSError, NotImplementedError):
        return False


def _read_tree(fs: Any, root: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    base = root.rstrip("/") + "/"
    for full in sorted(fs.find(root)):
        rel = full[len(base) :] if full.startswith(base) else full.rsplit("/", 1)[-1]
        files[rel] = fs.cat_file(full)
    if not files:
        raise FetchError(f"directory {root!r} is empty")
    return files


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def read_pinned_file(
    uri: str, sha256: str | None, what: str, expected: str, pvc_root: str | None = None
) -> bytes:
    """One file's bytes, checked against its sha256 pin when given; FetchError naming `what`
    (e.g. "dataset") and the URI. `expected` says what the file should be (e.g. "csv file")."""
    try:
        artifact = read_artifact(uri, pvc_root)
    except FetchError as exc:
        raise FetchError(f"{what}: {exc}") from None
    if artifact.is_dir:
        raise FetchError(f"{what} {uri} is a directory; expected one {expected}")
    data = artifact.data
    if sha256 is not None and bytes_sha256(data) != sha256.strip().lower():
        raise FetchError(
            f"{what} {uri}: sha256 mismatch: expected {sha256}, got {bytes_sha256(data)}"
        )
    return data
