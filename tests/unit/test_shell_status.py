"""The shell's status write, its retries, and the events that follow it (in memory, no cluster).

A status write carries the resourceVersion the decision read. A Conflict caused only by a
metadata change (Kopf's annotations) does not change the decision: it is sent again on the fresh
resourceVersion. A change of the spec or the status means the decision may be stale: the
reconcile gives up and asks to be run again in CONFLICT_RETRY_SECONDS. Events come after the
status lands, so a decision made again does not post them twice.
"""

from __future__ import annotations

from functools import partial

import pytest

from modelrollout.api.names import KOPF_PREFIX
from modelrollout.kube import DEPLOYMENTS, EVENTS, MODELDEPLOYMENTS, KubeError
from modelrollout.kube.rest import JSON
from modelrollout.shell import CONFLICT_RETRY_SECONDS, Shell, reconcile_sync
from tests.unit.fake_kube import FakeKube, Request, model, model_deployment

NS, NAME = "ml", "fraud"
KOPF_ANNOTATION = f"{KOPF_PREFIX}/last-handled-configuration"


def setup(md: JSON | None = None) -> tuple[FakeKube, Shell]:
    kube = FakeKube()
    kube.add(MODELDEPLOYMENTS, md or model_deployment("1"))
    return kube, Shell(kube, server_image="modelrollout-server:test")


def reconcile(shell: Shell) -> float | None:
    return reconcile_sync(shell, NS, NAME)


def stored(kube: FakeKube) -> JSON:
    md = kube.stored(MODELDEPLOYMENTS, NS, NAME)
    assert md is not None
    return md


def status_writes(kube: FakeKube) -> list[Request]:
    return [r for r in kube.made("patch", MODELDEPLOYMENTS) if r.subresource == "status"]


def events(kube: FakeKube) -> list[JSON]:
    found = [kube.stored(EVENTS, NS, name) for name in kube.names(EVENTS, NS)]
    return [event for event in found if event is not None]


def kopf_annotates(kube: FakeKube, value: str = "{}") -> None:
    """Kopf's own metadata patch (diff base, progress), racing with the status write."""

    def annotate(md: JSON) -> None:
        md["metadata"].setdefault("annotations", {})[KOPF_ANNOTATION] = value

    kube.edit(MODELDEPLOYMENTS, NS, NAME, annotate)


def changes_spec(kube: FakeKube) -> None:
    kube.edit(MODELDEPLOYMENTS, NS, NAME, lambda md: md["spec"].update(model=model("2")))


def person_promotes(kube: FakeKube) -> None:
    """`kubectl modelrollout promote`: a control token in the status."""
    kube.edit(
        MODELDEPLOYMENTS, NS, NAME, lambda md: md.setdefault("status", {}).update(promote="t1")
    )


@pytest.mark.parametrize("conflicts", [1, 2, 3])
def test_a_metadata_only_conflict_is_retried_on_the_fresh_resource_version(conflicts: int) -> None:
    kube, shell = setup()
    read_version = stored(kube)["metadata"]["resourceVersion"]
    for n in range(conflicts):
        kube.before_next(
            "patch",
            MODELDEPLOYMENTS,
            partial(kopf_annotates, kube, str(n)),
            subresource="status",
        )
    assert reconcile(shell) != CONFLICT_RETRY_SECONDS
    md = stored(kube)
    assert md["status"]["phase"] == "Progressing"
    assert md["metadata"]["annotations"][KOPF_ANNOTATION] == str(conflicts - 1)  # kept
    writes = status_writes(kube)
    assert len(writes) == conflicts + 1
    assert writes[0].resource_version == read_version
    # Each retry carries the resourceVersion read after the Conflict, never the stale one.
    versions = [w.resource_version for w in writes]
    assert len(set(versions)) == len(versions)
    assert shell.written[NS, NAME] == md["metadata"]["resourceVersion"]


def test_conflicts_that_never_end_give_up_and_ask_to_decide_again() -> None:
    kube, shell = setup()
    for n in range(10):
        kube.before_next(
            "patch",
            MODELDEPLOYMENTS,
            partial(kopf_annotates, kube, str(n)),
            subresource="status",
        )
    assert reconcile(shell) == CONFLICT_RETRY_SECONDS
    assert len(status_writes(kube)) == 4  # three retries, then the last try
    assert stored(kube).get("status") in (None, {})
    assert events(kube) == []


