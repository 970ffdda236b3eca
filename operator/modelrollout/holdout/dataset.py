"""Reading the holdout dataset (CSV or Parquet) from a URI, through the model server's fetch code.

Sharing the fetch code gives the dataset the same URI schemes (fsspec, pvc://) as models, and the
sha256 pin is checked on the very bytes that pandas then parses.
"""

from __future__ import annotations

import io

import pandas as pd

from modelrollout.server.fetch import FetchError, one_line, read_pinned_file


class DatasetError(Exception):
    """The dataset cannot be used; the message is one line naming the URI."""


_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".xz": "xz", ".zip": "zip"}


def read_dataset(
    uri: str, fmt: str = "csv", sha256: str | None = None, pvc_root: str | None = None
) -> pd.DataFrame:
    try:
        data = read_pinned_file(uri, sha256, "dataset", f"{fmt} file", pvc_root)
    except FetchError as exc:
        raise DatasetError(str(exc)) from None
    try:
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(data))
        path = uri.split("?", 1)[0].lower()
        compression = next((c for s, c in _COMPRESSION.items() if path.endswith(s)), None)
        return pd.read_csv(io.BytesIO(data), compression=compression)
    except Exception as exc:  # pandas and pyarrow raise many kinds
        raise DatasetError(f"dataset {uri}: cannot read as {fmt}: {one_line(exc)}") from None
