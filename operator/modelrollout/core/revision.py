"""Revision hashing: one short hash of everything that changes what is served."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from modelrollout.api import ModelDeploymentSpec

REVISION_LENGTH = 10


def _wire(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    return value


def compute_revision(spec: ModelDeploymentSpec) -> str:
    """10 hex chars of sha256 over the canonical JSON of spec.model and spec.template.

    Replicas, strategy, analysis and paused are left out: changing them must not start a rollout.
    """
    served = {"model": _wire(spec.model), "template": _wire(spec.template)}
    canonical = json.dumps(served, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:REVISION_LENGTH]
