"""Faults on the real API server: a missing HTTPRoute and a missing or refused Prometheus credential
show in the ModelDeployment (status, one Warning event per cause, `kubectl describe`, the plugin),
take no traffic from the stable, and clear by themselves once the cause is gone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.prometheus import PrometheusProcess
from tests.integration.helm_chart import of_kind, render
from tests.integration.operator_process import (
    Operator,
    apply,
    apply_and_settle,
    deployments,
    events,
    healthy_on,
    install_crds,
    md_manifest,
    model,
    revision,
    roll_to,
    service_account_kubeconfig,
    status,
    wait_for,
)
from tests.integration.test_cli_kubectl import plugin
from tests.integration.test_prometheus_client import PASSWORD_HASH
from tests.testenv.controlplane import ControlPlane

pytestmark = pytest.mark.cluster

CRDS = Path(__file__).parent / "crds"
ROUTE = "fraud-route"


@pytest.fixture(scope="module")
def httproute_crd(control_plane: ControlPlane) -> None:
    install_crds(control_plane, CRDS / "httproute.yaml", "httproutes.gateway.networking.k8s.io")


def route(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": ROUTE},
        "spec": {"rules": [{"backendRefs": [{"name": f"{name}-stable", "port": 8080}]}]},
    }


def warnings(cp: ControlPlane, namespace: str, name: str, reason: str) -> list[str]:
    return [
        e["message"]
        for e in events(cp, namespace, name)
        if e["type"] == "Warning" and e["reason"] == reason
    ]


def progressing_reason(st: dict[str, Any]) -> str:
    conditions = st.get("conditions") or []
    return next((c["reason"] for c in conditions if c["type"] == "Progressing"), "")


def test_a_missing_route_holds_the_rollout_says_so_once_and_clears_when_created(
    control_plane: ControlPlane, httproute_crd: None, namespace: str, operator: Operator
) -> None:
    cp, name = control_plane, "routed"
    steps = [{"setWeight": 50}, {"pause": {}}]
    routing = {"gatewayAPI": {"httpRoute": ROUTE}}
    manifest = md_manifest(
        name, model("1"), {"canary": {"steps": steps, "trafficRouting": routing}}
    )
    apply(cp, namespace, manifest)
    cause = f"HTTPRoute {namespace}/{ROUTE} not found"

    def held() -> dict[str, Any] | None:
        st = status(cp, namespace, name)
        return st if st.get("pauseReason") == "Fault" and cause in st.get("message", "") else None

    st = wait_for("the rollout held on the missing route", held)
    assert st["phase"] == "Paused"
    assert progressing_reason(st) == "TrafficRoutingError"
    # The operator looks again every few seconds; the event is posted once for the cause.
    wait_for("three attempts", lambda: operator.log().count(cause) >= 3, timeout=60)
    assert len(warnings(cp, namespace, name, "TrafficRoutingError")) == 1
    described = cp.kubectl("describe", "modeldeployment", name, "-n", namespace).stdout
    assert cause in described and "TrafficRoutingError" in described
    assert cause in plugin(cp, "status", name, "-n", namespace).stdout
    # The route appears: the first revision goes on to Healthy by itself.
    apply(cp, namespace, route(name))
    wait_for(
        "Healthy once the route exists", lambda: healthy_on(cp, namespace, name, revision(manifest))
    )
    assert status(cp, namespace, name).get("pauseReason") is None


@pytest.fixture
def refusing_prometheus(tmp_path: Path) -> Iterator[str]:
    """A real Prometheus that wants basic auth: the operator's bearer token gets a 401."""
    prometheus = PrometheusProcess(
        tmp_path / "prometheus", web_config={"basic_auth_users": {"admin": PASSWORD_HASH}}
    )
    prometheus.username, prometheus.password = "admin", "s3cret"
    with prometheus:
        yield prometheus.url


def test_missing_and_refused_prometheus_credentials_show_in_the_status_and_events(
    control_plane: ControlPlane, namespace: str, operator: Operator, refusing_prometheus: str
) -> None:
    cp, name = control_plane, "scored"
    analysis = {
        "interval": "2s",
        "prometheus": {
            "address": refusing_prometheus,
            "auth": {"bearerTokenSecret": {"name": "prom-auth", "key": "token"}},
        },
        "metrics": [{"name": "errors", "builtin": "errorRate", "max": 0.01}],
    }
    steps = [{"setWeight": 50}, {"analysis": {}}]
    manifest = md_manifest(name, model("1"), {"canary": {"steps": steps}}, 2, analysis=analysis)
    stable = apply_and_settle(cp, namespace, manifest)
    roll_to(cp, namespace, manifest, "2")
    missing = f"Secret {namespace}/prom-auth not found"

    def measured(text: str) -> dict[str, Any] | None:
        st = status(cp, namespace, name)
        results = (st.get("analysis") or {}).get("results") or []
        return st if any(text in r.get("message", "") for r in results) else None

    st = wait_for("the missing Secret in status.analysis", lambda: measured(missing))
    assert st["stableRevision"] == stable
    wait_for(
        "a MetricSourceError event naming the Secret",
        lambda: any(missing in m for m in warnings(cp, namespace, name, "MetricSourceError")),
    )
    assert missing in cp.kubectl("describe", "modeldeployment", name, "-n", namespace).stdout
    # The Secret appears; Prometheus then refuses the token: a new cause, a new event.
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "prom-auth"},
        "stringData": {"token": "not-accepted"},
    }
    cp.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(secret))
    wait_for("the 401 in status.analysis", lambda: measured("HTTP 401"))
    wait_for(
        "a MetricSourceError event for the 401",
        lambda: any("HTTP 401" in m for m in warnings(cp, namespace, name, "MetricSourceError")),
    )
    assert len([m for m in warnings(cp, namespace, name, "MetricSourceError") if missing in m]) == 1
    # Never promoted on errors, and the stable keeps its pods.
    st = status(cp, namespace, name)
    assert st["stableRevision"] == stable
    assert deployments(cp, namespace, name)[stable] == 2


