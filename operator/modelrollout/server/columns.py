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


def learnt_categories(estimator: Any) -> dict[str, np.ndarray[Any, Any]]:
    """The categories a fitted encoder learnt for each column it reads, by column name."""
    found: dict[str, np.ndarray[Any, Any]] = {}
    for columns, transformer in _column_transformers(estimator):
        for step in _steps(transformer):
            categories = getattr(step, "categories_", None)
            if isinstance(categories, list) and len(categories) == len(columns):
                found.update(zip(columns, categories, strict=True))
                break
    for step in _steps(estimator):  # an encoder fitted on the DataFrame itself
        names = getattr(step, "feature_names_in_", None)
        categories = getattr(step, "categories_", None)
        if names is not None and isinstance(categories, list) and len(categories) == len(names):
            found.update(zip((str(n) for n in names), categories, strict=True))
    return found


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
