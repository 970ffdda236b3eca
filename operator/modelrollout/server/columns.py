"""Which columns of a model fitted on a pandas DataFrame hold strings: for its metadata, and to
refuse a number where the model learnt strings with a message naming the column."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


def column_datatypes(estimator: Any, feature_names: Sequence[str]) -> dict[str, str]:
    """The protocol datatype of each column a model fitted on a DataFrame reads, for its metadata:
    BYTES where a fitted encoder learnt string categories, FP64 otherwise (scikit-learn keeps no
    dtypes, but an encoder's categories show which columns held strings)."""
    types = dict.fromkeys(feature_names, "FP64")
    for columns, transformer in _column_transformers(estimator):
        if _learnt_strings(transformer):
            for name in columns:
                if name in types:
                    types[name] = "BYTES"
    return types


def _column_transformers(estimator: Any) -> Iterator[tuple[list[str], Any]]:
    """(column names, fitted transformer) of every ColumnTransformer in a (nested) Pipeline."""
    for step in _steps(estimator):
        for _, transformer, columns in getattr(step, "transformers_", None) or ():
            if isinstance(columns, str):
                columns = [columns]
            if isinstance(columns, (list, tuple, np.ndarray)):
                yield [c for c in columns if isinstance(c, str)], transformer


def _steps(estimator: Any) -> Iterator[Any]:
    yield estimator
    for _, step in getattr(estimator, "steps", None) or ():
        yield from _steps(step)


def _learnt_strings(transformer: Any) -> bool:
    return any(
        isinstance(categories, np.ndarray) and categories.dtype.kind in "OU"
        for step in _steps(transformer)
        for categories in getattr(step, "categories_", None) or ()
    )