def route_weights(cp: ControlPlane, namespace: str) -> dict[str, int]:
    route_now = json.loads(
        cp.kubectl("get", "httproute", ROUTE, "-n", namespace, "-o", "json").stdout
    )
    refs = route_now["spec"]["rules"][0]["backendRefs"]
    return {ref["name"]: ref.get("weight", 1) for ref in refs}


def test_a_route_changed_by_someone_else_is_put_back_at_once_and_the_change_named(
    control_plane: ControlPlane, httproute_crd: None, namespace: str, crd: str, tmp_path: Path
) -> None:
    cp, name = control_plane, "synced"
    apply(cp, namespace, route(name))
    steps = [{"setWeight": 30}, {"pause": {}}]  # paused for good: nothing else would wake it
    strategy = {"canary": {"steps": steps, "trafficRouting": {"gatewayAPI": {"httpRoute": ROUTE}}}}
    manifest = md_manifest(name, model("1"), strategy)
    args = ("--standalone", "--watch-routing", "httproutes")
    with Operator(cp, namespace, tmp_path, *args).start():
        apply_and_settle(cp, namespace, manifest)
        roll_to(cp, namespace, manifest, "2")
        wait_for(
            "paused at 30 %",
            lambda: (
                (st := status(cp, namespace, name)).get("phase") == "Paused"
                and st.get("canaryWeight") == 30
            ),
        )
        expected = {f"{name}-stable": 70, f"{name}-canary": 30}
        assert route_weights(cp, namespace) == expected
        # As an Argo CD sync of the route from Git would: all traffic back on the stable.
        reset = {"spec": {"rules": [{"backendRefs": [{"name": f"{name}-stable", "port": 8080}]}]}}
        cp.kubectl(
            "patch", "httproute", ROUTE, "-n", namespace, "--type=merge", "-p", json.dumps(reset)
        )
        wait_for("the weights put back", lambda: route_weights(cp, namespace) == expected)
        changed = wait_for(
            "a TrafficRoutingChanged event",
            lambda: warnings(cp, namespace, name, "TrafficRoutingChanged"),
        )
        assert f"HTTPRoute {namespace}/{ROUTE} was changed by kubectl-patch" in changed[0]
        wait_for(
            "the status at 30 % again", lambda: status(cp, namespace, name)["canaryWeight"] == 30
        )


def test_an_operator_forbidden_by_rbac_holds_the_rollout_and_goes_on_once_granted(
    control_plane: ControlPlane, namespace: str, crd: str, tmp_path: Path
) -> None:
    """The operator runs as a ServiceAccount with the chart's namespaced rights less creating and
    patching Deployments."""
    cp, name, account = control_plane, "guarded", "operator"
    objects = render("--set", f"watchNamespaces={{{namespace}}}", namespace=namespace)
    (role,) = of_kind(objects, "Role")
    (framework,) = of_kind(objects, "ClusterRole")
    deployments_rule = next(r for r in role["rules"] if r["resources"] == ["deployments"])
    full_rights = list(deployments_rule["verbs"])
    deployments_rule["verbs"] = ["get", "list", "watch"]
    framework["metadata"]["name"] = f"{namespace}-operator-framework"
    subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": account, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "op"},
        "subjects": [subject],
    }
    cluster_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": framework["metadata"]["name"]},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": framework["metadata"]["name"],
        },
        "subjects": [subject],
    }
    role["metadata"] = {"name": "op", "namespace": namespace}
    cp.kubectl("create", "serviceaccount", account, "-n", namespace)
    for obj in (role, binding, framework, cluster_binding):
        cp.kubectl("apply", "-f", "-", input=json.dumps(obj))
    kubeconfig = service_account_kubeconfig(
        cp, namespace, account, tmp_path / "operator.kubeconfig"
    )
    manifest = md_manifest(name, model("1"), {"canary": {"steps": [{"setWeight": 50}]}})
    try:
        with Operator(cp, namespace, tmp_path, kubeconfig=kubeconfig).start():
            apply(cp, namespace, manifest)
            held = wait_for(
                "the rollout held on Forbidden",
                lambda: (st := status(cp, namespace, name)).get("pauseReason") == "Fault" and st,
            )
            assert progressing_reason(held) == "Forbidden"
            assert "deployments" in held["message"] and "forbidden" in held["message"]
            assert f"system:serviceaccount:{namespace}:{account}" in held["message"]
            assert len(warnings(cp, namespace, name, "Forbidden")) == 1
            # The missing right is granted: the rollout goes on by itself.
            deployments_rule["verbs"] = full_rights
            cp.kubectl("apply", "-f", "-", input=json.dumps(role))
            first = revision(manifest)
            wait_for("Healthy once granted", lambda: healthy_on(cp, namespace, name, first))
    finally:
        cp.kubectl("delete", "clusterrolebinding,clusterrole", framework["metadata"]["name"])
