"""Default router: no mesh; the weight is approximated by replica counts behind `<name>`.

The core decides the replica counts and the Services' selectors (`<name>` spans every revision's
ready pods), so there is no weighted object to write. Reading back returns the revisions the
Services select for blue/green; for a canary it returns None, because the core derives the
effective weight from the READY replicas it observes (docs/architecture.md, "Routers").
"""

from __future__ import annotations

from modelrollout.core.observation import TrafficObservation
from modelrollout.kube import Kube
from modelrollout.traffic.base import RoutedObject
from modelrollout.traffic.services import read_services


class ReplicasRouter:
    def __init__(self, kube: Kube, blue_green: bool = False) -> None:
        self.kube = kube
        self.blue_green = blue_green

    def set_weight(
        self, target: RoutedObject, stable_revision: str, canary_revision: str | None, weight: int
    ) -> None:
        """Nothing to write: replica counts and selectors carry the weight."""

    def switch_active(
        self, target: RoutedObject, active_revision: str, preview_revision: str | None
    ) -> None:
        """Nothing to write: the `<name>` Service's selector is the switch."""

    def current_weight(self, target: RoutedObject) -> TrafficObservation | None:
        if not self.blue_green:
            return None  # no request: a canary's weight is in the Deployments already observed
        observed = read_services(self.kube, target)
        if observed is None or observed.active_revision is None:
            return None
        return observed
