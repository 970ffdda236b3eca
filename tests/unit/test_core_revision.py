"""Revision hashing: what changes what is served changes the revision, nothing else does."""

from __future__ import annotations

from modelrollout.core.revision import REVISION_LENGTH, compute_revision
from tests.unit.builders import deployment_spec as spec


def test_revision_is_short_lowercase_hex_and_stable() -> None:
    revision = compute_revision(spec())
    assert len(revision) == REVISION_LENGTH
    assert all(c in "0123456789abcdef" for c in revision)
    assert compute_revision(spec()) == revision


def test_model_and_template_change_the_revision() -> None:
    base = compute_revision(spec())
    new_model = {"name": "fraud", "version": "2", "uri": "s3://models/fraud/2.skops"}
    assert compute_revision(spec(model=new_model)) != base
    assert compute_revision(spec(template={"spec": {"nodeSelector": {"gpu": "yes"}}})) != base
    pinned = {**new_model, "version": "1", "uri": "s3://models/fraud/1.skops", "sha256": "a" * 64}
    assert compute_revision(spec(model=pinned)) != base


def test_replicas_strategy_and_pause_do_not_change_the_revision() -> None:
    base = compute_revision(spec())
    assert compute_revision(spec(replicas=7)) == base
    assert compute_revision(spec(paused=True)) == base
    assert compute_revision(spec(strategy={"blueGreen": {}})) == base
    assert compute_revision(spec(progressDeadlineSeconds=60)) == base


def test_key_order_of_the_template_does_not_matter() -> None:
    a = spec(template={"spec": {"a": 1, "b": {"c": 2, "d": 3}}})
    b = spec(template={"spec": {"b": {"d": 3, "c": 2}, "a": 1}})
    assert compute_revision(a) == compute_revision(b)
