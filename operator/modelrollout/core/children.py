"""Pure builders of the child objects of a ModelDeployment (plain dicts for server-side apply).

Labels are set explicitly: the parent's labels are never copied (Argo CD's tracking label must
not spread to children). Every child carries one controller ownerReference to the parent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelrollout import __version__
from modelrollout.api.names import API_VERSION, KIND, MANAGED_BY, NAME_LABEL, REVISION_LABEL
from modelrollout.core.plan import TrafficPlan
from modelrollout.core.routing import is_blue_green, uses_replica_weights

if TYPE_CHECKING:
    from modelrollout.api import ModelDeploymentSpec

SERVER_CONTAINER = "server"
SERVER_PORT = 8080
# Where every model-server pod mounts `<name>-shadow` (optional: a pod starts without it).
SHADOW_DIR = "/etc/modelrollout/shadow"
SHADOW_FILE = "shadow.json"
# The Open Inference Protocol's gRPC form, on the port KServe and MLServer use.
GRPC_PORT = 8081
# Where the release workflow (.github/workflows/release.yaml) publishes the model server's image;
# the default tag is this package's version (pyproject.toml), as the chart's appVersion is.
SERVER_IMAGE_REPOSITORY = "ghcr.io/modelrollout/modelrollout-server"
DEFAULT_SERVER_IMAGE = f"{SERVER_IMAGE_REPOSITORY}:{__version__}"
PVC_ROOT = "/mnt/models"
# Non-root user the model server runs as (the image's files must be readable by it).
SERVER_UID = 65532
# Selector value no pod carries: a Service with it has no endpoints.
NO_REVISION = "none"
# After SIGTERM a server keeps serving this long: kube-proxy and gateways drop a terminating pod
# from their endpoints a moment after it is deleted, and until then they still send it requests.
DRAIN_SECONDS = 5
# The server's own default wait for in-flight requests after it stops listening.
SHUTDOWN_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class OwnerRef:
    """The ModelDeployment that owns the children."""

    api_version: str
    kind: str
    name: str
    uid: str

    @classmethod
    def for_md(cls, name: str, uid: str) -> OwnerRef:
        return cls(api_version=API_VERSION, kind=KIND, name=name, uid=uid)

    def manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def deployment_name(name: str, revision: str) -> str:
    return f"{name}-{revision}"


def pod_labels(name: str, revision: str) -> dict[str, str]:
    return {NAME_LABEL: name, REVISION_LABEL: revision}


def _metadata(
    owner: OwnerRef, name: str, namespace: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {**MANAGED_BY, **labels},
        "ownerReferences": [owner.manifest()],
    }


def server_env(spec: ModelDeploymentSpec, revision: str) -> list[dict[str, str]]:
    """The model server's settings (CONTRACTS.md); these always win over template overrides."""
    model = spec.model
    env = {
        "MODELROLLOUT_NAME": model.name,
        "MODELROLLOUT_VERSION": model.version,
        "MODELROLLOUT_URI": model.uri,
        "MODELROLLOUT_FORMAT": str(model.format),
        "MODELROLLOUT_SHA256": model.sha256 or "",
        "MODELROLLOUT_TRUSTED_TYPES": ",".join(model.trusted_types),
        "MODELROLLOUT_ALLOW_PICKLE": "true" if model.allow_pickle else "false",
        "MODELROLLOUT_REVISION": revision,
        "MODELROLLOUT_PORT": str(SERVER_PORT),
        "MODELROLLOUT_GRPC_PORT": str(GRPC_PORT),
        "MODELROLLOUT_PVC_ROOT": PVC_ROOT,
        "MODELROLLOUT_SHADOW_CONFIG": f"{SHADOW_DIR}/{SHADOW_FILE}",
    }
    if model.profile is not None:
        env["MODELROLLOUT_PROFILE_URI"] = model.profile.uri
        env["MODELROLLOUT_PROFILE_SHA256"] = model.profile.sha256 or ""
    return [{"name": k, "value": v} for k, v in env.items()]


def _pvc_claim(uri: str) -> str | None:
    if not uri.startswith("pvc://"):
        return None
    claim = uri[len("pvc://") :].lstrip("/").split("/", 1)[0]
    return claim or None


