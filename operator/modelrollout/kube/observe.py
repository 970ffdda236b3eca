"""Observe this ModelDeployment's Deployments (label modelrollout.io/name) for the core."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from modelrollout.api.names import NAME_LABEL, REVISION_LABEL
from modelrollout.core.observation import RevisionObservation
from modelrollout.core.pod_trouble import pod_trouble
from modelrollout.kube.resources import DEPLOYMENTS, PODS
from modelrollout.kube.rest import JSON, Kube


def _timestamp(raw: str | None) -> dt.datetime | None:
    if not raw:
        return None
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))


def revision_of(deployment: JSON) -> RevisionObservation | None:
    meta = deployment["metadata"]
    revision = (meta.get("labels") or {}).get(REVISION_LABEL)
    if not revision or meta.get("deletionTimestamp"):
        return None
    replicas = int((deployment.get("spec") or {}).get("replicas", 1))
    ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
    # After a scale-down the status lags the spec: never report more ready pods than wanted.
    return RevisionObservation(
        revision=revision,
        replicas=replicas,
        ready_replicas=min(ready, replicas),
        created_at=_timestamp(meta.get("creationTimestamp")),
    )


def observe_revisions(kube: Kube, namespace: str, name: str) -> dict[str, RevisionObservation]:
    """One LIST by label: revision -> what its Deployment says; and, for a revision with pods
    not ready, one LIST of its pods for why (a Deployment's status never says)."""
    observed: dict[str, RevisionObservation] = {}
    for deployment in kube.list(DEPLOYMENTS, namespace, f"{NAME_LABEL}={name}"):
        revision = revision_of(deployment)
        if revision is None:
            continue
        if revision.ready_replicas < revision.replicas:
            selector = f"{NAME_LABEL}={name},{REVISION_LABEL}={revision.revision}"
            trouble = pod_trouble(kube.list(PODS, namespace, selector))
            revision = replace(revision, trouble=trouble.describe() if trouble else None)
        observed[revision.revision] = revision
    return observed
