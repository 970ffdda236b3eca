"""The shell carries out the core's Plan through the operator's Kube client (in memory, no cluster).

Each test drives `reconcile_sync` against FakeKube, which answers the requests the way the API
server does; the request log shows what the shell sent.
"""

from __future__ import annotations

from typing import Any

from modelrollout.api.names import REVISION_LABEL
from modelrollout.core.hold import FAULT_RECHECK_SECONDS
from modelrollout.kube import DEPLOYMENTS, MODELDEPLOYMENTS, SERVICES
from modelrollout.kube.errors import Forbidden, KubeUnreachable
from modelrollout.shell import Shell, reconcile_sync
from tests.unit.fake_kube import FakeKube, model, model_deployment

NS, NAME = "ml", "fraud"
IMAGE = "registry.example/modelrollout-server:test"


def setup(version: str = "1", **spec: Any) -> tuple[FakeKube, Shell]:
    kube = FakeKube()
    kube.add(MODELDEPLOYMENTS, model_deployment(version, **spec))
    return kube, Shell(kube, server_image=IMAGE)


def reconcile(shell: Shell) -> float | None:
    return reconcile_sync(shell, NS, NAME)


def status(kube: FakeKube) -> dict[str, Any]:
    md = kube.stored(MODELDEPLOYMENTS, NS, NAME)
    assert md is not None
    result: dict[str, Any] = md.get("status") or {}
    return result


def set_version(kube: FakeKube, version: str) -> None:
    kube.edit(MODELDEPLOYMENTS, NS, NAME, lambda md: md["spec"].update(model=model(version)))


def deployment(kube: FakeKube, revision: str) -> dict[str, Any]:
    found = kube.stored(DEPLOYMENTS, NS, f"{NAME}-{revision}")
    assert found is not None, f"no Deployment of revision {revision}"
    return found


def healthy(version: str = "1", **spec: Any) -> tuple[FakeKube, Shell, str]:
    """A ModelDeployment whose first revision is deployed, ready and promoted."""
    kube, shell = setup(version, **spec)
    reconcile(shell)
    kube.make_ready(NS)
    reconcile(shell)
    assert status(kube)["phase"] == "Healthy"
    return kube, shell, status(kube)["stableRevision"]


