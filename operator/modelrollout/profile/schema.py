"""The reference profile file (JSON): what `modelrollout-profile` writes and the server reads.

    {"format": 1,
     "features": [
       {"name": "amount", "kind": "numeric", "edges": [12.0, 40.5, ...], "counts": [...]},
       {"name": "country", "kind": "categorical", "categories": ["FR", "NO"], "counts": [...]}],
     "prediction": {"name": "prediction", "kind": "categorical", "categories": ["fraud", "ok"],
                    "counts": [...]}}

A numeric feature has bins (-inf, e0], (e0, e1], ..., (e_last, +inf): one more count than edges.
A categorical one has its categories and a last bin for every other value. Sizes are bounded so
that the server's metrics stay bounded: at most MAX_FEATURES features and MAX_BINS bins each.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

FORMAT = 1
MAX_FEATURES = 32
MAX_BINS = 21
PREDICTION = "__prediction__"  # the prediction's bins, next to the features' in the metrics


class BinKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class FeatureProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    kind: BinKind
    edges: list[float] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    counts: list[float] = Field(min_length=1, max_length=MAX_BINS)

    @model_validator(mode="after")
    def _bins(self) -> Self:
        labels = self.edges if self.kind is BinKind.NUMERIC else self.categories
        if len(self.counts) != len(labels) + 1:
            raise ValueError(
                f"feature {self.name!r}: {len(self.counts)} counts for {len(labels)} "
                f"{'edges' if self.kind is BinKind.NUMERIC else 'categories'} (expected one more)"
            )
        increasing = all(a < b for a, b in zip(self.edges, self.edges[1:], strict=False))
        if self.kind is BinKind.NUMERIC and not increasing:
            raise ValueError(f"feature {self.name!r}: edges must increase")
        if any(c < 0 for c in self.counts):
            raise ValueError(f"feature {self.name!r}: counts must not be negative")
        return self

    @property
    def bins(self) -> int:
        return len(self.counts)

    def fractions(self) -> list[float]:
        total = sum(self.counts)
        return [c / total if total else 0.0 for c in self.counts]


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = Field(default=FORMAT, ge=FORMAT, le=FORMAT)
    features: list[FeatureProfile] = Field(max_length=MAX_FEATURES)
    prediction: FeatureProfile | None = None

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names) or PREDICTION in names:
            raise ValueError(f"feature names must be unique and not {PREDICTION!r}")
        return self

    def tracked(self) -> list[FeatureProfile]:
        """The features, then the prediction (as PREDICTION) when profiled."""
        if self.prediction is None:
            return list(self.features)
        return [*self.features, self.prediction.model_copy(update={"name": PREDICTION})]
