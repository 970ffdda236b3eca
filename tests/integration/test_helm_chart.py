"""The Helm chart rendered by the real helm: lint, RBAC, security, install.yaml in sync, and
the rendered objects accepted by the real API server (server-side dry run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelrollout.operator_main import parse_args
from tests.integration.helm_chart import (
    CHART,
    EVERYTHING,
    REPO,
    delete_peering_crds_of,
    granted,
    helm,
    helm_binary,
    of_kind,
    render,
    template_text,
)
from tests.integration.operator_process import install_crds
from tests.testenv.controlplane import ControlPlane

CRDS = Path(__file__).parent / "crds"


@pytest.mark.parametrize(
    "values", [(), EVERYTHING, (*EVERYTHING, "--set", "watchNamespaces={a,b}")]
)
def test_helm_lint_strict_is_clean(values: tuple[str, ...]) -> None:
    result = helm("lint", "--strict", str(CHART), *values)
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


def test_install_yaml_is_rendered_from_the_current_chart() -> None:
    env = dict(os.environ, HELM=helm_binary())
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "render_install.py"), "--check"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_argocd_cm_is_rendered_from_the_current_scripts() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "render_argocd_cm.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("values", [(), EVERYTHING, (*EVERYTHING, "--set", "watchNamespaces={a}")])
def test_rbac_has_no_wildcards(values: tuple[str, ...]) -> None:
    for role in of_kind(render(*values), "Role") + of_kind(render(*values), "ClusterRole"):
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], f"{role['metadata']['name']}: {rule}"
            assert "nonResourceURLs" not in rule


def test_default_rbac_grants_only_what_the_operator_uses() -> None:
    rules = granted(render())
    resources = {(g, r) for g, r, _ in rules}
    assert resources == {
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("modelrollout.io", "modeldeployments"),
        ("modelrollout.io", "modeldeployments/status"),
        ("modelrollout.io", "modeldeployments/finalizers"),
        ("apps", "deployments"),
        ("", "services"),
        ("", "configmaps"),
        ("", "events"),
        ("events.k8s.io", "events"),
        ("batch", "jobs"),
        ("", "pods"),
    }
    # Read-only where the operator only reads; never secrets, never its own spec's delete.
    assert {v for g, r, v in rules if r == "customresourcedefinitions"} == {"get", "list", "watch"}
    assert ("modelrollout.io", "modeldeployments", "delete") not in rules
    assert ("modelrollout.io", "modeldeployments", "update") not in rules
    assert not any(r == "secrets" for _, r, _ in rules)
    assert {v for g, r, v in rules if r == "pods"} == {"get", "list", "watch"}
    # <name>-shadow is written (server-side apply), never listed, and goes with its owner.
    assert {v for g, r, v in rules if r == "configmaps"} == {"get", "create", "update", "patch"}


def test_routers_and_peering_add_their_rules_only_when_enabled() -> None:
    rules = {(g, r) for g, r, _ in granted(render(*EVERYTHING))}
    assert ("gateway.networking.k8s.io", "httproutes") in rules
    assert ("networking.istio.io", "virtualservices") in rules
    assert ("networking.k8s.io", "ingresses") in rules
    assert ("kopf.dev", "clusterkopfpeerings") in rules
    namespaced = {
        (g, r) for g, r, _ in granted(render(*EVERYTHING, "--set", "watchNamespaces={a}"))
    }
    assert ("kopf.dev", "kopfpeerings") in namespaced
    assert ("kopf.dev", "clusterkopfpeerings") not in namespaced


def test_the_enabled_routers_objects_are_watched_and_only_those() -> None:
    def operator_args(*flags: str) -> list[str]:
        (deployment,) = of_kind(render(*flags), "Deployment")
        args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        return args

    assert not [a for a in operator_args() if a.startswith("--watch-routing")]
    routers = ("gatewayAPI", "istio", "nginx")
    args = operator_args(*(f for r in routers for f in ("--set", f"trafficRouting.{r}=true")))
    watched = [a for a in args if a.startswith("--watch-routing")]
    assert watched == [
        "--watch-routing=httproutes",
        "--watch-routing=virtualservices",
        "--watch-routing=ingresses",
    ]
    parsed = parse_args([a.replace("$(POD_INDEX)", "0") for a in args])
    assert parsed.watch_routing == ["httproutes", "virtualservices", "ingresses"]


def test_watch_namespaces_use_roles_not_cluster_wide_rights() -> None:
    objects = render("--set", "watchNamespaces={team-a,team-b}")
    roles = of_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    bindings = of_kind(objects, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    cluster = granted(of_kind(objects, "ClusterRole"))
    assert {r for _, r, _ in cluster} == {"customresourcedefinitions", "namespaces"}
    assert {v for *_, v in cluster} == {"get", "list", "watch"}
    args = of_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    assert "--all-namespaces" not in args


def test_operator_pod_is_locked_down_and_probed() -> None:
    (deployment,) = of_kind(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["modelrollout-operator"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert "--standalone" in container["args"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] and ctx["runAsNonRoot"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["limits"]["memory"]
    assert pod["serviceAccountName"] == "mr-modelrollout"
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    (service,) = of_kind(render(), "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_peered_replicas_get_distinct_priorities() -> None:
    objects = render(*EVERYTHING)
    assert not of_kind(objects, "Deployment")
    (sts,) = of_kind(objects, "StatefulSet")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert "--peering=modelrollout" in container["args"]
    assert "--priority=$(POD_INDEX)" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    field = env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.labels['apps.kubernetes.io/pod-index']"
    peering = [o for o in objects if o["kind"] == "ClusterKopfPeering"]
    assert peering[0]["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"


def test_two_active_operators_are_refused() -> None:
    result = helm("template", "mr", str(CHART), "--set", "replicaCount=2", check=False)
    assert result.returncode != 0
    assert "needs peering.enabled=true" in result.stderr


def test_dashboard_configmap_carries_the_sidecar_label_and_valid_json() -> None:
    (cm,) = of_kind(render("--set", "dashboards.enabled=true"), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["modelrollout.json"])["uid"] == "modelrollout"


@pytest.mark.parametrize(
    "values", [(), (*EVERYTHING, "--set", "watchNamespaces={dry-a,dry-b}")], ids=["default", "all"]
)
def test_api_server_accepts_the_rendered_chart(
    control_plane: ControlPlane, values: tuple[str, ...]
) -> None:
    cp = control_plane
    # The Prometheus Operator's kinds exist in a cluster that enables the monitors.
    install_crds(
        cp, CRDS / "monitoring.yaml",
        "servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com",
    )  # fmt: skip
    for ns in ("ops", "dry-a", "dry-b"):
        if cp.kubectl("get", "namespace", ns, check=False).returncode != 0:
            cp.create_namespace(ns)
    # Hooks (the peering objects) need the peering CRDs to exist first: helm install proves them.
    text = template_text("--include-crds", "--no-hooks", *values)
    result = cp.kubectl("apply", "--dry-run=server", "--server-side", "-f", "-", input=text)
    created = [line for line in result.stdout.splitlines() if "(server dry run)" in line]
    assert len(created) == text.count("\nkind: ") + text.startswith("kind: "), result.stdout


def test_kubectl_apply_of_install_yaml_runs_the_operator(control_plane: ControlPlane) -> None:
    cp = control_plane
    install = REPO / "manifests" / "install.yaml"
    cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(install))
    try:
        cp.kubectl(
            "wait", "--for=condition=Available", "--timeout=120s",
            "-n", "modelrollout-system", "deployment/modelrollout",
        )  # fmt: skip
        ns = json.loads(cp.kubectl("get", "namespace", "modelrollout-system", "-o", "json").stdout)
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    finally:
        # Everything but the CRD (other tests' ModelDeployments live in it).
        cp.kubectl("delete", "namespace", "modelrollout-system", "--wait=false", check=False)
        cp.kubectl(
            "delete", "clusterrole,clusterrolebinding", "modelrollout", "modelrollout-framework",
            check=False,
        )  # fmt: skip


def test_helm_install_with_peering_creates_the_peering_objects(control_plane: ControlPlane) -> None:
    cp = control_plane
    ns = "peered-ops"
    cp.create_namespace(ns)
    try:
        cp.helm(
            "install", "peered", str(CHART), "--namespace", ns, "--set", "peering.enabled=true",
            "--set", "replicaCount=2", "--set", "peering.name=peered-test", "--wait",
            "--timeout", "180s",
        )  # fmt: skip
        peering = json.loads(
            cp.kubectl("get", "clusterkopfpeering", "peered-test", "-o", "json").stdout
        )
        assert peering["kind"] == "ClusterKopfPeering"
        pods = json.loads(
            cp.kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/instance=peered",
                       "-o", "json").stdout
        )["items"]  # fmt: skip
        indexes = sorted(p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] for p in pods)
        assert indexes == ["0", "1"]  # distinct Kopf priorities for the two replicas
        # A second peered release shares the kopf.dev CRDs the first one created.
        cp.helm(
            "install", "peered-2", str(CHART), "--namespace", ns, "--set", "peering.enabled=true",
            "--set", "peering.name=peered-test-2", "--wait", "--timeout", "180s",
        )  # fmt: skip
        cp.kubectl("get", "clusterkopfpeering", "peered-test-2")
    finally:
        for release in ("peered", "peered-2"):
            cp.helm("uninstall", release, "--namespace", ns, check=False)
        cp.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        delete_peering_crds_of(cp, "peered", "peered-2")


def test_pod_monitor_labels_series_as_the_analysis_queries_them() -> None:
    (monitor,) = of_kind(render("--set", "podMonitor.enabled=true"), "PodMonitor")
    assert monitor["spec"]["selector"]["matchExpressions"][0]["key"] == "modelrollout.io/name"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "http"  # the model server's container port name
    targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert targets["name"] == ["__meta_kubernetes_pod_label_modelrollout_io_name"]
    assert targets["namespace"] == ["__meta_kubernetes_namespace"]
