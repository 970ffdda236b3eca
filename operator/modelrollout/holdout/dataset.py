"""Reading the holdout dataset (CSV or Parquet) from a URI, through the model server's fetch code.

Sharing the fetch code gives the dataset the same URI schemes (fsspec, pvc://) as models, and the
sha256 pin is checked on the very bytes that pandas then parses.
"""

from __future__ import annotations

import io

import pandas as pd

from modelrollout.server.digest import bytes_sha256
from modelrollout.server.fetch import FetchError, one_line, read_artifact


class DatasetError(Exception):
    """The dataset cannot be used; the message is one line naming the URI."""


_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".xz": "xz", ".zip": "zip"}


def read_dataset(
    uri: str, fmt: str = "csv", sha256: str | None = None, pvc_root: str | None = None
) -> pd.DataFrame:
    try:
        artifact = read_artifact(uri, pvc_root)
    except FetchError as exc:
        raise DatasetError(f"dataset: {exc}") from None
    if artifact.is_dir:
        raise DatasetError(f"dataset {uri} is a directory; expected one {fmt} file")
    data = artifact.data
    if sha256 is not None and bytes_sha256(data) != sha256.lower():
        raise DatasetError(
            f"dataset {uri}: sha256 mismatch: expected {sha256}, got {bytes_sha256(data)}"
        )
    try:
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(data))
        path = uri.split("?", 1)[0].lower()
        compression = next((c for s, c in _COMPRESSION.items() if path.endswith(s)), None)
        return pd.read_csv(io.BytesIO(data), compression=compression)
    except Exception as exc:  # pandas and pyarrow raise many kinds
        raise DatasetError(f"dataset {uri}: cannot read as {fmt}: {one_line(exc)}") from None
