"""NGINX router: a canary copy of the user's stable Ingress carrying ingress-nginx's canary
annotations, its backends pointed from `<name>-stable` to `<name>-canary`.

The canary Ingress is ours (server-side apply, owned by the ModelDeployment); the stable Ingress
is only read.
"""

from __future__ import annotations

import copy

from modelrollout.api.names import NAME_LABEL
from modelrollout.kube import INGRESSES, Kube, ResourceKind
from modelrollout.traffic.base import JSON, RoutedObject, RouterError
from modelrollout.traffic.weighted import WeightedRouter

CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def canary_ingress_name(stable_ingress: str) -> str:
    return f"{stable_ingress}-canary"


def _retarget(rules: list[JSON], target: RoutedObject) -> list[JSON]:
    rules = copy.deepcopy(rules)
    found = False
    for rule in rules:
        for path in (rule.get("http") or {}).get("paths") or []:
            service = (path.get("backend") or {}).get("service") or {}
            if service.get("name") == target.stable_service:
                service["name"] = target.canary_service
                found = True
    if not found:
        raise RouterError(f"no backend is the Service {target.stable_service}")
    return rules


def canary_ingress(stable: JSON, target: RoutedObject, weight: int) -> JSON:
    spec: JSON = {"rules": _retarget(stable.get("spec", {}).get("rules") or [], target)}
    if "ingressClassName" in stable.get("spec", {}):
        spec["ingressClassName"] = stable["spec"]["ingressClassName"]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": canary_ingress_name(stable["metadata"]["name"]),
            "namespace": target.namespace,
            "labels": {NAME_LABEL: target.name},
            "annotations": {CANARY: "true", CANARY_WEIGHT: str(max(0, min(100, weight)))},
            "ownerReferences": [target.owner_reference],
        },
        "spec": spec,
    }


class NginxRouter(WeightedRouter):
    def __init__(self, kube: Kube, stable_ingress: str) -> None:
        self.kube = kube
        self.stable_ingress = stable_ingress

    def _write_weight(self, target: RoutedObject, weight: int) -> None:
        stable = self.kube.get(INGRESSES, target.namespace, self.stable_ingress)
        if stable is None:
            raise RouterError(f"Ingress {target.namespace}/{self.stable_ingress} not found")
        try:
            canary = canary_ingress(stable, target, weight)
        except RouterError as error:
            raise RouterError(
                f"Ingress {target.namespace}/{self.stable_ingress}: {error}"
            ) from error
        self.kube.apply(INGRESSES, canary)

    def weight_object(self, target: RoutedObject) -> tuple[ResourceKind, str, str]:
        return INGRESSES, target.namespace, canary_ingress_name(self.stable_ingress)

    def _weight_in(self, obj: JSON, target: RoutedObject) -> int | None:
        raw = (obj["metadata"].get("annotations") or {}).get(CANARY_WEIGHT, "0")
        try:
            return max(0, min(100, int(raw)))
        except ValueError:
            return 0
