"""Traffic routers against the real API server: the objects they write, and what they read back.

The minimal HTTPRoute and VirtualService CRDs in crds/ are installed into the test control plane;
Ingress is built in. Every router is driven through the same Protocol methods the shell uses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from modelrollout.api.names import NAME_LABEL, REVISION_LABEL
from modelrollout.kube import SERVICES, Kube, ResourceKind, make_api_client
from modelrollout.traffic.base import RoutedObject, TrafficRouter
from modelrollout.traffic.gateway_api import GatewayApiRouter
from modelrollout.traffic.istio import IstioRouter
from modelrollout.traffic.nginx import NginxRouter
from modelrollout.traffic.replicas import ReplicasRouter
from tests.integration.operator_process import install_crds
from tests.testenv.controlplane import ControlPlane

CRDS = Path(__file__).parent / "crds"
CONFIGMAPS = ResourceKind("", "v1", "ConfigMap", "configmaps")


@pytest.fixture(scope="module")
def router_crds(control_plane: ControlPlane) -> None:
    install_crds(control_plane, CRDS / "httproute.yaml", "httproutes.gateway.networking.k8s.io")
    install_crds(control_plane, CRDS / "virtualservice.yaml", "virtualservices.networking.istio.io")


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[Kube]:
    api = make_api_client(str(kubeconfig))
    yield Kube(api)
    api.close()


def get(cp: ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any]:
    out = cp.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture
def target(control_plane: ControlPlane, namespace: str, kube: Kube) -> RoutedObject:
    """A ConfigMap stands in for the ModelDeployment as the owner (a real object, so the
    garbage collector keeps the children); the Services select revisions as the core does."""
    name = f"md{uuid.uuid4().hex[:6]}"
    owner = kube.create(
        CONFIGMAPS,
        namespace,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}},
    )
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": name,
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return RoutedObject(name, namespace, ref)


def apply_services(kube: Kube, target: RoutedObject, revisions: Mapping[str, str | None]) -> None:
    """Services as the core writes them: service name -> the revision it selects (None: all)."""
    for service, revision in revisions.items():
        selector = {NAME_LABEL: target.name}
        if revision:
            selector[REVISION_LABEL] = revision
        kube.apply(
            SERVICES,
            {
                "metadata": {
                    "name": service,
                    "namespace": target.namespace,
                    "labels": {NAME_LABEL: target.name},
                    "ownerReferences": [target.owner_reference],
                },
                "spec": {"selector": selector, "ports": [{"name": "http", "port": 8080}]},
            },
        )


def apply_routing(
    cp: ControlPlane,
    kube: Kube,
    target: RoutedObject,
    api_version: str,
    kind: str,
    spec: dict[str, Any],
) -> None:
    """The user's routing object `web`, and the canary Services of stable aaa and canary bbb."""
    metadata = {"name": "web", "namespace": target.namespace}
    obj = {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}
    cp.kubectl("apply", "-f", "-", input=json.dumps(obj))
    revisions = {target.name: None, target.stable_service: "aaa", target.canary_service: "bbb"}
    apply_services(kube, target, revisions)


def read_back(router: TrafficRouter, target: RoutedObject) -> tuple[str | None, str | None, int]:
    """(stable, canary, canary weight) as the router reads them from the cluster."""
    seen = router.current_weight(target)
    assert seen is not None
    return seen.stable_revision, seen.canary_revision, seen.canary_weight


