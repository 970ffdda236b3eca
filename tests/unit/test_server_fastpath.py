"""Fast predict_proba paths reproduce scikit-learn, and are refused when they would not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from modelrollout.server.fastpath import accepts, compile_proba

X2, Y2 = make_classification(n_samples=300, n_features=8, random_state=0)
X3, Y3 = make_classification(
    n_samples=300, n_features=8, n_informative=4, n_classes=3, random_state=0
)


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression().fit(X2, Y2),
        LogisticRegression(max_iter=500).fit(X3, Y3),
        RandomForestClassifier(n_estimators=15, random_state=0).fit(X2, Y2),
        RandomForestClassifier(n_estimators=15, random_state=0).fit(X3, Y3),
        ExtraTreesClassifier(n_estimators=5, random_state=0).fit(X3, Y3),
    ],
    ids=["lr-binary", "lr-multinomial", "rf-binary", "rf-3-classes", "extra-trees"],
)
def test_fast_path_equals_predict_proba(estimator: Any) -> None:
    compiled = compile_proba(estimator, 8)
    assert compiled is not None
    fast, name = compiled
    assert name == type(estimator).__name__
    rng = np.random.default_rng(3)
    for x in (X3[:50], rng.normal(size=(7, 8)).astype(np.float32), rng.integers(-3, 3, (5, 8))):
        assert accepts(x)
        assert np.allclose(fast(x), estimator.predict_proba(x), rtol=1e-9, atol=1e-12)


def test_other_estimators_have_no_fast_path() -> None:
    assert compile_proba(SVC(probability=True).fit(X2, Y2), 8) is None
    assert compile_proba(LogisticRegression().fit(X2, Y2), None) is None
    assert not accepts(np.array([["a", "b"]], dtype=object))


def test_a_fast_path_that_disagrees_is_refused() -> None:
    lr = LogisticRegression().fit(X2, Y2)
    lr.predict_proba = lambda x: np.full((len(x), 2), 0.5)  # type: ignore[method-assign]
    assert compile_proba(lr, 8) is None
