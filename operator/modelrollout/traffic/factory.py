"""The routers the operator knows, and the one a spec's trafficRouting names.

Adding a router = a module implementing traffic.base.TrafficRouter and one line in ROUTERS (a
function that builds it when a trafficRouting names it).
"""

from __future__ import annotations

from collections.abc import Callable

from modelrollout.api import ModelDeploymentSpec, TrafficRouting
from modelrollout.kube import Kube
from modelrollout.traffic.base import TrafficRouter
from modelrollout.traffic.gateway_api import GatewayApiRouter
from modelrollout.traffic.istio import IstioRouter
from modelrollout.traffic.nginx import NginxRouter
from modelrollout.traffic.replicas import ReplicasRouter


def _gateway_api(routing: TrafficRouting, kube: Kube, _: bool) -> TrafficRouter | None:
    ref = routing.gateway_api
    return None if ref is None else GatewayApiRouter(kube, ref.http_route, ref.namespace, ref.port)


def _istio(routing: TrafficRouting, kube: Kube, _: bool) -> TrafficRouter | None:
    ref = routing.istio
    return None if ref is None else IstioRouter(kube, ref.virtual_service, tuple(ref.routes))


def _nginx(routing: TrafficRouting, kube: Kube, _: bool) -> TrafficRouter | None:
    ref = routing.nginx
    return None if ref is None else NginxRouter(kube, ref.stable_ingress)


# Each entry builds its router when the trafficRouting names it, else answers None:
# (the trafficRouting, the client, whether the strategy is blue/green) -> router or None.
ROUTERS: tuple[Callable[[TrafficRouting, Kube, bool], TrafficRouter | None], ...] = (
    _gateway_api,
    _istio,
    _nginx,
)


def router_for(spec: ModelDeploymentSpec, kube: Kube) -> TrafficRouter:
    """The router spec.strategy's trafficRouting names; the replicas router by default."""
    strategy = spec.strategy.canary or spec.strategy.blue_green
    routing = strategy.traffic_routing if strategy is not None else None
    blue_green = spec.strategy.blue_green is not None
    if routing is not None:
        for build in ROUTERS:
            router = build(routing, kube, blue_green)
            if router is not None:
                return router
    return ReplicasRouter(kube, blue_green)
