"""Read back what the Services of a ModelDeployment select.

The Services themselves (`<name>`, `<name>-stable`, `<name>-canary` / `<name>-preview`) are built by
core.children.service_manifests and applied by the shell; routers only read them to tell
which revision each one serves.
"""

from __future__ import annotations

from modelrollout.api.names import NAME_LABEL, REVISION_LABEL
from modelrollout.core.observation import TrafficObservation
from modelrollout.kube import SERVICES, Kube
from modelrollout.traffic.base import JSON, RoutedObject


def _revision(service: JSON | None) -> str | None:
    if service is None:
        return None
    selector: dict[str, str] = service.get("spec", {}).get("selector") or {}
    return selector.get(REVISION_LABEL)


def read_services(kube: Kube, target: RoutedObject) -> TrafficObservation | None:
    """One LIST by label reads every Service of this ModelDeployment; None before the first.

    Services carry no weights: the canary weight is 0 here, and routers fill in their own.
    """
    items = kube.list(SERVICES, target.namespace, f"{NAME_LABEL}={target.name}")
    by_name = {item["metadata"]["name"]: item for item in items}
    stable = by_name.get(target.stable_service)
    if stable is None:
        return None
    stable_revision = _revision(stable)
    preview = by_name.get(target.preview_service)
    if preview is not None:  # blue/green
        active = _revision(by_name.get(target.name))
        preview_revision = _revision(preview)
        return TrafficObservation(
            stable_revision=stable_revision,
            canary_revision=None,
            canary_weight=0,
            active_revision=active,
            preview_revision=preview_revision if preview_revision != active else None,
        )
    canary_revision = _revision(by_name.get(target.canary_service))
    if canary_revision is None or canary_revision == stable_revision:
        return TrafficObservation(stable_revision, None, 0)
    return TrafficObservation(stable_revision, canary_revision, 0)
