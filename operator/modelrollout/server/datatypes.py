"""The protocol's tensor datatypes and the error every bad request becomes."""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT_TYPES = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
INT_TYPES: dict[str, type[np.integer[Any]]] = {
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
}
INT_RANGE = {k: (int(np.iinfo(t).min), int(np.iinfo(t).max)) for k, t in INT_TYPES.items()}
DATATYPES = frozenset({*FLOAT_TYPES, *INT_TYPES, "BOOL", "BYTES"})


class RequestError(Exception):
    """The client's fault: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
