"""Istio router: weights on a VirtualService's HTTP routes to `<name>-stable` / `<name>-canary`.

Only the HTTP routes that already send to one of our Services (optionally only those named in
`routes`) are changed; their other destinations are kept.
"""

from __future__ import annotations

import copy

from modelrollout.kube import VIRTUALSERVICES, Kube, ResourceKind
from modelrollout.traffic.base import JSON, RoutedObject, RouterError
from modelrollout.traffic.patching import split, update_spec
from modelrollout.traffic.weighted import WeightedRouter


def _host_is(destination: JSON, service: str) -> bool:
    host = str(destination.get("host", ""))
    # "svc", "svc.ns", "svc.ns.svc.cluster.local" all name the same Service.
    return host == service or host.startswith(f"{service}.")


def _ours(entry: JSON, target: RoutedObject) -> str | None:
    destination = entry.get("destination") or {}
    for service in (target.stable_service, target.canary_service):
        if _host_is(destination, service):
            return service
    return None


def weighted_http(
    http: list[JSON], target: RoutedObject, weight: int, names: tuple[str, ...] = ()
) -> list[JSON]:
    stable_weight, canary_weight = split(weight)
    result: list[JSON] = []
    touched = False
    for route in http:
        entries: list[JSON] = route.get("route") or []
        mine = [entry for entry in entries if _ours(entry, target)]
        if not mine or (names and route.get("name") not in names):
            result.append(route)
            continue
        touched = True
        template = mine[0].get("destination") or {}
        port = template.get("port")

        def destination(service: str, port: JSON | None = port) -> JSON:
            d: JSON = {"host": service}
            if port is not None:
                d["port"] = port
            return d

        new_route = copy.deepcopy(route)
        new_route["route"] = [entry for entry in entries if not _ours(entry, target)] + [
            {"destination": destination(target.stable_service), "weight": stable_weight},
            {"destination": destination(target.canary_service), "weight": canary_weight},
        ]
        result.append(new_route)
    if not touched:
        raise RouterError(
            f"VirtualService has no HTTP route to {target.stable_service}"
            f" or {target.canary_service}"
        )
    return result


def read_weight(
    virtual_service: JSON, target: RoutedObject, names: tuple[str, ...] = ()
) -> int | None:
    for route in virtual_service.get("spec", {}).get("http") or []:
        if names and route.get("name") not in names:
            continue
        weights: dict[str, int] = {}
        for entry in route.get("route") or []:
            service = _ours(entry, target)
            if service:
                weights[service] = int(entry.get("weight", 0))
        if weights:
            canary = weights.get(target.canary_service, 0)
            total = canary + weights.get(target.stable_service, 0)
            return round(100 * canary / total) if total else 0
    return None


class IstioRouter(WeightedRouter):
    def __init__(
        self,
        kube: Kube,
        virtual_service: str,
        routes: tuple[str, ...] = (),
        namespace: str | None = None,
    ) -> None:
        self.kube = kube
        self.virtual_service = virtual_service
        self.routes = routes
        self.namespace = namespace

    def _namespace(self, target: RoutedObject) -> str:
        return self.namespace or target.namespace

    def _write_weight(self, target: RoutedObject, weight: int) -> None:
        update_spec(
            self.kube,
            VIRTUALSERVICES,
            self._namespace(target),
            self.virtual_service,
            lambda spec: {
                "http": weighted_http(spec.get("http") or [], target, weight, self.routes)
            },
        )

    def weight_object(self, target: RoutedObject) -> tuple[ResourceKind, str, str]:
        return VIRTUALSERVICES, self._namespace(target), self.virtual_service

    def _weight_in(self, obj: JSON, target: RoutedObject) -> int | None:
        return read_weight(obj, target, self.routes)