def test_a_new_model_deployment_gets_its_deployment_and_services_then_its_status() -> None:
    kube, shell = setup()
    reconcile(shell)
    md = kube.stored(MODELDEPLOYMENTS, NS, NAME)
    assert md is not None
    revision = status(kube)["canaryRevision"]
    child = deployment(kube, revision)
    assert child["spec"]["replicas"] == 4
    assert child["metadata"]["labels"][REVISION_LABEL] == revision
    owner = child["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "ModelDeployment",
        NAME,
        md["metadata"]["uid"],
    )
    container = child["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert kube.names(SERVICES, NS) == [NAME, f"{NAME}-canary", f"{NAME}-stable"]
    # Children by server-side apply, then the status through the status subresource only.
    writes = [(r.verb, r.kind.kind, r.name, r.subresource) for r in kube.writes()]
    assert writes[:6] == [
        ("apply", "Deployment", f"{NAME}-{revision}", None),
        ("apply", "Service", NAME, None),
        ("apply", "Service", f"{NAME}-stable", None),
        ("apply", "Service", f"{NAME}-canary", None),
        ("apply", "ConfigMap", f"{NAME}-shadow", None),  # nothing mirrored: percent 0
        ("patch", "ModelDeployment", NAME, "status"),
    ]
    assert status(kube)["phase"] == "Progressing"
    assert status(kube)["observedGeneration"] == md["metadata"]["generation"] == 1


def test_a_reconcile_with_nothing_new_writes_nothing() -> None:
    kube, shell, _ = healthy()
    before = len(kube.requests)
    assert reconcile(shell) is None
    assert [(r.verb, r.kind.kind) for r in kube.requests[before:]] == [
        ("get", "ModelDeployment"),
        ("list", "Deployment"),
    ]


def test_old_revisions_are_only_scaled_and_keep_their_template() -> None:
    kube, shell, stable = healthy()
    template = deployment(kube, stable)["spec"]["template"]
    set_version(kube, "2")
    reconcile(shell)  # the candidate's Deployment; the stable keeps serving
    candidate = status(kube)["canaryRevision"]
    assert candidate != stable
    kube.make_ready(NS)
    reconcile(shell)  # the only step is done: promoted, the old stable scaled down
    assert status(kube)["stableRevision"] == candidate
    old = deployment(kube, stable)
    assert old["spec"]["replicas"] == 0
    assert old["spec"]["template"] == template  # still the version-1 model
    to_old = [r for r in kube.writes() if r.name == f"{NAME}-{stable}"]
    assert [(r.verb, r.body) for r in to_old[1:]] == [("patch", {"spec": {"replicas": 0}})]
    assert deployment(kube, candidate)["spec"]["replicas"] == 4


def test_a_plan_s_prune_deletes_the_deployment_past_the_history_limit() -> None:
    kube, shell, first = healthy(revisionHistoryLimit=0)
    for version in ("2", "3"):
        set_version(kube, version)
        reconcile(shell)
        kube.make_ready(NS)
        reconcile(shell)
        assert status(kube)["stableModelVersion"] == version
    # Version 3 serves, version 2 is the previous stable (kept for a rollback); version 1 is
    # idle past revisionHistoryLimit 0.
    reconcile(shell)
    assert kube.stored(DEPLOYMENTS, NS, f"{NAME}-{first}") is None
    deletes = kube.made("delete", DEPLOYMENTS)
    assert [r.name for r in deletes] == [f"{NAME}-{first}"]
    assert deletes[0].body == {"propagationPolicy": "Background"}
    assert len(kube.names(DEPLOYMENTS, NS)) == 2


def test_the_current_revision_scaled_by_someone_else_is_applied_again() -> None:
    kube, shell, stable = healthy()
    kube.edit(DEPLOYMENTS, NS, f"{NAME}-{stable}", lambda d: d["spec"].update(replicas=1))
    before = len(kube.requests)
    reconcile(shell)
    assert deployment(kube, stable)["spec"]["replicas"] == 4
    assert [r.name for r in kube.requests[before:] if r.verb == "apply"] == [f"{NAME}-{stable}"]


def progressing(kube: FakeKube) -> dict[str, Any]:
    return next(c for c in status(kube)["conditions"] if c["type"] == "Progressing")


def test_a_refused_apply_holds_the_rollout_and_says_why_in_the_status() -> None:
    kube, shell = setup()
    kube.fail_next("apply", DEPLOYMENTS, Forbidden(403, 'deployments.apps "fraud-x" is forbidden'))
    assert reconcile(shell) == FAULT_RECHECK_SECONDS
    assert kube.names(SERVICES, NS) == []  # nothing after the refused request
    assert status(kube)["phase"] == "Paused"  # the first revision waits: held, not failed
    assert status(kube)["pauseReason"] == "Fault"
    assert 'deployments.apps "fraud-x" is forbidden' in status(kube)["message"]
    assert progressing(kube)["reason"] == "Forbidden"
    assert [(e["type"], e["reason"]) for e in kube.events()] == [("Warning", "Forbidden")]
    reconcile(shell)  # the cause is gone: the rollout goes on by itself
    assert status(kube)["phase"] == "Progressing"
    assert len(kube.names(DEPLOYMENTS, NS)) == 1


def test_after_a_timeout_only_what_did_not_land_is_sent_again() -> None:
    kube, shell = setup()
    timeout = KubeUnreachable("PATCH /api/v1/namespaces/ml/services/fraud-stable: read timed out")
    kube.fail_next("apply", SERVICES, timeout, name=f"{NAME}-stable")
    reconcile(shell)
    assert progressing(kube)["reason"] == "KubernetesUnreachable"
    before = len(kube.requests)
    reconcile(shell)
    applied = [r.name for r in kube.requests[before:] if r.verb == "apply"]
    assert applied == [f"{NAME}-stable", f"{NAME}-canary", f"{NAME}-shadow"]
    assert status(kube)["phase"] == "Progressing"
