"""Verified fast paths for ``predict_proba`` of common estimators.

scikit-learn spends most of a one-row ``predict_proba`` in per-call input validation
(~100-200 us for a LogisticRegression, and a thread-pool dispatch per forest), work the
server has already done while decoding the request (shape, feature count, finite
numbers). For LogisticRegression and random/extra-trees forests the server can run the
fitted model's arithmetic directly:

- LogisticRegression: ``X @ coef_.T + intercept_``, then the logistic function (binary)
  or softmax (multinomial), as ``LogisticRegression.predict_proba`` does;
- forests: each tree's ``tree_.predict`` normalised per row, averaged in tree order, as
  ``ForestClassifier.predict_proba`` does with one job.

A fast path is only used after it reproduced ``estimator.predict_proba`` on probe rows at
load time; otherwise (and with ``--no-fast-path``) the estimator's own method runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeGuard

import numpy as np

Proba = Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]

PROBE_ROWS = 64


def compile_proba(estimator: Any, n_features: int | None) -> tuple[Proba, str] | None:
    """A verified fast ``predict_proba`` and its name, or None to use the estimator's."""
    if n_features is None:
        return None
    name = type(estimator).__name__
    candidate: Proba | None = None
    if name == "LogisticRegression":
        candidate = _logistic(estimator)
    elif name in ("RandomForestClassifier", "ExtraTreesClassifier"):
        candidate = _forest(estimator)
    if candidate is None or not _agrees(candidate, estimator, n_features):
        return None
    return candidate, name


def accepts(x: object) -> TypeGuard[np.ndarray[Any, Any]]:
    """Fast paths take numeric 2-D matrices; anything else goes to scikit-learn."""
    return isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype.kind in "fiub"


def _logistic(est: Any) -> Proba | None:
    coef = np.asarray(getattr(est, "coef_", None), dtype=np.float64)
    intercept = np.asarray(getattr(est, "intercept_", None), dtype=np.float64)
    if coef.ndim != 2 or intercept.ndim != 1:
        return None
    coef_t = np.ascontiguousarray(coef.T)
    if coef.shape[0] == 1:

        def binary(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            d = (x @ coef_t + intercept)[:, 0]
            out = np.empty((d.shape[0], 2))
            with np.errstate(over="ignore"):  # exp overflows to inf: the probability is 0
                out[:, 1] = 1.0 / (1.0 + np.exp(-d))
            out[:, 0] = 1.0 - out[:, 1]
            return out

        return binary

    def multinomial(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        d = x @ coef_t + intercept
        d -= d.max(axis=1, keepdims=True)
        e = np.exp(d)
        out: np.ndarray[Any, Any] = e / e.sum(axis=1, keepdims=True)
        return out

    return multinomial


def _forest(est: Any) -> Proba | None:
    members = getattr(est, "estimators_", [])
    trees: list[Any] = [t.tree_ for t in members if getattr(t, "tree_", None) is not None]
    n_classes = getattr(est, "n_classes_", None)
    if not trees or len(trees) != len(members) or not isinstance(n_classes, int | np.integer):
        return None  # multi-output forests keep a list of class counts
    k = int(n_classes)

    def forest(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        total: np.ndarray[Any, Any] | None = None
        for tree in trees:
            p = tree.predict(x32)[:, :k]
            norm = p.sum(axis=1, keepdims=True)
            norm[norm == 0.0] = 1.0
            p = p / norm
            total = p if total is None else total + p
        assert total is not None
        out: np.ndarray[Any, Any] = total / len(trees)
        return out

    return forest


def _agrees(candidate: Proba, est: Any, n_features: int) -> bool:
    rng = np.random.default_rng(0)
    probe = rng.normal(size=(PROBE_ROWS, n_features)) * rng.choice(
        [0.1, 1.0, 10.0], (PROBE_ROWS, 1)
    )
    try:
        fast = candidate(probe)
        with warnings.catch_warnings():
            # A model fitted on a DataFrame warns about the probe's missing column names.
            warnings.simplefilter("ignore", UserWarning)
            slow = np.asarray(est.predict_proba(probe), dtype=np.float64)
    except Exception:
        return False
    return (
        fast.shape == slow.shape
        and bool(np.allclose(fast, slow, rtol=1e-9, atol=1e-12))
        and bool(np.array_equal(fast.argmax(axis=1), slow.argmax(axis=1)))
    )
