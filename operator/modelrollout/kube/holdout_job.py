"""The validation Job's I/O: create it when the core asks, read its result back.

One Job per candidate revision (`<name>-validate-<revision>`); its annotation
modelrollout.io/requested-at says which request it answers, so a retry (a newer request)
replaces it and an old result is never taken for a new one.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from modelrollout.api import (
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ModelSpec,
    ValidationStatus,
)
from modelrollout.api.names import HOLDOUT_JOB_LABEL, NAME_LABEL
from modelrollout.core.children import OwnerRef
from modelrollout.core.history import model_of
from modelrollout.core.holdout_job import (
    job_manifest,
    job_name,
    requested_at,
    validation_status,
)
from modelrollout.core.plan import ValidationRequest
from modelrollout.kube.errors import Conflict
from modelrollout.kube.resources import PODS, ResourceKind
from modelrollout.kube.rest import Kube

JOBS = ResourceKind("batch", "v1", "Job", "jobs")
# Set by the Job controller on its pods; the uid tells a replaced Job's pods from the new one's.
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"


def observe_validation(
    kube: Kube, namespace: str, name: str, revision: str
) -> ValidationStatus | None:
    """The result so far of the validation Job of `revision`; None when there is no Job."""
    job = kube.get(JOBS, namespace, job_name(name, revision))
    if job is None or job["metadata"].get("deletionTimestamp"):
        return None
    uid = job["metadata"]["uid"]
    pods = kube.list(PODS, namespace, f"{CONTROLLER_UID}={uid}")
    return validation_status(job, pods, revision)


def ensure_validation_job(
    kube: Kube,
    owner: OwnerRef,
    namespace: str,
    spec: ModelDeploymentSpec,
    revision: str,
    stable: ModelSpec | None,
    requested: datetime,
    image: str,
) -> None:
    """Create the Job for this request; replace one that answered an older request."""
    name = job_name(owner.name, revision)
    job = kube.get(JOBS, namespace, name)
    if job is not None:
        if job["metadata"].get("deletionTimestamp"):
            return  # the old one is going away: create on a later reconcile
        answered = requested_at(job)
        if answered is not None and answered >= requested:
            return
        kube.delete(JOBS, namespace, name)
        return
    _delete_others(kube, namespace, owner.name, revision)
    manifest = job_manifest(owner, namespace, spec, revision, stable, requested, image)
    # 409 AlreadyExists: created meanwhile; the next observation reads it.
    with contextlib.suppress(Conflict):
        kube.create(JOBS, namespace, manifest)


def _delete_others(kube: Kube, namespace: str, name: str, revision: str) -> None:
    """Jobs of earlier candidates are done with: their results live in status and history."""
    for job in kube.list(JOBS, namespace, f"{NAME_LABEL}={name},{HOLDOUT_JOB_LABEL}"):
        if job["metadata"].get("labels", {}).get(HOLDOUT_JOB_LABEL) != revision:
            kube.delete(JOBS, namespace, job["metadata"]["name"])


# The two calls the shell makes (observe before decide, start after).


def observe_for(
    kube: Kube, namespace: str, name: str, spec: ModelDeploymentSpec, revision: str
) -> ValidationStatus | None:
    if spec.validation is None:
        return None
    return observe_validation(kube, namespace, name, revision)


def start_for(
    kube: Kube,
    owner: OwnerRef,
    namespace: str,
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    request: ValidationRequest,
    image: str,
) -> None:
    """Start the Job the core asked for; the stable's model comes from the history snapshot."""
    stable_revision = status.stable_revision
    stable = None
    if stable_revision is not None and stable_revision != request.revision:
        stable = model_of(status.history, stable_revision)
    ensure_validation_job(
        kube, owner, namespace, spec, request.revision, stable, request.requested_at, image
    )
