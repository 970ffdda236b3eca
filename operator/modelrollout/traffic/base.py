"""The one Protocol every traffic router implements, and the small types it speaks in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from modelrollout.core.observation import TrafficObservation
from modelrollout.kube.errors import ShellError

JSON = dict[str, Any]


class RouterError(ShellError):
    """The routing object is missing or does not reference our Services (one clear line that
    names the object)."""

    reason = "TrafficRoutingError"


@dataclass(frozen=True)
class RoutedObject:
    """The ModelDeployment whose traffic is routed, and the ownerReference its children carry."""

    name: str
    namespace: str
    owner_reference: JSON

    @property
    def stable_service(self) -> str:
        return f"{self.name}-stable"

    @property
    def canary_service(self) -> str:
        return f"{self.name}-canary"

    @property
    def preview_service(self) -> str:
        return f"{self.name}-preview"


class TrafficRouter(Protocol):
    """Synchronous (blocking I/O): the shell calls these through asyncio.to_thread."""

    def set_weight(
        self, target: RoutedObject, stable_revision: str, canary_revision: str | None, weight: int
    ) -> None:
        """Send `weight` percent to `<name>-canary` and the rest to `<name>-stable`."""

    def switch_active(
        self, target: RoutedObject, active_revision: str, preview_revision: str | None
    ) -> None:
        """Blue/green: all traffic of the routing object to `<name>-stable` (the active).

        The Services' selectors (`<name>` -> active, `<name>-preview` -> preview) are applied by
        the shell from core.children.service_manifests before any router call.
        """

    def current_weight(self, target: RoutedObject) -> TrafficObservation | None:
        """The routing as it is, or None when nothing has been routed yet."""
