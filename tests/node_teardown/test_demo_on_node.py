"""`make demo` as a person runs it, on the real node: both outcomes read from the
ModelDeployments' status, every request sent through the gateway (Traefik) and answered, the
candidates' share measured at the client, and nothing of the demo left once it has exited.

In this package, not tests/node: its node must not be up at the same time as that package's."""

from __future__ import annotations

import pytest

from tests.e2e.test_demo import assert_one_promoted_one_rolled_back, processes_mentioning, run_demo
from tests.node_teardown.test_node_teardown import netns_names
from tests.testenv.images import ensure_images


def test_demo_on_the_real_node_promotes_one_canary_and_rolls_back_the_other(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    ensure_images()  # as `make demo` builds them first
    workdir = tmp_path_factory.mktemp("demo")  # short: containerd's socket path has a limit
    netns_before = set(netns_names())
    summary = run_demo(workdir)
    assert_one_promoted_one_rolled_back(summary)
    through_gateway = summary["measuredThroughGateway"]
    for namespace in ("demo-promote", "demo-rollback"):
        seen = through_gateway[namespace]
        # Only answers from a model version: no failed or refused request.
        assert seen and all(key.startswith("200 v") for key in seen), (namespace, seen)
        # The gateway sent the candidate (version 2) its share during the rollout.
        assert seen.get("200 v1", 0) > 0 and seen.get("200 v2", 0) > 0, (namespace, seen)
    assert processes_mentioning(str(workdir)) == []
    assert set(netns_names()) <= netns_before
