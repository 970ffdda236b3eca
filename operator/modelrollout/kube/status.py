"""Write a ModelDeployment's status through the status subresource only (never its spec)."""

from __future__ import annotations

from typing import Any

from modelrollout.kube.errors import Conflict
from modelrollout.kube.resources import MODELDEPLOYMENTS
from modelrollout.kube.rest import JSON, Kube


def status_patch(old: JSON, new: JSON) -> JSON:
    """A JSON merge patch turning `old` into `new` at the top level of status.

    Keys we saw and no longer want are set to null (so consumed control fields such as
    `abort` are cleared); keys we never saw are left alone, so a control field set by a
    person after our read is not erased by this write.
    """
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            # A merge patch merges nested objects: keys dropped inside them (e.g.
            # analysis.nextMeasurementAt) must be nulled too, or they linger.
            patch[key] = status_patch(before, value)
        else:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def patch_status(
    kube: Kube, namespace: str, name: str, old: JSON, new: JSON, resource_version: str | None
) -> JSON | None:
    """Patch status; with a resourceVersion, a concurrent change fails with Conflict (409)."""
    patch = status_patch(old, new)
    if not patch:
        return None
    body: JSON = {"status": patch}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    return kube.merge_patch(MODELDEPLOYMENTS, namespace, name, body, subresource="status")


# Kopf's own annotation patches (diff base, progress) race with our status writes.
_METADATA_ONLY_RETRIES = 3


def write_status_as_decided(kube: Kube, body: JSON, new: JSON) -> JSON | None:
    """Patch the status decided from `body`, as long as what the decision read still holds.

    A Conflict whose cause only touched metadata (the spec's generation and the status are
    as read) does not change the decision: the write is sent again on the fresh
    resourceVersion, so the children already carried out and the status agree sooner.
    Anything else raises Conflict: the caller decides again.
    """
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    old: JSON = body.get("status") or {}
    version = meta["resourceVersion"]
    for _ in range(_METADATA_ONLY_RETRIES):
        try:
            return patch_status(kube, namespace, name, old, new, version)
        except Conflict:
            fresh = kube.get(MODELDEPLOYMENTS, namespace, name)
            if fresh is None or not _same_decision_inputs(body, fresh):
                raise
            version = fresh["metadata"]["resourceVersion"]
    # The last try: a Conflict now goes to the caller.
    return patch_status(kube, namespace, name, old, new, version)


def _same_decision_inputs(read: JSON, fresh: JSON) -> bool:
    before, now = read["metadata"], fresh["metadata"]
    return (
        before.get("generation") == now.get("generation")
        and before.get("deletionTimestamp") == now.get("deletionTimestamp")
        and (read.get("status") or {}) == (fresh.get("status") or {})
    )
