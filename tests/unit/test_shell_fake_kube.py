"""FakeKube answers as the API server does, for what the shell tests rely on."""

from __future__ import annotations

import pytest

from modelrollout.kube import DEPLOYMENTS, EVENTS, MODELDEPLOYMENTS, Conflict, KubeError, NotFound
from modelrollout.kube.resources import ResourceKind
from modelrollout.kube.rest import JSON
from tests.unit.fake_kube import FakeKube, model_deployment

NS, NAME = "ml", "fraud"


def added() -> tuple[FakeKube, JSON]:
    kube = FakeKube()
    return kube, kube.add(MODELDEPLOYMENTS, model_deployment("1"))


def version(obj: JSON) -> str:
    result: str = obj["metadata"]["resourceVersion"]
    return result


def test_generation_grows_with_the_spec_only() -> None:
    kube, md = added()
    assert md["metadata"]["generation"] == 1
    labelled = kube.merge_patch(MODELDEPLOYMENTS, NS, NAME, {"metadata": {"labels": {"a": "b"}}})
    assert labelled["metadata"]["generation"] == 1
    assert version(labelled) != version(md)
    status = kube.merge_patch(
        MODELDEPLOYMENTS, NS, NAME, {"status": {"phase": "Healthy"}}, subresource="status"
    )
    assert (status["metadata"]["generation"], status["status"]) == (1, {"phase": "Healthy"})
    spec = kube.merge_patch(MODELDEPLOYMENTS, NS, NAME, {"spec": {"replicas": 2}})
    assert spec["metadata"]["generation"] == 2
    # The main resource ignores status, the status subresource ignores everything else.
    ignored = kube.merge_patch(MODELDEPLOYMENTS, NS, NAME, {"status": {"phase": "Degraded"}})
    assert version(ignored) == version(spec)
    ignored = kube.merge_patch(
        MODELDEPLOYMENTS, NS, NAME, {"spec": {"replicas": 9}}, subresource="status"
    )
    assert ignored["spec"]["replicas"] == 2


def test_a_stale_resource_version_is_a_conflict_and_a_no_op_keeps_the_version() -> None:
    kube, md = added()
    current = kube.merge_patch(MODELDEPLOYMENTS, NS, NAME, {"metadata": {"labels": {"a": "b"}}})
    stale = {"metadata": {"resourceVersion": version(md)}, "status": {"phase": "Healthy"}}
    with pytest.raises(Conflict):
        kube.merge_patch(MODELDEPLOYMENTS, NS, NAME, stale, subresource="status")
    fresh = {"metadata": {"resourceVersion": version(current)}, "status": {"phase": "Healthy"}}
    landed = kube.merge_patch(MODELDEPLOYMENTS, NS, NAME, fresh, subresource="status")
    same = {"status": {"phase": "Healthy"}}
    again = kube.merge_patch(MODELDEPLOYMENTS, NS, NAME, same, subresource="status")
    assert version(again) == version(landed) != version(current)


def test_apply_creates_then_updates_and_misses_are_what_kube_expects() -> None:
    kube = FakeKube()
    manifest: JSON = {"metadata": {"name": "d", "namespace": NS}, "spec": {"replicas": 1}}
    created = kube.apply(DEPLOYMENTS, manifest)
    assert created["metadata"]["generation"] == 1
    assert kube.apply(DEPLOYMENTS, manifest) == created
    manifest["spec"]["replicas"] = 3
    assert kube.apply(DEPLOYMENTS, manifest)["metadata"]["generation"] == 2
    assert kube.get(DEPLOYMENTS, NS, "absent") is None
    assert kube.delete(DEPLOYMENTS, NS, "d") is True
    assert kube.delete(DEPLOYMENTS, NS, "d") is False
    with pytest.raises(NotFound):
        kube.merge_patch(DEPLOYMENTS, NS, "d", {"spec": {"replicas": 1}})
    crd = ResourceKind("example.com", "v1", "Thing", "things")  # a CRD not installed
    with pytest.raises(NotFound):
        kube.list(crd, NS, "a=b")


def test_create_names_from_generate_name_and_refuses_a_taken_name() -> None:
    kube = FakeKube()
    body: JSON = {"metadata": {"generateName": "fraud."}, "reason": "X"}
    first, second = kube.create(EVENTS, NS, body), kube.create(EVENTS, NS, body)
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert first["metadata"]["name"].startswith("fraud.")
    with pytest.raises(Conflict):
        kube.create(EVENTS, NS, {"metadata": {"name": first["metadata"]["name"]}})


def test_list_selects_by_label_and_namespace() -> None:
    kube = FakeKube()
    for namespace, name, labels in [
        (NS, "a", {"app": "x", "v": "1"}),
        (NS, "b", {"app": "y"}),
        ("other", "c", {"app": "x"}),
    ]:
        kube.add(
            DEPLOYMENTS, {"metadata": {"name": name, "namespace": namespace, "labels": labels}}
        )
    assert [d["metadata"]["name"] for d in kube.list(DEPLOYMENTS, NS, "app=x")] == ["a"]
    assert [d["metadata"]["name"] for d in kube.list(DEPLOYMENTS, None, "app=x")] == ["a", "c"]
    assert [d["metadata"]["name"] for d in kube.list(DEPLOYMENTS, NS, "v")] == ["a"]


def test_an_injected_error_fails_the_next_matching_request_once_and_is_logged() -> None:
    kube, _ = added()
    kube.fail_next("get", MODELDEPLOYMENTS, KubeError(403, "forbidden"), name=NAME)
    assert kube.get(DEPLOYMENTS, NS, NAME) is None  # another kind: not intercepted
    with pytest.raises(KubeError) as raised:
        kube.get(MODELDEPLOYMENTS, NS, NAME)
    assert raised.value.status == 403
    assert kube.get(MODELDEPLOYMENTS, NS, NAME) is not None
    assert [(r.verb, r.kind.kind) for r in kube.requests] == [
        ("get", "Deployment"),
        ("get", "ModelDeployment"),
        ("get", "ModelDeployment"),
    ]
