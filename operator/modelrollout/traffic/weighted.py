"""What the routers that hold a canary weight in a routing object have in common.

Gateway API, Istio and NGINX differ only in how they write and read the weight; the Protocol's
methods, and pairing the weight read back with the revisions the Services select, live here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from modelrollout.core.observation import TrafficObservation
from modelrollout.kube import Kube
from modelrollout.traffic.base import RoutedObject
from modelrollout.traffic.services import read_services


class WeightedRouter(ABC):
    kube: Kube

    @abstractmethod
    def _write_weight(self, target: RoutedObject, weight: int) -> None:
        """Send `weight` percent to the canary Service and the rest to the stable one."""

    @abstractmethod
    def _read_weight(self, target: RoutedObject) -> int | None:
        """The canary weight in the routing object; None when the object is missing."""

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
        weight = self._read_weight(target)
        if weight is None:
            return None
        return TrafficObservation(
            stable_revision=services.stable_revision,
            canary_revision=services.canary_revision,
            canary_weight=weight if services.canary_revision else 0,
            active_revision=services.active_revision,
            preview_revision=services.preview_revision,
        )
