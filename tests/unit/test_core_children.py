"""Child manifests: pure dict builders, checked without a cluster."""

from __future__ import annotations

from typing import Any

from modelrollout.api import ModelDeploymentSpec
from modelrollout.core.children import (
    DRAIN_SECONDS,
    NAME_LABEL,
    REVISION_LABEL,
    SHUTDOWN_TIMEOUT_SECONDS,
    OwnerRef,
    deployment_manifest,
    merge_overrides,
    service_manifests,
)
from modelrollout.core.plan import TrafficPlan
from modelrollout.core.revision import compute_revision
from tests.unit.builders import deployment_spec

OWNER = OwnerRef.for_md("fraud", "uid-1")
# Every model field the server's environment carries.
FRAUD_DETECTOR = {
    "name": "fraud-detector",
    "version": "7",
    "uri": "s3://models/fraud/7.skops",
    "sha256": "b" * 64,
    "trustedTypes": ["sklearn.tree._tree.Tree", "numpy.dtype"],
}


def spec(*, model: dict[str, Any] = FRAUD_DETECTOR, **overrides: Any) -> ModelDeploymentSpec:
    """3 replicas, a one-step canary, the model FRAUD_DETECTOR unless given."""
    return deployment_spec(model=model, **overrides)


def env_of(manifest: dict[str, Any]) -> dict[str, str]:
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def test_deployment_name_labels_owner_and_replicas() -> None:
    d = deployment_manifest(OWNER, "ml", spec(), "abc123", 2)
    assert d["metadata"]["name"] == "fraud-abc123"
    assert d["metadata"]["namespace"] == "ml"
    assert d["spec"]["replicas"] == 2
    labels = {NAME_LABEL: "fraud", REVISION_LABEL: "abc123"}
    assert d["spec"]["selector"]["matchLabels"] == labels
    assert d["spec"]["template"]["metadata"]["labels"] == labels
    (owner,) = d["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "name": "fraud",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert "app.kubernetes.io/instance" not in d["metadata"]["labels"]


def test_server_container_env_ports_probes_and_scrape_annotations() -> None:
    d = deployment_manifest(OWNER, "ml", spec(), "abc123", 1, image="registry/server:1")
    container = d["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry/server:1"
    assert container["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    env = env_of(d)
    assert env["MODELROLLOUT_NAME"] == "fraud-detector"
    assert env["MODELROLLOUT_VERSION"] == "7"
    assert env["MODELROLLOUT_URI"] == "s3://models/fraud/7.skops"
    assert env["MODELROLLOUT_FORMAT"] == "skops"
    assert env["MODELROLLOUT_SHA256"] == "b" * 64
    assert env["MODELROLLOUT_TRUSTED_TYPES"] == "sklearn.tree._tree.Tree,numpy.dtype"
    assert env["MODELROLLOUT_ALLOW_PICKLE"] == "false"
    assert env["MODELROLLOUT_REVISION"] == "abc123"
    assert env["MODELROLLOUT_PORT"] == "8080"
    assert env["MODELROLLOUT_GRPC_PORT"] == "8081"
    assert "MODELROLLOUT_PROFILE_URI" not in env
    annotations = d["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }


def test_a_reference_profile_reaches_the_server_and_changes_the_revision() -> None:
    profile = {"uri": "s3://models/fraud/7.profile.json", "sha256": "c" * 64}
    with_profile = spec(model={**FRAUD_DETECTOR, "profile": profile})
    env = env_of(deployment_manifest(OWNER, "ml", with_profile, "abc123", 1))
    assert env["MODELROLLOUT_PROFILE_URI"] == profile["uri"]
    assert env["MODELROLLOUT_PROFILE_SHA256"] == "c" * 64
    assert compute_revision(with_profile) != compute_revision(spec())


def test_template_overrides_merge_but_cannot_change_model_settings() -> None:
    template = {
        "metadata": {"labels": {"team": "risk", REVISION_LABEL: "forged"}},
        "spec": {
            "nodeSelector": {"gpu": "yes"},
            "containers": [
                {
                    "name": "server",
                    "resources": {"limits": {"memory": "1Gi"}},
                    "env": [
                        {"name": "EXTRA", "value": "1"},
                        {"name": "MODELROLLOUT_TRUSTED_TYPES", "value": "builtins.eval"},
                    ],
                },
                {"name": "sidecar", "image": "busybox"},
            ],
        },
    }
    d = deployment_manifest(OWNER, "ml", spec(template=template), "abc123", 1)
    pod = d["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "risk"
    assert pod["metadata"]["labels"][REVISION_LABEL] == "abc123"
    assert pod["spec"]["nodeSelector"] == {"gpu": "yes"}
    server, sidecar = pod["spec"]["containers"]
    assert server["resources"] == {"limits": {"memory": "1Gi"}}
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert sidecar == {"name": "sidecar", "image": "busybox"}
    env = env_of(d)
    assert env["EXTRA"] == "1"
    assert env["MODELROLLOUT_TRUSTED_TYPES"] == "sklearn.tree._tree.Tree,numpy.dtype"


def test_pods_drain_before_they_stop_and_a_template_may_change_how_long() -> None:
    default = deployment_manifest(OWNER, "ml", spec(), "abc123", 1)
    assert env_of(default)["MODELROLLOUT_DRAIN_SECONDS"] == str(DRAIN_SECONDS)
    grace = default["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # kubelet's SIGKILL must come after the drain and the wait for in-flight requests.
    assert grace > DRAIN_SECONDS + SHUTDOWN_TIMEOUT_SECONDS
    longer = {
        "spec": {
            "containers": [
                {"name": "server", "env": [{"name": "MODELROLLOUT_DRAIN_SECONDS", "value": "20"}]}
            ]
        }
    }
    tuned = deployment_manifest(OWNER, "ml", spec(template=longer), "abc123", 1)
    assert env_of(tuned)["MODELROLLOUT_DRAIN_SECONDS"] == "20"


def test_pvc_uri_mounts_the_claim_read_only() -> None:
    model = {"name": "m", "version": "1", "uri": "pvc://models-claim/fraud/1.skops"}
    d = deployment_manifest(OWNER, "ml", spec(model=model), "r1", 1)
    pod = d["spec"]["template"]["spec"]
    assert pod["volumes"][-1] == {
        "name": "model",
        "persistentVolumeClaim": {"claimName": "models-claim", "readOnly": True},
    }
    mount = pod["containers"][0]["volumeMounts"][-1]
    assert mount["mountPath"] == "/mnt/models/models-claim"
    assert mount["readOnly"] is True


def test_merge_overrides_replaces_plain_lists_and_merges_named_ones() -> None:
    assert merge_overrides({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}
    merged = merge_overrides(
        {"c": [{"name": "x", "v": 1}, {"name": "y", "v": 2}]}, {"c": [{"name": "y", "w": 3}]}
    )
    assert merged == {"c": [{"name": "x", "v": 1}, {"name": "y", "v": 2, "w": 3}]}


def selectors(services: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {s["metadata"]["name"]: s["spec"]["selector"] for s in services}


def test_canary_services_with_the_replicas_router() -> None:
    traffic = TrafficPlan(stable_revision="s1", canary_revision="c1", canary_weight=20)
    got = selectors(service_manifests(OWNER, "ml", spec(), traffic))
    assert got == {
        "fraud": {NAME_LABEL: "fraud"},
        "fraud-stable": {NAME_LABEL: "fraud", REVISION_LABEL: "s1"},
        "fraud-canary": {NAME_LABEL: "fraud", REVISION_LABEL: "c1"},
    }


def test_canary_services_with_an_exact_router_and_no_rollout() -> None:
    routed = spec(
        strategy={
            "canary": {
                "steps": [{"setWeight": 50}],
                "trafficRouting": {"gatewayAPI": {"httpRoute": "fraud"}},
            }
        }
    )
    got = selectors(service_manifests(OWNER, "ml", routed, TrafficPlan(stable_revision="s1")))
    stable = {NAME_LABEL: "fraud", REVISION_LABEL: "s1"}
    assert got == {"fraud": stable, "fraud-stable": stable, "fraud-canary": stable}


def test_blue_green_services_follow_active_and_preview() -> None:
    bg = spec(strategy={"blueGreen": {}})
    traffic = TrafficPlan(stable_revision="s1", active_revision="s1", preview_revision="c1")
    services = service_manifests(OWNER, "ml", bg, traffic)
    got = selectors(services)
    assert got["fraud"][REVISION_LABEL] == "s1"
    assert got["fraud-preview"][REVISION_LABEL] == "c1"
    assert got["fraud-stable"][REVISION_LABEL] == "s1"
    for service in services:
        assert service["spec"]["ports"][0]["port"] == 8080
        assert service["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_blue_green_switch_reaches_gateway_clients_through_the_stable_service() -> None:
    """The routing object of an exact router keeps all on `<name>-stable`: after the switch that
    Service must select the candidate, and the old stable again once traffic switches back."""
    bg = spec(strategy={"blueGreen": {"trafficRouting": {"gatewayAPI": {"httpRoute": "fraud"}}}})
    switched = TrafficPlan(stable_revision="s1", canary_revision="c1", active_revision="c1")
    got = selectors(service_manifests(OWNER, "ml", bg, switched))
    assert got["fraud"][REVISION_LABEL] == "c1"
    assert got["fraud-stable"][REVISION_LABEL] == "c1"
    back = TrafficPlan(stable_revision="s1", canary_revision="c1", active_revision="s1")
    got = selectors(service_manifests(OWNER, "ml", bg, back))
    assert got["fraud"][REVISION_LABEL] == "s1"
    assert got["fraud-stable"][REVISION_LABEL] == "s1"


def test_pods_meet_pod_security_restricted() -> None:
    pod = deployment_manifest(OWNER, "ml", spec(), "r1", 1)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in pod["containers"][0]["volumeMounts"]
