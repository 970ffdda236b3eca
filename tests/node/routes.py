"""The user's side of Gateway API routing for a ModelDeployment: its HTTPRoute, the strategy that
names it, and what the gateway (Traefik) has applied of the weights the operator writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.node.workload import Load
from tests.testenv.gateway import Gateway
from tests.testenv.waiting import eventually

# Traefik balances weighted backends by smooth weighted round robin, which is deterministic: a
# few hundred answers show the weight within a few requests.
SHARE_ANSWERS = 150


def http_route(
    gateway: Gateway, name: str, route: str | None = None, hostname: str | None = None
) -> dict[str, Any]:
    """The user's HTTPRoute (`route`, default `name`): the Gateway's requests for model `name`
    (its V2 paths; for `hostname` only, when given) go to the stable Service of ModelDeployment
    `name`; the operator adds the candidate's Service with its weight."""
    models = {"path": {"type": "PathPrefix", "value": f"/v2/models/{name}"}}
    spec: dict[str, Any] = {
        "parentRefs": [gateway.parent_ref],
        "rules": [{"matches": [models], "backendRefs": [{"name": f"{name}-stable", "port": 8080}]}],
    }
    if hostname is not None:
        spec["hostnames"] = [hostname]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": route or name},
        "spec": spec,
    }


def routed_strategy(name: str, steps: Sequence[object]) -> dict[str, Any]:
    return {"canary": {"steps": steps, "trafficRouting": {"gatewayAPI": {"httpRoute": name}}}}


def role_of(service_name: str, ns: str, name: str) -> str | None:
    """ "stable" or "canary" for Traefik's name of one of the two Services, else None."""
    for role in ("stable", "canary"):
        if service_name.startswith(f"{ns}-{name}-{role}-"):
            return role
    return None


def applied_weights(gateway: Gateway, ns: str, name: str) -> dict[str, int]:
    """The weights Traefik applies now to the two Services of ModelDeployment `name`, by role;
    a role whose Service has no ready endpoint in Traefik's view is left out."""
    weights: dict[str, int] = {}
    servers: dict[str, int] = {}
    for service in gateway.api("/api/http/services"):
        role = role_of(service["name"], ns, name)
        if role is not None:
            servers[role] = len((service.get("loadBalancer") or {}).get("servers") or [])
        for backend in (service.get("weighted") or {}).get("services") or []:
            role = role_of(backend["name"], ns, name)
            if role is not None:
                weights[role] = weights.get(role, 0) + int(backend.get("weight", 1))
    return {role: w for role, w in weights.items() if w == 0 or servers.get(role)}


def gateway_applies(gateway: Gateway, ns: str, name: str, canary_weight: int) -> bool:
    """Traefik sends `canary_weight` % to the candidate, and every Service with a share has pods
    to send it to (the EndpointSlices follow pod readiness a moment later)."""
    weights = applied_weights(gateway, ns, name)
    total = sum(weights.values())
    return total > 0 and round(100 * weights.get("canary", 0) / total) == canary_weight


def measured_share(
    load: Load,
    gateway: Gateway,
    ns: str,
    name: str,
    weight: int,
    candidate: tuple[str, ...] = ("200 v2",),
    answers: int = SHARE_ANSWERS,
) -> float:
    """The share of the next `answers` answers of `load` that came from the candidate (answers
    counted under the keys `candidate`), measured while the gateway applies `weight` % to it."""
    eventually(lambda: gateway_applies(gateway, ns, name, weight),
               f"the gateway applying {weight} % to the candidate", 60)  # fmt: skip
    before = load.counts()
    eventually(lambda: (load.counts() - before).total() >= answers, f"{answers} answers", 60)
    seen = load.counts() - before
    # The weight held from the first answer to the last: the share is that weight's.
    assert gateway_applies(gateway, ns, name, weight), f"the weight moved from {weight} %"
    return sum(seen[key] for key in candidate) / seen.total()
