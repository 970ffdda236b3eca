"""Read-modify-write of routing objects that belong to someone else (the user, Argo CD).

We change only weights, with a JSON merge patch guarded by resourceVersion, instead of a
server-side apply that would take ownership of whole atomic lists such as an HTTPRoute's rules.
"""

from __future__ import annotations

from collections.abc import Callable

from modelrollout.kube import Conflict, Kube, ResourceKind
from modelrollout.traffic.base import JSON, RouterError

_ATTEMPTS = 3


def update_spec(
    kube: Kube, kind: ResourceKind, namespace: str, name: str, mutate: Callable[[JSON], JSON]
) -> None:
    """mutate(spec) returns the top-level spec fields to write; no write when nothing changes."""
    for attempt in range(_ATTEMPTS):
        obj = kube.get(kind, namespace, name)
        if obj is None:
            raise RouterError(f"{kind.kind} {namespace}/{name} not found")
        spec: JSON = obj.get("spec") or {}
        try:
            changes = mutate(spec)
        except RouterError as error:
            raise RouterError(f"{kind.kind} {namespace}/{name}: {error}") from error
        if all(spec.get(key) == value for key, value in changes.items()):
            return
        patch = {
            "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
            "spec": changes,
        }
        try:
            kube.merge_patch(kind, namespace, name, patch)
            return
        except Conflict:
            if attempt == _ATTEMPTS - 1:
                raise


def split(weight: int) -> tuple[int, int]:
    """(stable, canary) weights summing to 100."""
    canary = max(0, min(100, weight))
    return 100 - canary, canary
