"""What the routers that hold a canary weight in a routing object have in common.

Gateway API, Istio and NGINX differ only in how they write and read the weight; the Protocol's
methods, and pairing the weight read back with the revisions the Services select, live here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from modelrollout.core.observation import TrafficObservation
from modelrollout.kube import Kube, ResourceKind
from modelrollout.kube.rest import FIELD_MANAGER
from modelrollout.traffic.base import JSON, RoutedObject
from modelrollout.traffic.services import read_services


def last_writer(obj: JSON) -> str | None:
    """The field manager of the object's latest change when it is not this operator, else None.

    managedFields record who wrote which fields and when (to the second): another manager whose
    entry is at least as recent as ours changed it after us, e.g. "argocd-controller" after a sync
    from Git. A tie counts as someone else: a needless look costs one reconcile, a missed change
    would leave the weight wrong.
    """
    entries = [e for e in (obj.get("metadata") or {}).get("managedFields") or [] if e.get("time")]
    ours = [str(e["time"]) for e in entries if e.get("manager") == FIELD_MANAGER]
    since = max(ours, default="")
    others = [e for e in entries if e.get("manager") != FIELD_MANAGER and str(e["time"]) >= since]
    if not others:
        return None
    latest = max(others, key=lambda e: str(e["time"]))
    return str(latest.get("manager") or "another client")


class WeightedRouter(ABC):
    kube: Kube

    @abstractmethod
    def _write_weight(self, target: RoutedObject, weight: int) -> None:
        """Send `weight` percent to the canary Service and the rest to the stable one."""

    @abstractmethod
    def weight_object(self, target: RoutedObject) -> tuple[ResourceKind, str, str]:
        """The object that holds the weight: (kind, namespace, name)."""

    @abstractmethod
    def _weight_in(self, obj: JSON, target: RoutedObject) -> int | None:
        """The canary weight as `obj` holds it; None when it routes to neither Service."""

    def set_weight(
        self, target: RoutedObject, stable_revision: str, canary_revision: str | None, weight: int
    ) -> None:
        self._write_weight(target, weight if canary_revision else 0)

    def switch_active(
        self, target: RoutedObject, active_revision: str, preview_revision: str | None
    ) -> None:
        # Blue/green switches Service selectors; the routing object keeps all on `<name>-stable`.
        self._write_weight(target, 0)

    def current_weight(self, target: RoutedObject) -> TrafficObservation | None:
        services = read_services(self.kube, target)
        if services is None:
            return None
        kind, namespace, name = self.weight_object(target)
        obj = self.kube.get(kind, namespace, name)
        weight = None if obj is None else self._weight_in(obj, target)
        if obj is None or weight is None:
            return None
        return TrafficObservation(
            stable_revision=services.stable_revision,
            canary_revision=services.canary_revision,
            canary_weight=weight if services.canary_revision else 0,
            active_revision=services.active_revision,
            preview_revision=services.preview_revision,
            routing_object=f"{kind.kind} {namespace}/{name}",
            changed_by=last_writer(obj),
        )
