"""Write a ModelDeployment's status through the status subresource only (never its spec)."""

from __future__ import annotations

from typing import Any

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
