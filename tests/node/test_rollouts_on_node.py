"""The end-to-end scenarios that matter most, on real pods through the gateway: Traefik routes
the load (no request is split by the test), the model servers run from the server image, the
operator is the chart's pod, and Prometheus judges from the pods it discovers itself
(docs/prometheus-scrape.yaml). At each canary step the share the gateway actually sent to the
candidate is measured at the client and compared with `status.canaryWeight`.

- A good candidate is promoted through analysed steps while its operator is SIGKILLed mid-rollout.
- A candidate whose pods fail half of their requests is rolled back on its error rate: the gateway
  stops sending it requests, and the time from its first answer to its last is measured.
- A candidate whose predictions moved is rolled back by the drift gate alone.
- Prometheus stopped mid-analysis pauses the rollout, which never promotes without data and goes
  on once Prometheus is back.
- Blue/green switches the gateway's clients to the candidate, and back when the candidate fails
  its post-promotion analysis.

tests/e2e keeps, on model servers as processes, what a pod adds nothing to: the judges'
statistics, live accuracy, shadow agreement and the fault matrix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.prometheus import PrometheusProcess
from tests.integration.helm_chart import Release
from tests.integration.operator_process import events, get_md, phase_is
from tests.node.discovery import DRIFT, ERROR_RATE, discovered_analysis
from tests.node.operator_pod import operator_container, sigkill_operator
from tests.node.routes import gateway_applies, http_route, measured_share, routed_strategy
from tests.node.workload import (
    Load,
    apply,
    failing,
    faulty,
    model_deployment,
    published_models,
    versions_served,
)
from tests.testenv.controlplane import ControlPlane
from tests.testenv.gateway import Gateway
from tests.testenv.images import ImageArchives
from tests.testenv.node import RealNode
from tests.testenv.waiting import eventually

pytestmark = pytest.mark.timeout(900)

# Traefik's weighted round robin is deterministic: over 150 answers the share is the weight
# within a few requests. 5 points fail a share that is off by a step.
TOLERANCE = 0.05
CANDIDATE = ("200 v2", "500")  # the keys of Load.counts that the candidate's pods answered
PROMOTE_STEPS = [{"setWeight": 25}, {"pause": {"duration": "10s"}}, {"analysis": {}},
                 {"setWeight": 60}, {"pause": {"duration": "5s"}}, {"analysis": {}}]  # fmt: skip


@dataclass
class Lane:
    """One ModelDeployment behind its HTTPRoute, version 1 Healthy; `candidate` makes version 2."""

    node: RealNode
    ns: str
    name: str
    gateway: Gateway
    base: str
    digest: dict[str, str]
    spec: dict[str, Any]
    stable: str

    @property
    def cp(self) -> ControlPlane:
        return self.node.cp

    def candidate(self, template: dict[str, Any] | None = None) -> dict[str, Any]:
        extra = {} if template is None else {"template": template}
        return model_deployment(self.name, "2", f"{self.base}/v2.skops", self.digest["v2.skops"],
                                replicas=1, **self.spec, **extra)  # fmt: skip

    @contextmanager
    def loaded(self) -> Iterator[Load]:
        """Requests to the gateway from two clients, answered by version 1 before it yields."""
        with Load(self.gateway.host, self.name, clients=2, port=self.gateway.port) as load:
            eventually(lambda: load.counts()["200 v1"] >= 20, "load through the gateway", 60)
            yield load

    def share(self, load: Load, weight: int) -> float:
        return measured_share(load, self.gateway, self.ns, self.name, weight, CANDIDATE)

    def routes_all_to_stable(self) -> None:
        eventually(lambda: gateway_applies(self.gateway, self.ns, self.name, 0),
                   "the gateway sending nothing to the candidate", 60)  # fmt: skip

    def served(self, requests: int = 50) -> Counter[str]:
        return versions_served(self.gateway.host, self.name, requests, port=self.gateway.port)

    def rolled_back(
        self, load: Load, template: dict[str, Any], weight: int
    ) -> tuple[float, dict[str, Any], Counter[str]]:
        """Version 2 with `template` under `load`: its measured share at the step of `weight` %,
        its status once rolled back to the unchanged stable, and the answers by then."""
        apply(self.cp, self.ns, self.candidate(template))
        self.status_when(at_weight(weight), f"the step at {weight} %")
        share = self.share(load, weight)
        st = self.status_when(lambda s: s.get("phase") == "Degraded", "a rollback")
        self.routes_all_to_stable()
        assert st["stableRevision"] == self.stable, st
        assert st["history"][0]["outcome"] == "RolledBack", st
        return share, st, load.counts()

    def status_when(self, probe: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            st: dict[str, Any] = get_md(self.cp, self.ns, self.name).get("status") or {}
            return st if probe(st) else None

        return eventually(check, what, timeout=300)


@dataclass
class Stage:
    """What every scenario runs on: the node, the chart's operator, the gateway and a
    Prometheus discovering the pods."""

    node: RealNode
    release: Release
    gateway: Gateway
    images: ImageArchives
    prometheus: PrometheusProcess
    tmp_path: Path

    def analysis(self, *metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return discovered_analysis(self.prometheus, *metrics, **extra)

    def canary(self, name: str, steps: list[Any], analysis: dict[str, Any]) -> Lane:
        return self.lane(name, strategy=routed_strategy(name, steps), analysis=analysis)

    def lane(self, name: str, **spec: Any) -> Lane:
        """Version 1 of `name` Healthy behind its HTTPRoute, the gateway routing to it."""
        cp, ns = self.node.cp, self.release.apps
        base, digest = published_models(cp, f"{ns}-{name}-files", self.images, self.tmp_path)
        apply(cp, ns, http_route(self.gateway, name))
        apply(cp, ns, model_deployment(name, "1", f"{base}/v1.skops", digest["v1.skops"],
                                       replicas=1, **spec))  # fmt: skip
        healthy = eventually(phase_is(cp, ns, name, "Healthy"), "v1 Healthy", timeout=300)
        stable = healthy["status"]["stableRevision"]
        lane = Lane(self.node, ns, name, self.gateway, base, digest, spec, stable)
        lane.routes_all_to_stable()
        return lane


@pytest.fixture
def stage(
    real_node: RealNode,
    release: Release,
    gateway: Gateway,
    images: ImageArchives,
    discovering: PrometheusProcess,
    tmp_path: Path,
) -> Stage:
    return Stage(real_node, release, gateway, images, discovering, tmp_path)


def at_weight(weight: int) -> Callable[[dict[str, Any]], bool]:
    return lambda st: st.get("canaryWeight") == weight and st.get("canaryRevision") not in (
        None, st.get("stableRevision"))  # fmt: skip


def no_failed_request(seen: Counter[str]) -> bool:
    return not any(key == "500" or key.startswith("error") for key in seen)


def test_a_good_candidate_is_promoted_through_its_steps_with_its_operator_sigkilled(
    stage: Stage,
) -> None:
    lane = stage.canary("steady", PROMOTE_STEPS, stage.analysis(ERROR_RATE, DRIFT))
    node, release = stage.node, stage.release
    shares: dict[int, float] = {}
    with lane.loaded() as load:
        apply(lane.cp, lane.ns, lane.candidate())
        lane.status_when(at_weight(25), "the step at 25 %")
        shares[25] = lane.share(load, 25)
        # Mid-rollout: in the pause at 25 %, the analysis of that step still to come.
        restarts = sigkill_operator(node, release)
        eventually(lambda: operator_container(node, release)["restartCount"] > restarts,
                   "the kubelet restarting the operator", 120)  # fmt: skip
        lane.status_when(at_weight(60), "the step at 60 %")
        shares[60] = lane.share(load, 60)
        done = lane.status_when(
            lambda st: st.get("phase") == "Healthy" and st.get("stableRevision") != lane.stable,
            "the candidate promoted",
        )
        lane.routes_all_to_stable()
        seen = load.counts()
    assert done["history"][0]["outcome"] == "Promoted", done
    assert done["analysis"]["phase"] == "Successful", done["analysis"]
    # The restarted operator went on from where the status said, never through a step again.
    completed = Counter(e["message"] for e in events(lane.cp, lane.ns, lane.name)
                        if e["reason"] == "StepCompleted")  # fmt: skip
    assert completed and max(completed.values()) == 1, completed
    assert no_failed_request(seen), seen
    for weight, share in shares.items():
        assert abs(share - weight / 100) <= TOLERANCE, shares
    assert lane.served() == Counter({"2": 50})
    print(f"measured through the gateway (weight: candidate's share): {shares}; {dict(seen)}")


def test_a_failing_candidate_is_rolled_back_and_the_gateway_stops_sending_to_it(
    stage: Stage,
) -> None:
    failing_share = 0.5
    steps = [{"setWeight": 50}, {"pause": {"duration": "5s"}}, {"analysis": {}}, {"pause": {}}]
    lane = stage.canary("guarded", steps, stage.analysis(ERROR_RATE))
    with lane.loaded() as load:
        share, st, seen = lane.rolled_back(load, failing(failing_share), 50)
    assert "metric error-rate value" in st["message"], st["message"]
    assert abs(share - 0.5) <= TOLERANCE, share
    # The gateway sent the candidate its share: half of its answers were the injected 500s.
    candidate_answers = seen["200 v2"] + seen["500"]
    assert seen["200 v2"] > 0 and abs(seen["500"] / candidate_answers - failing_share) < 0.1, seen
    assert not any(key.startswith("error") for key in seen), seen
    assert lane.served(100) == Counter({"1": 100})
    spans = [s for s in (load.answered("200 v2"), load.answered("500")) if s is not None]
    served_for = max(s[1] for s in spans) - min(s[0] for s in spans)
    print(f"at 50 % the gateway sent the candidate {share:.3f}; {dict(seen)}; it answered from "
          f"its first request to its last for {served_for:.1f} s; {st['message']}")  # fmt: skip


def test_shifted_predictions_are_rolled_back_by_the_drift_gate(stage: Stage) -> None:
    steps = [{"setWeight": 40}, {"pause": {"duration": "10s"}}, {"analysis": {}}]
    lane = stage.canary("drifting", steps, stage.analysis(ERROR_RATE, DRIFT))
    with lane.loaded() as load:
        # 60 % of each answer's probability moved to the last class: no error, other answers.
        share, st, seen = lane.rolled_back(load, faulty(prediction_shift=0.6), 40)
    assert "metric drift value" in st["message"], st["message"]
    by_metric = {r["metric"]: r for r in st["analysis"]["results"]}
    # The same (zero) error rate: only the drift gate caught it.
    assert by_metric["error-rate"]["verdict"] == "Successful", by_metric
    assert by_metric["drift"]["verdict"] == "Failed", by_metric
    assert abs(share - 0.4) <= TOLERANCE, share
    assert seen["200 v2"] > 0 and no_failed_request(seen), seen
    assert lane.served() == Counter({"1": 50})
    print(f"at 40 % the gateway sent the candidate {share:.3f}; {dict(seen)}; {st['message']}")


def test_prometheus_down_mid_analysis_pauses_then_the_rollout_goes_on(stage: Stage) -> None:
    steps = [{"setWeight": 30}, {"pause": {"duration": "5s"}}, {"analysis": {}}]
    analysis = stage.analysis(ERROR_RATE, count=4, consecutiveErrorLimit=1)
    lane = stage.canary("blind", steps, analysis)
    with lane.loaded() as load:
        apply(lane.cp, lane.ns, lane.candidate())
        lane.status_when(lambda s: ((s.get("analysis") or {}).get("successful") or 0) >= 1,
                         "a first measurement")  # fmt: skip
        stage.prometheus.stop()
        paused = lane.status_when(lambda s: s.get("phase") == "Paused", "a pause on errors")
        # While Prometheus is away: the candidate keeps its step's share and is never promoted.
        share = lane.share(load, paused["canaryWeight"])
        during = get_md(lane.cp, lane.ns, lane.name)["status"]
        stage.prometheus.start()
        done = lane.status_when(
            lambda st: st.get("phase") == "Healthy" and st.get("stableRevision") != lane.stable,
            "the candidate promoted once Prometheus is back",
        )
        seen = load.counts()
    assert paused["analysis"]["phase"] == "Error", paused["analysis"]
    assert "unreachable" in paused["message"].lower(), paused["message"]
    assert paused["canaryWeight"] == 30, paused
    assert abs(share - 0.3) <= TOLERANCE, share
    assert during["stableRevision"] == lane.stable and during["phase"] == "Paused", during
    assert done["history"][0]["outcome"] == "Promoted", done
    assert no_failed_request(seen), seen
    print(f"paused at 30 % with the gateway sending the candidate {share:.3f}: "
          f"{paused['message']}; then {done['history'][0]}")  # fmt: skip


def test_blue_green_switches_the_gateway_and_back_after_a_failed_post_promotion_analysis(
    stage: Stage,
) -> None:
    name = "switched"
    blue_green = {
        "autoPromotion": True,
        # The preview, ready, waits this long: clients must get none of its answers meanwhile.
        "autoPromotionSeconds": 15,
        "postPromotionAnalysis": {"metrics": ["error-rate"]},
        "scaleDownDelaySeconds": 2,
        "trafficRouting": {"gatewayAPI": {"httpRoute": name}},
    }
    lane = stage.lane(name, strategy={"blueGreen": blue_green}, analysis=stage.analysis(ERROR_RATE))
    with lane.loaded() as load:
        apply(lane.cp, lane.ns, lane.candidate(failing(0.5)))
        lane.status_when(lambda s: "switching automatically" in (s.get("message") or ""),
                         "the preview ready")  # fmt: skip
        before_switch = lane.share(load, 0)
        # Switched: the HTTPRoute keeps every request on `<name>-stable`, which now selects the
        # candidate's pods; the gateway follows their EndpointSlice.
        eventually(lambda: load.only_recently(CANDIDATE), "the gateway's clients on v2", 120)
        st = lane.status_when(lambda s: s.get("phase") == "Degraded", "a rollback")
        eventually(lambda: load.only_recently(("200 v1",)), "the gateway's clients on v1", 60)
        seen = load.counts()
    assert st["stableRevision"] == lane.stable and st["history"][0]["outcome"] == "RolledBack", st
    assert "post-promotion: metric error-rate value" in st["message"], st["message"]
    assert st["analysis"]["kind"] == "postPromotion", st["analysis"]
    assert before_switch == 0, before_switch
    # After the switch the gateway's clients got the candidate: half its answers were its 500s.
    candidate_answers = seen["200 v2"] + seen["500"]
    assert seen["200 v2"] > 0 and abs(seen["500"] / candidate_answers - 0.5) < 0.15, seen
    assert not any(key.startswith("error") for key in seen), seen
    assert lane.served() == Counter({"1": 50})
    print(f"before the switch the candidate's share was {before_switch}; {dict(seen)}; "
          f"{st['message']}")  # fmt: skip
