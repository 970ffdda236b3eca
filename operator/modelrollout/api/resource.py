"""The whole ModelDeployment object, for validating manifests and reading watched objects."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from modelrollout.api.common import ApiModel, PathError
from modelrollout.api.spec import ModelDeploymentSpec
from modelrollout.api.status import ModelDeploymentStatus

# Children are named <name>-<revision> (10 hex digits) and must stay DNS labels (63).
MAX_NAME_LENGTH = 52


class ModelDeployment(ApiModel):
    """A ModelDeployment manifest (apiVersion, kind, metadata, spec, status)."""

    api_version: Literal["modelrollout.io/v1alpha1"] = Field(
        default="modelrollout.io/v1alpha1", description="modelrollout.io/v1alpha1"
    )
    kind: Literal["ModelDeployment"] = Field(
        default="ModelDeployment", description="ModelDeployment"
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Object metadata.")
    spec: ModelDeploymentSpec = Field(description="Desired state.")
    status: ModelDeploymentStatus | None = Field(default=None, description="Observed state.")

    @model_validator(mode="after")
    def _name_fits_children(self) -> ModelDeployment:
        name = self.metadata.get("name")
        if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
            raise PathError(
                ("metadata", "name"),
                f"must have at most {MAX_NAME_LENGTH} characters: "
                "children are named <name>-<revision>",
            )
        return self