def _default_pod_template(
    spec: ModelDeploymentSpec, name: str, revision: str, image: str
) -> dict[str, Any]:
    http_probe = {"port": "http"}
    container: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": image,
        "command": ["modelrollout-server"],
        # Not forced (unlike server_env): spec.template may set another drain.
        "env": [{"name": "MODELROLLOUT_DRAIN_SECONDS", "value": str(DRAIN_SECONDS)}],
        "ports": [
            {"name": "http", "containerPort": SERVER_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {**http_probe, "path": "/v2/health/ready"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {**http_probe, "path": "/v2/health/live"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    # Pod Security "restricted" compliant; /tmp is the only writable path (read-only root).
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": DRAIN_SECONDS + SHUTDOWN_TIMEOUT_SECONDS + 5,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": SERVER_UID,
            "runAsGroup": SERVER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            {
                "name": "shadow",
                "configMap": {"name": shadow_config_name(name), "optional": True},
            },
        ],
    }
    container["volumeMounts"] = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "shadow", "mountPath": SHADOW_DIR, "readOnly": True},
    ]
    claim = _pvc_claim(spec.model.uri)
    if claim is not None:
        pod_spec["volumes"].append(
            {"name": "model", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
        container["volumeMounts"].append(
            {"name": "model", "mountPath": f"{PVC_ROOT}/{claim}", "readOnly": True}
        )
    return {
        "metadata": {
            "labels": pod_labels(name, revision),
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(SERVER_PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": pod_spec,
    }


def merge_overrides(base: Any, override: Any) -> Any:
    """Deep-merge `override` over `base`: dicts by key, lists of named dicts by name."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge_overrides(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(override, list) and _named(base) and _named(override):
        merged = {item["name"]: item for item in base}
        order = [item["name"] for item in base]
        for item in override:
            if item["name"] in merged:
                merged[item["name"]] = merge_overrides(merged[item["name"]], item)
            else:
                merged[item["name"]] = copy.deepcopy(item)
                order.append(item["name"])
        return [merged[n] for n in order]
    return copy.deepcopy(override)


def _named(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items)


def pod_template(
    spec: ModelDeploymentSpec, name: str, revision: str, image: str = DEFAULT_SERVER_IMAGE
) -> dict[str, Any]:
    """The pod template: the default server, spec.template merged over it, our labels/env forced."""
    template: dict[str, Any] = _default_pod_template(spec, name, revision, image)
    if spec.template:
        template = merge_overrides(template, spec.template)
    template.setdefault("metadata", {}).setdefault("labels", {}).update(pod_labels(name, revision))
    containers = template.setdefault("spec", {}).setdefault("containers", [])
    for container in containers:
        if container.get("name") == SERVER_CONTAINER:
            ours = server_env(spec, revision)
            forced = {e["name"] for e in ours}
            kept = [e for e in container.get("env", []) if e.get("name") not in forced]
            container["env"] = ours + kept
    return template


def deployment_manifest(
    owner: OwnerRef,
    namespace: str,
    spec: ModelDeploymentSpec,
    revision: str,
    replicas: int,
    image: str = DEFAULT_SERVER_IMAGE,
) -> dict[str, Any]:
    """The Deployment `<name>-<revision>` serving one revision."""
    name = owner.name
    labels = pod_labels(name, revision)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, deployment_name(name, revision), namespace, labels),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": labels},
            "template": pod_template(spec, name, revision, image),
        },
    }


def _service(
    owner: OwnerRef, namespace: str, service_name: str, selector: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, service_name, namespace, {NAME_LABEL: owner.name}),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [
                {"name": "http", "port": SERVER_PORT, "targetPort": "http", "protocol": "TCP"},
                {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
            ],
        },
    }


def shadow_config_name(name: str) -> str:
    return f"{name}-shadow"


def shadow_config_manifest(
    owner: OwnerRef, namespace: str, spec: ModelDeploymentSpec, traffic: TrafficPlan
) -> dict[str, Any]:
    """`<name>-shadow`: what the model servers mirror (server.shadow), mounted by every pod.

    A shadow phase sets the candidate and the share; otherwise the share is 0 and nothing is
    mirrored. The target is the Service that selects the candidate: `<name>-canary`, or
    `<name>-preview` for blue/green."""
    name = owner.name
    service = f"{name}-preview" if is_blue_green(spec) else f"{name}-canary"
    target = f"http://{service}.{namespace}.svc:{SERVER_PORT}"
    revision = traffic.canary_revision if traffic.mirror_percent else None
    config = {
        "target": target,
        "percent": traffic.mirror_percent if revision else 0,
        "revision": revision or traffic.stable_revision or NO_REVISION,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner, shadow_config_name(name), namespace, {NAME_LABEL: name}),
        "data": {SHADOW_FILE: json.dumps(config, sort_keys=True)},
    }


def service_manifests(
    owner: OwnerRef, namespace: str, spec: ModelDeploymentSpec, traffic: TrafficPlan
) -> list[dict[str, Any]]:
    """`<name>`, `<name>-stable` and `<name>-canary` (canary) or `<name>-preview` (blue/green).

    With no rollout in progress the canary/preview Service selects the stable, as in Argo Rollouts.
    The `<name>` Service: replicas router -> every revision's ready pods (the weight comes from the
    replica counts), or only `active_revision` when set (a canary's post-promotion window); exact
    routers -> the stable (the mesh/gateway splits); blue/green -> active.

    Blue/green with an exact router: the routing object keeps all its traffic on `<name>-stable`
    (TrafficRouter.switch_active), so there `<name>-stable` selects the active revision too;
    otherwise gateway clients would never reach the switched-to candidate.
    """
    name = owner.name
    stable = traffic.stable_revision or traffic.canary_revision or NO_REVISION
    by_name = {NAME_LABEL: name}

    def select(revision: str) -> dict[str, str]:
        return {NAME_LABEL: name, REVISION_LABEL: revision}

    if is_blue_green(spec):
        active = traffic.active_revision or stable
        preview = traffic.preview_revision or active
        routed = stable if uses_replica_weights(spec) else active
        return [
            _service(owner, namespace, name, select(active)),
            _service(owner, namespace, f"{name}-stable", select(routed)),
            _service(owner, namespace, f"{name}-preview", select(preview)),
        ]
    main = by_name if uses_replica_weights(spec) else select(stable)
    if traffic.active_revision is not None:
        # Replicas router: the candidate alone in the post-promotion window, the stable alone
        # while the candidate only answers mirrored copies (a shadow step).
        main = select(traffic.active_revision)
    canary = traffic.canary_revision or stable
    return [
        _service(owner, namespace, name, main),
        _service(owner, namespace, f"{name}-stable", select(stable)),
        _service(owner, namespace, f"{name}-canary", select(canary)),
    ]
