"""The one place that maps spec.strategy's trafficRouting to a router (one case per router)."""

from __future__ import annotations

from modelrollout.api import ModelDeploymentSpec
from modelrollout.kube import Kube
from modelrollout.traffic.base import TrafficRouter
from modelrollout.traffic.gateway_api import GatewayApiRouter
from modelrollout.traffic.istio import IstioRouter
from modelrollout.traffic.nginx import NginxRouter
from modelrollout.traffic.replicas import ReplicasRouter


def router_for(spec: ModelDeploymentSpec, kube: Kube) -> TrafficRouter:
    strategy = spec.strategy.canary or spec.strategy.blue_green
    routing = strategy.traffic_routing if strategy is not None else None
    blue_green = spec.strategy.blue_green is not None
    if routing is None or routing.replicas is not None:
        return ReplicasRouter(kube, blue_green)
    if routing.gateway_api is not None:
        ref = routing.gateway_api
        return GatewayApiRouter(kube, ref.http_route, ref.namespace, ref.port)
    if routing.istio is not None:
        return IstioRouter(kube, routing.istio.virtual_service, tuple(routing.istio.routes))
    if routing.nginx is not None:
        return NginxRouter(kube, routing.nginx.stable_ingress)
    return ReplicasRouter(kube, blue_green)
