"""Feedback tokens: what an inference response hands the client so that the ground truth it
learns later can be counted by any replica, of any revision, without shared state.

A model's replicas sit behind one Service, and with the default router stable and candidate
pods sit behind the same one: the replica that receives a label is rarely the one that made the
prediction, and may belong to another revision. Storing predictions by request id would need a
shared store and unbounded memory. Instead the response carries the prediction itself, signed:

    base64url( 1 | kind | version | revision | classes digest | rows | predictions ) . mac

- kind ``c`` (class indices, uint16) or ``r`` (values, float64), one per row of the request;
- the classes digest (8 bytes of sha256 over the class labels) lets a replica of another
  revision refuse a token whose indices mean other classes instead of miscounting it;
- the mac is HMAC-SHA256 (16 bytes) with the server's feedback key: with a secret key
  (`--feedback-key`, e.g. from a Secret) tokens cannot be forged; the default key is derived
  from the model name and only catches tokens of another model and damaged ones.

Counting is at least once: a token sent twice counts twice (replicas keep no record of it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMAT = 1
CLASSES = b"c"
VALUES = b"r"
MAC_BYTES = 16
DIGEST_BYTES = 8
MAX_LABEL_BYTES = 63  # a Kubernetes label value
_HEAD = struct.Struct("<Bc")
_ROWS = struct.Struct("<I")


class TokenError(ValueError):
    """A token this server cannot count; the message says why."""


@dataclass(frozen=True)
class Issued:
    """What a token says was predicted."""

    version: str
    revision: str
    classes_digest: bytes | None  # None for a regressor
    predicted: np.ndarray[Any, Any]  # class indices (uint16) or values (float64), one per row


def feedback_key(secret: str | None, model_name: str) -> bytes:
    """The configured secret, or a key derived from the model name (integrity only)."""
    if secret:
        return secret.encode()
    return hashlib.sha256(f"modelrollout-feedback:{model_name}".encode()).digest()


def classes_digest(classes: Sequence[Any]) -> bytes:
    joined = "\x1f".join(str(c) for c in classes).encode()
    return hashlib.sha256(joined).digest()[:DIGEST_BYTES]


def issue(key: bytes, issued: Issued) -> str:
    kind = VALUES if issued.classes_digest is None else CLASSES
    body = b"".join(
        [
            _HEAD.pack(FORMAT, kind),
            _short(issued.version),
            _short(issued.revision),
            issued.classes_digest or b"",
            _ROWS.pack(len(issued.predicted)),
            _predictions(kind, issued.predicted),
        ]
    )
    mac = hmac.new(key, body, hashlib.sha256).digest()[:MAC_BYTES]
    return f"{_b64(body)}.{_b64(mac)}"


def read(key: bytes, token: object) -> Issued:
    """The token's content, or TokenError when it is malformed or not signed with `key`."""
    if not isinstance(token, str) or token.count(".") != 1:
        raise TokenError("not a feedback token (expected the string a response carried)")
    body_text, mac_text = token.split(".")
    body, mac = _unb64(body_text), _unb64(mac_text)
    expected = hmac.new(key, body, hashlib.sha256).digest()[:MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise TokenError("not issued by this model (signature does not match)")
    try:
        return _parse(body)
    except (struct.error, ValueError, IndexError) as exc:
        raise TokenError(f"malformed token ({exc})") from None


def _parse(body: bytes) -> Issued:
    fmt, kind = _HEAD.unpack_from(body, 0)
    if fmt != FORMAT or kind not in (CLASSES, VALUES):
        raise ValueError(f"unknown format {fmt}/{kind!r}")
    offset = _HEAD.size
    version, offset = _unshort(body, offset)
    revision, offset = _unshort(body, offset)
    digest = None
    if kind == CLASSES:
        digest = body[offset : offset + DIGEST_BYTES]
        offset += DIGEST_BYTES
    (rows,) = _ROWS.unpack_from(body, offset)
    offset += _ROWS.size
    dtype = np.dtype("<u2") if kind == CLASSES else np.dtype("<f8")
    if len(body) - offset != rows * dtype.itemsize:
        raise ValueError("rows do not match the length")
    predicted = np.frombuffer(body, dtype=dtype, count=rows, offset=offset)
    return Issued(version, revision, digest, predicted)


def _predictions(kind: bytes, predicted: np.ndarray[Any, Any]) -> bytes:
    if kind == CLASSES:
        return np.asarray(predicted, dtype="<u2").tobytes()
    return np.asarray(predicted, dtype="<f8").tobytes()


def _short(text: str) -> bytes:
    raw = text.encode()[:MAX_LABEL_BYTES]
    return bytes([len(raw)]) + raw


def _unshort(body: bytes, offset: int) -> tuple[str, int]:
    size = body[offset]
    if size > MAX_LABEL_BYTES:
        raise ValueError("label too long")
    end = offset + 1 + size
    return body[offset + 1 : end].decode(), end


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("not a feedback token (not base64url)") from None