def test_gateway_api_sets_and_reads_backend_weights(
    router_crds: None, control_plane: ControlPlane, kube: Kube, target: RoutedObject
) -> None:
    ns = target.namespace
    spec = {
        "parentRefs": [{"name": "gw"}],
        "rules": [
            {"backendRefs": [{"name": target.stable_service, "port": 8080}]},
            {"backendRefs": [{"name": "unrelated", "port": 80, "weight": 5}]},
        ],
    }
    apply_routing(control_plane, kube, target, "gateway.networking.k8s.io/v1", "HTTPRoute", spec)
    router = GatewayApiRouter(kube, "web", port=8080)

    router.set_weight(target, "aaa", "bbb", 30)

    rules = get(control_plane, ns, "httproute", "web")["spec"]["rules"]
    assert rules[0]["backendRefs"] == [
        {"name": target.stable_service, "port": 8080, "weight": 70},
        {"name": target.canary_service, "port": 8080, "weight": 30},
    ]
    assert rules[1]["backendRefs"] == [{"name": "unrelated", "port": 80, "weight": 5}]
    assert read_back(router, target) == ("aaa", "bbb", 30)

    router.switch_active(target, "bbb", None)  # blue/green: everything to <name>-stable
    refs = get(control_plane, ns, "httproute", "web")["spec"]["rules"][0]["backendRefs"]
    assert [ref["weight"] for ref in refs] == [100, 0]


def test_istio_sets_and_reads_route_weights(
    router_crds: None, control_plane: ControlPlane, kube: Kube, target: RoutedObject
) -> None:
    ns = target.namespace
    stable = {
        "host": f"{target.stable_service}.{ns}.svc.cluster.local",
        "port": {"number": 8080},
    }
    spec = {
        "hosts": ["web.example"],
        "http": [
            {"name": "primary", "route": [{"destination": stable, "weight": 100}]},
            {"name": "other", "route": [{"destination": {"host": "elsewhere"}}]},
        ],
    }
    apply_routing(
        control_plane, kube, target, "networking.istio.io/v1beta1", "VirtualService", spec
    )
    router = IstioRouter(kube, "web", routes=("primary",))

    router.set_weight(target, "aaa", "bbb", 25)

    http = get(control_plane, ns, "virtualservice", "web")["spec"]["http"]
    assert http[0]["route"] == [
        {"destination": {"host": target.stable_service, "port": {"number": 8080}}, "weight": 75},
        {"destination": {"host": target.canary_service, "port": {"number": 8080}}, "weight": 25},
    ]
    assert http[1] == {"name": "other", "route": [{"destination": {"host": "elsewhere"}}]}
    assert read_back(router, target) == ("aaa", "bbb", 25)


def test_nginx_writes_an_owned_canary_ingress(
    control_plane: ControlPlane, kube: Kube, target: RoutedObject
) -> None:
    ns = target.namespace
    backend = {"service": {"name": target.stable_service, "port": {"number": 8080}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    spec = {
        "ingressClassName": "nginx",
        "rules": [{"host": "web.example", "http": {"paths": [path]}}],
    }
    apply_routing(control_plane, kube, target, "networking.k8s.io/v1", "Ingress", spec)
    router = NginxRouter(kube, "web")

    router.set_weight(target, "aaa", "bbb", 40)

    canary = get(control_plane, ns, "ingress", "web-canary")
    annotations = canary["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "40"
    backend = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == target.canary_service
    assert canary["spec"]["ingressClassName"] == "nginx"
    assert canary["metadata"]["ownerReferences"][0]["uid"] == target.owner_reference["uid"]
    # The user's Ingress is only read.
    user_annotations = get(control_plane, ns, "ingress", "web")["metadata"].get("annotations", {})
    assert not any(key.startswith("nginx.ingress") for key in user_annotations)
    assert read_back(router, target)[2] == 40

    router.set_weight(target, "aaa", None, 0)  # rollout over: no canary traffic
    canary = get(control_plane, ns, "ingress", "web-canary")
    assert canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "0"


def test_replicas_router_reads_blue_green_selectors(kube: Kube, target: RoutedObject) -> None:
    router = ReplicasRouter(kube, blue_green=True)
    assert router.current_weight(target) is None  # nothing routed yet
    revisions = {target.name: "bbb", target.stable_service: "bbb", target.preview_service: "ccc"}
    apply_services(kube, target, revisions)
    seen = router.current_weight(target)
    assert seen is not None
    assert (seen.active_revision, seen.preview_revision) == ("bbb", "ccc")
