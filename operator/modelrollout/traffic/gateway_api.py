"""Gateway API router: weights on an HTTPRoute's backendRefs to `<name>-stable` / `<name>-canary`.

The HTTPRoute is the user's; every rule that references either Service gets exactly the two
weighted backendRefs (other backends of that rule are kept).
"""

from __future__ import annotations

import copy
from typing import Any

from modelrollout.kube import HTTPROUTES, Kube, ResourceKind
from modelrollout.traffic.base import JSON, RoutedObject, RouterError
from modelrollout.traffic.patching import split, update_spec
from modelrollout.traffic.weighted import WeightedRouter


def _is_ours(ref: JSON, services: tuple[str, str]) -> bool:
    return ref.get("kind", "Service") == "Service" and ref.get("name") in services


def weighted_rules(rules: list[JSON], target: RoutedObject, weight: int, port: int) -> list[JSON]:
    ours = (target.stable_service, target.canary_service)
    stable_weight, canary_weight = split(weight)
    result: list[JSON] = []
    touched = False
    for rule in rules:
        refs: list[JSON] = rule.get("backendRefs") or []
        mine = [ref for ref in refs if _is_ours(ref, ours)]
        if not mine:
            result.append(rule)
            continue
        touched = True
        new_rule = copy.deepcopy(rule)
        new_rule["backendRefs"] = [ref for ref in refs if not _is_ours(ref, ours)] + [
            {"name": target.stable_service, "port": port, "weight": stable_weight},
            {"name": target.canary_service, "port": port, "weight": canary_weight},
        ]
        result.append(new_rule)
    if not touched:
        raise RouterError(f"HTTPRoute references neither {ours[0]} nor {ours[1]}")
    return result


def read_weight(route: JSON, target: RoutedObject) -> int | None:
    for rule in route.get("spec", {}).get("rules") or []:
        weights: dict[Any, int] = {
            ref.get("name"): int(ref.get("weight", 1)) for ref in rule.get("backendRefs") or []
        }
        if target.stable_service in weights or target.canary_service in weights:
            canary = weights.get(target.canary_service, 0)
            total = canary + weights.get(target.stable_service, 0)
            return round(100 * canary / total) if total else 0
    return None


class GatewayApiRouter(WeightedRouter):
    def __init__(
        self, kube: Kube, route: str, route_namespace: str | None = None, port: int = 8080
    ) -> None:
        self.kube = kube
        self.route = route
        self.route_namespace = route_namespace
        self.port = port

    def _namespace(self, target: RoutedObject) -> str:
        return self.route_namespace or target.namespace

    def _write_weight(self, target: RoutedObject, weight: int) -> None:
        update_spec(
            self.kube,
            HTTPROUTES,
            self._namespace(target),
            self.route,
            lambda spec: {
                "rules": weighted_rules(spec.get("rules") or [], target, weight, self.port)
            },
        )

    def weight_object(self, target: RoutedObject) -> tuple[ResourceKind, str, str]:
        return HTTPROUTES, self._namespace(target), self.route

    def _weight_in(self, obj: JSON, target: RoutedObject) -> int | None:
        return read_weight(obj, target)
