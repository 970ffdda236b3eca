"""The test control plane is the real thing: upstream binaries, RBAC, scheduling, fake nodes."""

from __future__ import annotations

import json

import yaml

from tests.testenv.controlplane import NODE_PREFIX, ControlPlane, kubernetes_version


def test_api_reports_the_stamped_release(control_plane: ControlPlane) -> None:
    info = json.loads(control_plane.kubectl("get", "--raw", "/version").stdout)
    version = kubernetes_version()
    assert info["gitVersion"] == version
    assert info["gitTreeState"] == "clean"
    assert version.startswith(f"v{info['major']}.{info['minor']}.")


def test_kubectl_client_reports_the_stamped_release(control_plane: ControlPlane) -> None:
    out = control_plane.kubectl("version", "--client", "-o", "json").stdout
    assert json.loads(out)["clientVersion"]["gitVersion"] == kubernetes_version()


def test_fake_nodes_are_ready(control_plane: ControlPlane) -> None:
    nodes = json.loads(control_plane.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    names = sorted(node["metadata"]["name"] for node in nodes)
    assert names == [f"{NODE_PREFIX}{i}" for i in range(control_plane.nodes)]
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node["metadata"]["name"]


def test_deployment_becomes_available(control_plane: ControlPlane, namespace: str) -> None:
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                # Never pulled: kwok plays the kubelet.
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
            },
        },
    }
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment))
    control_plane.kubectl(
        "wait", "--for=condition=Available", "deployment/web", "-n", namespace, "--timeout=120s"
    )
    status = json.loads(
        control_plane.kubectl("get", "deployment/web", "-n", namespace, "-o", "json").stdout
    )["status"]
    assert status["readyReplicas"] == 3
    pods = json.loads(
        control_plane.kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json").stdout
    )["items"]
    assert len(pods) == 3
    for pod in pods:
        assert pod["spec"]["nodeName"].startswith(NODE_PREFIX)  # placed by the scheduler
        assert pod["status"]["phase"] == "Running"


def test_rbac_denies_an_unprivileged_user(control_plane: ControlPlane, namespace: str) -> None:
    as_nobody = control_plane.kubectl(
        "auth", "can-i", "create", "pods", "-n", namespace, "--as=nobody", check=False
    )
    assert as_nobody.stdout.strip() == "no"
    assert control_plane.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"


def test_service_account_tokens_are_signed(control_plane: ControlPlane, namespace: str) -> None:
    token = control_plane.kubectl("create", "token", "default", "-n", namespace).stdout.strip()
    assert token.count(".") == 2  # a JWT: header.payload.signature
    # A kubeconfig-free call, so the token is the only credential presented.
    who = control_plane.run(
        "kubectl", "--kubeconfig=/dev/null", f"--server={control_plane.server}",
        f"--certificate-authority={control_plane.ca_cert}", f"--token={token}",
        "auth", "whoami", "-o", "json",
    )  # fmt: skip
    user = json.loads(who.stdout)["status"]["userInfo"]["username"]
    assert user == f"system:serviceaccount:{namespace}:default"


def test_helm_reaches_the_cluster(control_plane: ControlPlane, namespace: str) -> None:
    assert control_plane.helm("version", "--short").stdout.startswith("v3.")
    listed = control_plane.helm("list", "-n", namespace, "-o", "json").stdout
    assert json.loads(listed) == []