def test_a_spec_change_after_the_read_is_not_retried_and_the_next_decision_sees_it() -> None:
    kube, shell = setup()
    kube.before_next("patch", MODELDEPLOYMENTS, lambda: changes_spec(kube), subresource="status")
    assert reconcile(shell) == CONFLICT_RETRY_SECONDS
    assert len(status_writes(kube)) == 1
    assert stored(kube).get("status") in (None, {})
    assert events(kube) == []  # nothing announced for a decision that did not land
    assert (NS, NAME) not in shell.written
    assert reconcile(shell) != CONFLICT_RETRY_SECONDS
    st = stored(kube)["status"]
    assert (st["observedGeneration"], st["canaryModelVersion"]) == (2, "2")


def test_a_status_change_after_the_read_is_not_retried_and_is_kept() -> None:
    kube, shell = setup()
    kube.before_next("patch", MODELDEPLOYMENTS, lambda: person_promotes(kube), subresource="status")
    assert reconcile(shell) == CONFLICT_RETRY_SECONDS
    assert len(status_writes(kube)) == 1
    assert stored(kube)["status"] == {"promote": "t1"}
    assert events(kube) == []


def test_a_refused_status_write_fails_the_reconcile_and_posts_no_event() -> None:
    kube, shell = setup()
    kube.fail_next("patch", MODELDEPLOYMENTS, KubeError(500, "etcdserver: request timed out"))
    with pytest.raises(KubeError):
        reconcile(shell)
    assert len(kube.names(DEPLOYMENTS, NS)) == 1  # children first
    assert events(kube) == []


def test_events_are_posted_after_the_status_lands_and_name_the_model_deployment() -> None:
    kube, shell = setup()
    reconcile(shell)
    verbs = [(r.verb, r.kind.kind) for r in kube.writes()]
    status_at = verbs.index(("patch", "ModelDeployment"))
    created = [i for i, verb in enumerate(verbs) if verb == ("create", "Event")]
    assert created and min(created) > status_at
    md = stored(kube)
    [event] = events(kube)
    assert event["reason"] == "RolloutStarted"
    assert event["type"] == "Normal"
    involved = event["involvedObject"]
    assert (involved["kind"], involved["name"], involved["uid"]) == (
        "ModelDeployment",
        NAME,
        md["metadata"]["uid"],
    )
    reconcile(shell)  # nothing new: no event
    assert len(events(kube)) == 1


def invalid(md: JSON) -> None:
    md["spec"]["model"].pop("uri")


def test_an_invalid_spec_posts_one_invalid_spec_event_per_generation_and_writes_nothing() -> None:
    manifest = model_deployment("1")
    invalid(manifest)
    kube, shell = setup(manifest)
    assert reconcile(shell) is None
    assert reconcile(shell) is None  # same generation: no second event
    kopf_annotates(kube)  # metadata only: same generation
    assert reconcile(shell) is None
    [event] = events(kube)
    assert (event["type"], event["reason"]) == ("Warning", "InvalidSpec")
    assert "model.uri" in event["message"]
    assert [r.verb for r in kube.writes()] == ["create"]
    assert kube.names(DEPLOYMENTS, NS) == []

    kube.edit(MODELDEPLOYMENTS, NS, NAME, lambda md: md["spec"].update(replicas=3))
    assert stored(kube)["metadata"]["generation"] == 2
    reconcile(shell)
    reconcile(shell)
    assert [e["reason"] for e in events(kube)] == ["InvalidSpec", "InvalidSpec"]

    def fix(md: JSON) -> None:
        md["spec"]["model"] = model("1")

    kube.edit(MODELDEPLOYMENTS, NS, NAME, fix)
    reconcile(shell)
    assert stored(kube)["status"]["phase"] == "Progressing"
    assert len(kube.names(DEPLOYMENTS, NS)) == 1


def test_a_deleted_or_deleting_model_deployment_is_left_alone() -> None:
    kube, shell = setup()

    def deleting(md: JSON) -> None:
        md["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"

    kube.edit(MODELDEPLOYMENTS, NS, NAME, deleting)
    assert reconcile(shell) is None
    kube.remove(MODELDEPLOYMENTS, NS, NAME)
    assert reconcile(shell) is None
    assert kube.writes() == []
