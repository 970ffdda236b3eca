"""spec.model: which model artifact to serve, and how to load it safely."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from modelrollout.api.common import ApiModel, PathError, WireBool, cel

URI_PATTERN = r"^[a-z][a-z0-9+.-]*://.+$"
SHA256_PATTERN = r"^[a-f0-9]{64}$"


class ModelFormat(StrEnum):
    """How the artifact is serialized."""

    SKOPS = "skops"
    MLFLOW = "mlflow"
    JOBLIB = "joblib"


TrustedType = Annotated[str, Field(min_length=1, max_length=256)]


class ReferenceProfile(ApiModel):
    """The reference profile of the model's training or holdout data (modelrollout-profile)."""

    uri: str = Field(
        min_length=1,
        max_length=2048,
        pattern=URI_PATTERN,
        description="Where the profile (JSON) lives; the same schemes as the model's uri.",
    )
    sha256: str | None = Field(
        default=None,
        pattern=SHA256_PATTERN,
        max_length=64,
        description="Hex SHA-256 of the profile file; the server refuses any other bytes.",
    )


class ModelSpec(ApiModel):
    """The model version to serve. Changing it starts a new rollout."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.format) || self.format != 'joblib'"
                " || (has(self.allowPickle) && self.allowPickle)",
                "format joblib executes code when loaded: it requires allowPickle: true",
                ".allowPickle",
            ),
        )
    )

    name: str = Field(
        min_length=1,
        max_length=128,
        description="Model name, exported as the `model` label of the server's metrics.",
    )
    version: str = Field(
        min_length=1,
        max_length=64,
        description="Model version, exported as the `version` label; shown in the history.",
    )
    uri: str = Field(
        min_length=1,
        max_length=2048,
        pattern=URI_PATTERN,
        description=(
            "Where the artifact lives: an fsspec URI (s3://, gs://, http(s)://, file://) or "
            "pvc://<claim>/<path> for a PersistentVolumeClaim."
        ),
    )
    format: ModelFormat = Field(
        default=ModelFormat.SKOPS,
        description=(
            "Serialization: skops (safe, default), mlflow (an MLflow model directory) or "
            "joblib (pickle; executes code when loaded, so it needs allowPickle: true)."
        ),
    )
    sha256: str | None = Field(
        default=None,
        pattern=SHA256_PATTERN,
        max_length=64,
        description="Hex SHA-256 of the artifact file; the server refuses to load any other bytes.",
    )
    trusted_types: list[TrustedType] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "Fully qualified types skops may load besides its safe defaults, e.g. "
            "sklearn.tree._tree.Tree. The trust list lives here, never in the artifact."
        ),
    )
    allow_pickle: WireBool = Field(
        default=False,
        description="Allow formats that unpickle (joblib, pickled MLflow models): runs code.",
    )
    profile: ReferenceProfile | None = Field(
        default=None,
        description=(
            "Histograms of the training data shipped beside the model: the server counts live "
            "inputs on its bins, for the inputDrift metric."
        ),
    )

    @model_validator(mode="after")
    def _joblib_needs_pickle(self) -> ModelSpec:
        if self.format == ModelFormat.JOBLIB and not self.allow_pickle:
            raise PathError(
                ("allowPickle",),
                "format joblib executes code when loaded: it requires allowPickle: true",
            )
        return self
