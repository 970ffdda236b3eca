"""Traffic through a real gateway, on real pods: Traefik (tests/testenv/gateway.py) routes the
requests of an HTTPRoute that the operator's Gateway API router weights; no request is split by
the test. At every step of a canary, the share of requests the gateway actually sent to the
candidate's pods is measured at the client, over 1,000 requests, and compared with
`status.canaryWeight`. The rollouts judged by analysis run through the same gateway in
test_rollouts_on_node.py."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.integration.helm_chart import Release
from tests.integration.operator_process import phase_is
from tests.node.routes import gateway_applies, http_route, routed_strategy
from tests.node.workload import (
    apply,
    model_deployment,
    promote,
    published_models,
    versions_served,
)
from tests.testenv.gateway import Gateway
from tests.testenv.images import ImageArchives
from tests.testenv.node import RealNode
from tests.testenv.waiting import eventually

NAME = "routed"
REQUESTS = 1000
# Traefik balances weighted backends by smooth weighted round robin, which is deterministic:
# over 1,000 requests the share is the weight within a few requests. 2 points leave room for a
# connection that a pod drops, and fail a split that is off by one step of 20 points or less.
TOLERANCE = 0.02
STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}},
         {"setWeight": 80}, {"pause": {}}]  # fmt: skip
PAUSES = {1: 20, 3: 50, 5: 80}  # step index of each pause: the weight it holds


def test_the_gateway_sends_each_step_s_share_to_the_candidate_s_pods(
    real_node: RealNode, release: Release, gateway: Gateway, images: ImageArchives, tmp_path: Path
) -> None:
    cp, ns = real_node.cp, release.apps
    base, digest = published_models(cp, f"{ns}-{NAME}-files", images, tmp_path)
    apply(cp, ns, http_route(gateway, NAME))
    strategy = routed_strategy(NAME, STEPS)
    apply(cp, ns, model_deployment(NAME, "1", f"{base}/v1.skops", digest["v1.skops"],
                                   strategy=strategy))  # fmt: skip
    eventually(phase_is(cp, ns, NAME, "Healthy"), "v1 Healthy", timeout=300)
    eventually(lambda: gateway_applies(gateway, ns, NAME, 0), "the gateway routing to v1", 60)
    host, port = gateway.host, gateway.port
    assert versions_served(host, NAME, 20, port=port) == Counter({"1": 20})

    apply(cp, ns, model_deployment(NAME, "2", f"{base}/v2.skops", digest["v2.skops"],
                                   strategy=strategy))  # fmt: skip
    measured: dict[int, Counter[str]] = {}
    for step, weight in PAUSES.items():
        paused = eventually(phase_is(cp, ns, NAME, "Paused", currentStepIndex=step),
                            f"the pause at {weight} %", timeout=300)  # fmt: skip
        assert paused["status"]["canaryWeight"] == weight, paused["status"]
        eventually(lambda w=weight: gateway_applies(gateway, ns, NAME, w),  # type: ignore[misc]
                   f"the gateway applying {weight} %", 60)  # fmt: skip
        seen = versions_served(host, NAME, REQUESTS, port=port)
        measured[weight] = seen
        assert set(seen) == {"1", "2"}, seen
        assert abs(seen["2"] / REQUESTS - weight / 100) <= TOLERANCE, (weight, seen)
        promote(cp, ns, NAME)

    done = eventually(phase_is(cp, ns, NAME, "Healthy"), "v2 Healthy", timeout=300)
    assert done["status"]["history"][0]["outcome"] == "Promoted", done["status"]
    eventually(lambda: gateway_applies(gateway, ns, NAME, 0), "the gateway routing to v2 alone", 60)
    assert versions_served(host, NAME, 100, port=port) == Counter({"2": 100})
    print("measured through the gateway (status.canaryWeight: requests by model version):",
          {w: dict(c) for w, c in measured.items()})  # fmt: skip
