"""Which watch events wake a rollout's daemon (modelrollout.handlers), against the in-memory API.

Every ModelDeployment has one daemon that sleeps until woken or until its next deadline. Watch
events that cannot change a decision must not wake it (Kopf's own annotation patches, our own
status write, Deployment status churn): at a thousand objects each one would cost a reconcile.
The handlers are called as Kopf calls them, with the objects FakeKube holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import kopf
import pytest

from modelrollout import handlers
from modelrollout.api.names import HOLDOUT_JOB_LABEL, KOPF_PREFIX, NAME_LABEL
from modelrollout.kube import DEPLOYMENTS, HTTPROUTES, MODELDEPLOYMENTS, SERVICES, ResourceKind
from modelrollout.kube.rest import JSON
from modelrollout.shell import Shell, reconcile_sync
from modelrollout.traffic.weighted import last_writer
from tests.unit.fake_kube import FakeKube, model, model_deployment

NS, NAME = "ml", "fraud"


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    """A started operator (handlers' process state fresh for each test) on a fake API server."""
    fake = FakeKube()
    fake.add(MODELDEPLOYMENTS, model_deployment("1"))
    monkeypatch.setattr(handlers, "_shell", Shell(fake, server_image="server:test"))
    monkeypatch.setattr(handlers, "_wakers", {})
    monkeypatch.setattr(handlers, "_seen", {})
    monkeypatch.setattr(handlers, "_deployments", {})
    return fake


def shell() -> Shell:
    assert handlers._shell is not None
    return handlers._shell


def daemon(name: str = NAME) -> asyncio.Event:
    """The waker a running daemon sleeps on."""
    return handlers._waker(NS, name)


def woken(waker: asyncio.Event) -> bool:
    """Was the daemon woken since the last look? (It clears its waker before each reconcile.)"""
    was = waker.is_set()
    waker.clear()
    return was


def body(kube: FakeKube, kind: ResourceKind, name: str) -> kopf.Body:
    found = kube.stored(kind, NS, name)
    assert found is not None
    return kopf.Body(cast(kopf.RawBody, found))


def called_as_kopf_does(handler: Any) -> Callable[..., Awaitable[None]]:
    """Kopf's decorators type a handler as Kopf's callback protocol: call it with its kwargs."""
    return cast(Callable[..., Awaitable[None]], handler)


async def md_watch(kube: FakeKube, type_: str = "MODIFIED") -> None:
    await called_as_kopf_does(handlers.md_event)(
        type=type_, namespace=NS, name=NAME, body=body(kube, MODELDEPLOYMENTS, NAME)
    )


async def deployment_watch(kube: FakeKube, name: str, type_: str = "MODIFIED") -> None:
    seen = body(kube, DEPLOYMENTS, name)
    await called_as_kopf_does(handlers.deployment_event)(
        type=type_, namespace=NS, body=seen, labels=seen.metadata.labels
    )


def edit(kube: FakeKube, change: JSON) -> None:
    """Another client's merge of `change` into the ModelDeployment (status or metadata)."""

    def merge(md: JSON) -> None:
        for section, fields in change.items():
            md.setdefault(section, {}).update(fields)

    kube.edit(MODELDEPLOYMENTS, NS, NAME, merge)


async def test_our_own_status_write_and_kopf_s_annotations_wake_nobody(kube: FakeKube) -> None:
    waker = daemon()
    await md_watch(kube, "ADDED")
    assert woken(waker)
    reconcile_sync(shell(), NS, NAME)
    await md_watch(kube)  # the watch event of our own status write
    assert not woken(waker)
    edit(kube, {"metadata": {"annotations": {f"{KOPF_PREFIX}/last-handled-configuration": "x"}}})
    await md_watch(kube)
    assert not woken(waker)
    edit(kube, {"status": {"promote": "t1"}})  # `kubectl modelrollout promote`
    await md_watch(kube)
    assert woken(waker)
    await md_watch(kube)  # the same event again (a watch restart lists it once more)
    assert not woken(waker)
    kube.edit(MODELDEPLOYMENTS, NS, NAME, lambda md: md["spec"].update(model=model("2")))
    await md_watch(kube)
    assert woken(waker)


async def test_a_deleted_model_deployment_is_forgotten(kube: FakeKube) -> None:
    waker = daemon()
    await md_watch(kube, "ADDED")
    assert woken(waker)
    await md_watch(kube, "DELETED")
    assert not woken(waker)
    # Created again under the same name, with the same generation and status: news again.
    await md_watch(kube, "ADDED")
    assert woken(waker)


async def test_deployments_wake_on_replicas_ready_pods_or_deletion_only(kube: FakeKube) -> None:
    waker, other = daemon(), daemon("other")
    reconcile_sync(shell(), NS, NAME)
    [child] = kube.names(DEPLOYMENTS, NS)
    await deployment_watch(kube, child, "ADDED")
    assert woken(waker)

    def churn(deployment: JSON) -> None:
        conditions = [{"type": "Progressing", "status": "True"}]
        deployment.setdefault("status", {}).update(observedGeneration=1, conditions=conditions)

    kube.edit(DEPLOYMENTS, NS, child, churn)
    await deployment_watch(kube, child)
    assert not woken(waker)
    kube.make_ready(NS)
    await deployment_watch(kube, child)
    assert woken(waker)
    kube.edit(DEPLOYMENTS, NS, child, lambda d: d["spec"].update(replicas=2))  # kubectl scale
    await deployment_watch(kube, child)
    assert woken(waker)
    await deployment_watch(kube, child, "DELETED")
    assert woken(waker)
    assert not woken(other)


async def test_a_deleted_service_is_applied_again_at_once(kube: FakeKube) -> None:
    waker = daemon()
    reconcile_sync(shell(), NS, NAME)
    stable = f"{NAME}-stable"
    labels = body(kube, SERVICES, stable).metadata.labels
    await called_as_kopf_does(handlers.service_event)(
        type="MODIFIED", namespace=NS, name=stable, labels=labels
    )
    assert not woken(waker)
    kube.remove(SERVICES, NS, stable)  # `kubectl delete service fraud-stable`
    await called_as_kopf_does(handlers.service_event)(
        type="DELETED", namespace=NS, name=stable, labels=labels
    )
    assert woken(waker)
    before = len(kube.requests)
    reconcile_sync(shell(), NS, NAME)
    assert [r.name for r in kube.requests[before:] if r.verb == "apply"] == [stable]
    assert kube.stored(SERVICES, NS, stable) is not None


async def test_spec_changes_and_validation_jobs_wake_only_running_daemons(kube: FakeKube) -> None:
    waker = daemon()
    await called_as_kopf_does(handlers.spec_changed)(namespace=NS, name=NAME)
    assert woken(waker)
    labels = {NAME_LABEL: NAME, HOLDOUT_JOB_LABEL: "abc"}
    await called_as_kopf_does(handlers.validation_job_event)(namespace=NS, labels=labels)
    assert woken(waker)
    await called_as_kopf_does(handlers.spec_changed)(namespace=NS, name="no-daemon")
    assert set(handlers._wakers) == {(NS, NAME)}


def managed(*entries: tuple[str, str]) -> list[JSON]:
    return [{"manager": m, "operation": "Update", "time": t} for m, t in entries]


def test_the_last_writer_is_whoever_changed_the_object_after_us() -> None:
    ours = ("modelrollout", "2026-01-01T12:00:05Z")
    assert last_writer({"metadata": {"managedFields": managed(ours)}}) is None
    kubectl = ("kubectl-patch", "2026-01-01T12:00:09Z")
    assert last_writer({"metadata": {"managedFields": managed(ours, kubectl)}}) == "kubectl-patch"
    later = ("modelrollout", "2026-01-01T12:00:10Z")
    assert last_writer({"metadata": {"managedFields": managed(kubectl, later)}}) is None
    assert last_writer({"metadata": {}}) is None


async def test_a_routing_object_changed_by_someone_else_wakes_the_rollouts_that_write_it(
    kube: FakeKube,
) -> None:
    waker, other = daemon(), daemon("other")
    shell().use_routing_object(HTTPROUTES, (NS, "fraud-route"), (NS, NAME))
    route: JSON = {"metadata": {"name": "fraud-route", "namespace": NS}}
    resource = kopf.Resource("gateway.networking.k8s.io", "v1", "httproutes")

    async def routing_watch(*writers: tuple[str, str], name: str = "fraud-route") -> None:
        seen = dict(route, metadata=dict(route["metadata"], managedFields=managed(*writers)))
        await called_as_kopf_does(handlers.routing_event)(
            type="MODIFIED",
            namespace=NS,
            name=name,
            body=kopf.Body(cast(kopf.RawBody, seen)),
            resource=resource,
        )

    await routing_watch(("modelrollout", "2026-01-01T12:00:05Z"))
    assert not woken(waker)  # our own weight write
    await routing_watch(
        ("modelrollout", "2026-01-01T12:00:05Z"), ("argocd", "2026-01-01T12:01:00Z")
    )
    assert woken(waker)
    assert not woken(other)
    await routing_watch(("argocd", "2026-01-01T12:01:00Z"), name="unrelated-route")
    assert not woken(waker)
    # A spec naming another route: the old one wakes it no more.
    shell().use_routing_object(HTTPROUTES, (NS, "new-route"), (NS, NAME))
    await routing_watch(("argocd", "2026-01-01T12:02:00Z"))
    assert not woken(waker)


def test_a_change_in_the_same_second_as_ours_counts_as_someone_else_s() -> None:
    same = managed(("modelrollout", "2026-01-01T12:00:05Z"), ("argocd", "2026-01-01T12:00:05Z"))
    assert last_writer({"metadata": {"managedFields": same}}) == "argocd"
