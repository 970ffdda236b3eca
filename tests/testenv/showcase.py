"""What `make cluster-up` runs on its real node, as a user would install it: the chart (the
operator as a pod from our image, watching every namespace) and one ModelDeployment, `sample`
in namespace `models`, whose model-server pods download a scikit-learn model from a file server
in that namespace. The tests on the real node serve their models the same way."""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from tests.testenv.controlplane import REPO, ControlPlane

CHART = REPO / "charts" / "modelrollout"
OPERATOR_NAMESPACE = "modelrollout-system"
NAMESPACE = "models"
NAME = "sample"
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def apply(cp: ControlPlane, namespace: str, obj: dict[str, Any]) -> None:
    cp.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


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
        apply(cp, namespace, obj)
    cp.kubectl("rollout", "status", "deployment/models", "-n", namespace, "--timeout=180s",
               timeout=200)  # fmt: skip
    return f"http://models.{namespace}.svc.cluster.local:8000"


def model_deployment(name: str, version: str, uri: str, sha256: str, **spec: Any) -> dict[str, Any]:
    """A ModelDeployment of two replicas with a canary at 50 % then a pause; `spec` adds or
    replaces fields of its spec."""
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": name, "version": version, "format": "skops", "uri": uri,
                      "sha256": sha256},
            "replicas": 2,
            "progressDeadlineSeconds": 300,
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
            **spec,
        },
    }  # fmt: skip


def install_showcase(cp: ControlPlane, server_image: str, timeout: float = 300) -> None:
    """The chart and `sample`, until `sample` is Healthy."""
    # Imported here: training needs scikit-learn, which the plain control plane does not.
    from tests.e2e.harness import train_model

    cp.helm("install", "modelrollout", str(CHART), "--namespace", OPERATOR_NAMESPACE,
            "--create-namespace", "--wait", f"--timeout={timeout:.0f}s",
            timeout=timeout + 30)  # fmt: skip
    cp.create_namespace(NAMESPACE)
    with tempfile.TemporaryDirectory() as scratch:
        model = train_model(Path(scratch) / "model.skops").read_bytes()
    base = serve_models(cp, NAMESPACE, server_image, {"v1.skops": model})
    sha256 = hashlib.sha256(model).hexdigest()
    apply(cp, NAMESPACE, model_deployment(NAME, "1", f"{base}/v1.skops", sha256))
    cp.kubectl("wait", "--for=jsonpath={.status.phase}=Healthy", f"modeldeployment/{NAME}",
               "-n", NAMESPACE, f"--timeout={timeout:.0f}s", timeout=timeout + 10)  # fmt: skip
