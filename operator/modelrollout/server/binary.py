"""The protocol's binary tensor extension, which KServe's and Triton's clients use by default.

The body is the JSON request followed by raw tensor bytes; the `Inference-Header-Content-Length`
header says where the JSON ends. An input with `parameters.binary_data_size` takes its bytes, in
order, from what follows: little-endian and row-major, one byte per BOOL, and for BYTES each
element as a 4-byte little-endian length and its bytes. Outputs come back the same way when the
request asks (`binary_data_output` on the request, `binary_data` on a requested output).

Every size is checked against the body before anything is read: a body whose sizes disagree with
its header is refused, never read past its end.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from modelrollout.server.datatypes import FLOAT_TYPES, INT_TYPES, RequestError

HEADER_LENGTH = "Inference-Header-Content-Length"
SIZE = "binary_data_size"

_LENGTH = struct.Struct("<I")


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON part and the binary part of a request body."""
    if header_length is None:
        return body, memoryview(b"")
    try:
        length = int(header_length)
    except ValueError:
        raise RequestError(f"{HEADER_LENGTH} must be a number, not {header_length!r}") from None
    if not 0 < length <= len(body):
        raise RequestError(f"{HEADER_LENGTH} {length} is outside the body of {len(body)} bytes")
    return body[:length], memoryview(body)[length:]


class BinaryInputs:
    """Hands out the binary part to the inputs that declare a size, in order."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._offset = 0

    def take(self, name: str, size: Any) -> memoryview:
        if type(size) is not int or size < 0:
            raise RequestError(f"input {name!r}: '{SIZE}' must be a number of bytes >= 0")
        if self._offset + size > len(self._data):
            left = len(self._data) - self._offset
            raise RequestError(f"input {name!r}: {size} bytes declared, {left} left in the body")
        chunk = self._data[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def finish(self) -> None:
        left = len(self._data) - self._offset
        if left:
            raise RequestError(f"{left} bytes after the last binary input: sizes disagree")


def decode_binary(
    chunk: memoryview, datatype: str, shape: list[int], name: str
) -> np.ndarray[Any, Any]:
    """The array an input's bytes hold, checked against its datatype and shape."""
    count = math.prod(shape)
    if datatype == "BYTES":
        return _decode_strings(chunk, count, name).reshape(shape)
    dtype = _dtype(datatype)
    if len(chunk) != count * dtype.itemsize:
        raise RequestError(
            f"input {name!r}: {len(chunk)} bytes do not fill shape {shape} of {datatype}"
        )
    array = np.frombuffer(chunk, dtype=dtype).reshape(shape)
    if datatype == "BOOL":
        raw = np.frombuffer(chunk, dtype=np.uint8)
        if raw.size and int(raw.max()) > 1:
            raise RequestError(f"input {name!r}: BOOL bytes must be 0 or 1")
    elif datatype in FLOAT_TYPES and not np.isfinite(array).all():
        raise RequestError(f"input {name!r}: values out of range for {datatype}")
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _dtype(datatype: str) -> np.dtype[Any]:
    if datatype == "BOOL":
        return np.dtype(np.bool_)
    kind = FLOAT_TYPES.get(datatype) or INT_TYPES[datatype]
    return np.dtype(kind).newbyteorder("<")


def _decode_strings(chunk: memoryview, count: int, name: str) -> np.ndarray[Any, Any]:
    values: list[str] = []
    offset = 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise RequestError(f"input {name!r}: a BYTES element's length is cut off")
        (length,) = _LENGTH.unpack_from(chunk, offset)
        offset += 4
        if offset + length > len(chunk):
            raise RequestError(f"input {name!r}: a BYTES element runs past its input's bytes")
        try:
            values.append(bytes(chunk[offset : offset + length]).decode())
        except UnicodeDecodeError:
            raise RequestError(f"input {name!r}: BYTES elements must be UTF-8 text") from None
        offset += length
    if len(values) != count:
        raise RequestError(f"input {name!r}: {len(values)} BYTES elements, the shape needs {count}")
    return np.array(values, dtype=object)


def encode_binary(datatype: str, array: np.ndarray[Any, Any]) -> bytes:
    """An output's bytes for the datatype `output_tensor` gives it."""
    if datatype == "BYTES":
        parts = []
        for value in array.ravel().tolist():
            raw = str(value).encode()
            parts.append(_LENGTH.pack(len(raw)) + raw)
        return b"".join(parts)
    dtype = np.dtype(np.bool_) if datatype == "BOOL" else _dtype(datatype)
    return np.ascontiguousarray(array, dtype=dtype).tobytes()
