"""The chart as users install it, on the real node: the operator pod from our image becomes Ready
through its real probes and, acting only as its ServiceAccount, carries a canary to Healthy with
model-server pods from our image that download their model over http:// from a server in the
namespace. The `<name>` Service (ClusterIP, kube-proxy) splits requests between the revisions
in the proportion the status reports."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import FEATURES, X, train_model
from tests.integration.helm_chart import Release, installed_release
from tests.integration.operator_process import get_md, phase_is
from tests.testenv.controlplane import ControlPlane
from tests.testenv.images import ImageArchives
from tests.testenv.node import RealNode
from tests.testenv.waiting import eventually

NAME = "fraud"
# Requests at each measured step; the tolerance below is 5 standard deviations of a binomial
# share at 50 %, so a correct split fails it about once in 1.7 million runs.
REQUESTS = 1000
TOLERANCE = 5 * (0.25 / REQUESTS) ** 0.5
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture(scope="module")
def release(real_cluster: ControlPlane) -> Iterator[Release]:
    with installed_release(real_cluster) as rel:
        yield rel
        # Shown by pytest when a test failed: what the operator pod said.
        print(real_cluster.kubectl("logs", "-n", rel.namespace, f"deploy/{rel.name}-modelrollout",
                                   "--tail=200", check=False).stdout)  # fmt: skip


def model_files(tmp: Path) -> dict[str, bytes]:
    """Two versions of a model (the same weights: a response's model_version says which
    revision served it)."""
    model = train_model(tmp / "model.skops").read_bytes()
    return {"v1.skops": model, "v2.skops": model}


def promote(cp: ControlPlane, ns: str) -> None:
    """The kubectl plugin's promote, as a user runs it."""
    plugin = Path(sys.executable).parent / "kubectl-modelrollout"
    subprocess.run([str(plugin), "promote", NAME, "-n", ns], env=cp.env(), check=True,
                   capture_output=True, timeout=60)  # fmt: skip


def serve_models(cp: ControlPlane, namespace: str, image: str, files: dict[str, bytes]) -> str:
    """A file server in the namespace (our server image's Python, http.server) for `files`;
    returns its in-cluster base URL."""
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "models"},
        "binaryData": {k: base64.b64encode(v).decode() for k, v in files.items()},
    }
    labels = {"app": "models"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "models"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{
                        "name": "files",
                        "image": image,
                        "command": ["python", "-m", "http.server", "8000",
                                    "--directory", "/models"],
                        "ports": [{"containerPort": 8000}],
                        "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 1},
                        "volumeMounts": [{"name": "models", "mountPath": "/models"}],
                        "securityContext": RESTRICTED_CONTAINER,
                    }],
                    "volumes": [{"name": "models", "configMap": {"name": "models"}}],
                },
            },
        },
    }  # fmt: skip
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "models"},
        "spec": {"selector": labels, "ports": [{"port": 8000, "targetPort": 8000}]},
    }
    for obj in (config_map, deployment, service):
        cp.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))
    cp.kubectl("rollout", "status", "deployment/models", "-n", namespace, "--timeout=180s",
               timeout=200)  # fmt: skip
    return f"http://models.{namespace}.svc.cluster.local:8000"


def manifest(version: str, uri: str, sha256: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME},
        "spec": {
            "model": {"name": NAME, "version": version, "format": "skops", "uri": uri,
                      "sha256": sha256},
            "replicas": 2,
            "progressDeadlineSeconds": 300,
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
        },
    }  # fmt: skip


def cluster_ip(cp: ControlPlane, ns: str, service: str) -> str:
    got = json.loads(cp.kubectl("get", "service", service, "-n", ns, "-o", "json").stdout)
    address: str = got["spec"]["clusterIP"]
    return address


INFER_BODY = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, FEATURES], "datatype": "FP64",
                 "data": [float(v) for v in X[0][:FEATURES]]}]}
).encode()  # fmt: skip


def versions_served(address: str, requests: int) -> Counter[str]:
    """Which model version answered each of `requests` inference requests sent to the Service's
    ClusterIP, one new connection per request (kube-proxy balances connections)."""
    seen: Counter[str] = Counter()
    for _ in range(requests):
        request = urllib.request.Request(
            f"http://{address}:8080/v2/models/{NAME}/infer",
            data=INFER_BODY,
            headers={"Content-Type": "application/json", "Connection": "close"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            seen[json.loads(response.read())["model_version"]] += 1
    return seen


def server_pods(cp: ControlPlane, ns: str) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = json.loads(
        cp.kubectl(
            "get", "pods", "-n", ns, "-l", f"modelrollout.io/name={NAME}", "-o", "json"
        ).stdout
    )["items"]
    return pods


def wait_proxied(node: RealNode, ns: str, status: dict[str, Any]) -> None:
    """Until kube-proxy balances the `<name>` Service over exactly the ready pods the status
    counts (it follows the EndpointSlices a moment later)."""
    ready = (status.get("readyReplicas") or 0) + (status.get("canaryReadyReplicas") or 0)
    if status.get("canaryRevision") == status.get("stableRevision"):
        ready = status.get("readyReplicas") or 0
    eventually(lambda: node.proxied_endpoints(ns, NAME, "http") == ready,
               f"kube-proxy balancing over {ready} pods", timeout=60)  # fmt: skip


def test_the_chart_operator_pod_carries_a_canary_on_real_pods(
    real_node: RealNode, release: Release, images: ImageArchives, tmp_path: Path
) -> None:
    cp, ns = real_node.cp, release.apps
    operator = json.loads(
        cp.kubectl("get", "pods", "-n", release.namespace, "-l",
                   "app.kubernetes.io/component=operator", "-o", "json").stdout
    )["items"]  # fmt: skip
    assert len(operator) == 1
    statuses = operator[0]["status"]["containerStatuses"]
    assert statuses[0]["ready"] and statuses[0]["containerID"].startswith("containerd://")

    files = model_files(tmp_path)
    base = serve_models(cp, ns, images.server_image, files)
    digest = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    first = manifest("1", f"{base}/v1.skops", digest["v1.skops"])
    cp.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(first))
    healthy = eventually(phase_is(cp, ns, NAME, "Healthy"), "v1 Healthy", timeout=300)
    stable = healthy["status"]["stableRevision"]
    pods = server_pods(cp, ns)
    assert len(pods) == 2
    for pod in pods:
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] and status["containerID"].startswith("containerd://"), pod
    wait_proxied(real_node, ns, healthy["status"])
    assert versions_served(cluster_ip(cp, ns, NAME), 20) == Counter({"1": 20})

    second = manifest("2", f"{base}/v2.skops", digest["v2.skops"])
    cp.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(second))
    paused = eventually(phase_is(cp, ns, NAME, "Paused", currentStepIndex=1), "v2 at 50 %", 300)
    weight = paused["status"]["canaryWeight"] / 100
    assert 0 < weight < 1
    wait_proxied(real_node, ns, paused["status"])
    seen = versions_served(cluster_ip(cp, ns, NAME), REQUESTS)
    assert set(seen) == {"1", "2"}
    share = seen["2"] / REQUESTS
    assert abs(share - weight) <= TOLERANCE, (seen, weight)

    promote(cp, ns)
    done = eventually(phase_is(cp, ns, NAME, "Healthy"), "v2 Healthy", timeout=300)
    assert done["status"]["stableRevision"] not in (stable, None)
    wait_proxied(real_node, ns, done["status"])
    assert versions_served(cluster_ip(cp, ns, NAME), 20) == Counter({"2": 20})

    # A candidate whose artifact fails its sha256 never becomes Ready nor takes a request.
    wrong = manifest("3", f"{base}/v1.skops", digest["v1.skops"][::-1])
    cp.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(wrong))
    refusal = eventually(lambda: candidate_refusal(cp, ns, done["status"]["stableRevision"]),
                         "the candidate pod refusing to serve", timeout=180)  # fmt: skip
    assert refusal[0] == 503 and "sha256" in refusal[1], refusal
    waiting = get_md(cp, ns, NAME)["status"]
    assert waiting["phase"] == "Progressing" and not waiting.get("canaryReadyReplicas"), waiting
    assert waiting["stableRevision"] == done["status"]["stableRevision"]
    assert versions_served(cluster_ip(cp, ns, NAME), 50) == Counter({"2": 50})
    print(f"measured split at 50 %: {dict(seen)} (status.canaryWeight {weight:.2f})")


def candidate_refusal(cp: ControlPlane, ns: str, stable: str) -> tuple[int, str] | None:
    """(status, body) of an inference request sent straight to a pod of a revision other than
    `stable`, once one runs; None before."""
    for pod in server_pods(cp, ns):
        labels = pod["metadata"].get("labels", {})
        address = pod["status"].get("podIP")
        if labels.get("modelrollout.io/revision") == stable or not address:
            continue
        request = urllib.request.Request(
            f"http://{address}:8080/v2/models/{NAME}/infer", data=INFER_BODY,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return None  # not listening yet
    return None
