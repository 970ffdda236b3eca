"""The fault matrix: one rollout per (strategy, fault, moment), judged against a fault-free one.

A `Lab` is one namespace on the real control plane with Prometheus, one model-server process per
revision, load that follows the routing objects, and the operator in an `IsolatedNetwork` (so the
network between it and Prometheus can be cut) as a ServiceAccount (so API Priority and Fairness
can throttle it alone). Rollouts follow one another in the lab: v2 from v1, v3 from v2...
Every candidate is good, so the fault-free outcome is always Promoted.

For each rollout the lab records the routing states the load saw, every status it could read
(every 0.2 s), and when the fault began and ended. `judge` turns that record into one row:
outcome as fault-free, no promotion while the fault lasted and a fully measured final analysis
(no promotion on missing data), the same routing path as the fault-free run (the stable never
loses traffic to anything but a passed candidate), every request answered, and the time from the
end of the fault to the rollout's next step forward.

Used by `benchmarks/faults.py` (make faults: the whole table) and tests/e2e/test_fault_matrix.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelrollout.kube import MODELDEPLOYMENTS, Kube, make_api_client
from tests.e2e.harness import (
    NAME,
    Env,
    RoutingReader,
    environment,
    md_manifest,
    read_blue_green,
    read_routing,
    wait_until,
)
from tests.integration.operator_process import Operator, control, service_account_kubeconfig
from tests.testenv.controlplane import ControlPlane
from tests.testenv.netns import IsolatedNetwork

INTERVAL_S = 3
COUNT = 3
# Every fault lasts two analysis intervals.
FAULT_S = 2 * INTERVAL_S
RPS = 40.0
ERRORS: dict[str, Any] = {
    "name": "error-rate", "builtin": "errorRate", "max": 0.02, "window": f"{2 * INTERVAL_S}s",
}  # fmt: skip
CANARY: dict[str, Any] = {
    "canary": {
        "steps": [{"setWeight": 50}, {"pause": {"duration": f"{INTERVAL_S}s"}}, {"analysis": {}}],
        "trafficRouting": {"gatewayAPI": {"httpRoute": "fraud-route"}},
    }
}
BLUE_GREEN: dict[str, Any] = {
    "blueGreen": {
        "autoPromotion": True,
        "previewReplicas": 1,
        "prePromotionAnalysis": {"metrics": ["error-rate"]},
        "postPromotionAnalysis": {"metrics": ["error-rate"]},
        "scaleDownDelaySeconds": 2,
    }
}
STRATEGIES: dict[str, tuple[dict[str, Any], RoutingReader]] = {
    "canary": (CANARY, read_routing),
    "blueGreen": (BLUE_GREEN, read_blue_green),
}
FLOW = "modelrollout-fault"

Status = dict[str, Any]


# --- moments: when, in a rollout, the fault begins ------------------------------------------


def _analysing(kind: str) -> Callable[[Status, str], bool]:
    def reached(st: Status, candidate: str) -> bool:
        run = st.get("analysis") or {}
        return (
            run.get("revision") == candidate
            and run.get("kind") == kind
            and int(run.get("successful") or 0) >= 1
        )

    return reached


def _started(st: Status, candidate: str) -> bool:
    return st.get("canaryRevision") == candidate


# strategy -> moment name -> reached(status, candidate)
MOMENTS: dict[str, dict[str, Callable[[Status, str], bool]]] = {
    "canary": {"at 50 %": _started, "mid-analysis": _analysing("step")},
    "blueGreen": {
        "preview analysis": _analysing("prePromotion"),
        "after the switch": _analysing("postPromotion"),
    },
}


# --- the lab ----------------------------------------------------------------------------------


@dataclass
class Lab:
    cp: ControlPlane
    env: Env
    net: IsolatedNetwork
    account: str
    kubeconfig: Path
    strategy: str
    version: int = 1
    crowd: Crowd | None = None

    @property
    def prom_port(self) -> int:
        return self.env.prom.port

    def manifest(self, version: int) -> dict[str, Any]:
        strategy = STRATEGIES[self.strategy][0]
        m = md_manifest(
            str(version), self.env.prom.url, [ERRORS], strategy=strategy,
            interval=f"{INTERVAL_S}s", count=COUNT, inconclusiveLimit=1,
        )  # fmt: skip
        return m


@contextmanager
def lab(cp: ControlPlane, namespace: str, workdir: Path, strategy: str) -> Iterator[Lab]:
    """Version 1 Healthy under load in `namespace`, the operator in its own network namespace."""
    account = "operator"
    cp.kubectl("create", "serviceaccount", account, "-n", namespace)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{namespace}-operator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }  # fmt: skip
    cp.kubectl("apply", "-f", "-", input=json.dumps(binding))
    kubeconfig = service_account_kubeconfig(cp, namespace, account, workdir / "op.kubeconfig")
    api_port = int(cp.server.rsplit(":", 1)[1])
    with ExitStack() as stack:
        # Last out: the operator's rights go only once it has stopped.
        stack.callback(
            cp.kubectl, "delete", "clusterrolebinding", f"{namespace}-operator", check=False
        )
        net = stack.enter_context(IsolatedNetwork(workdir / "relays"))
        net.forward(api_port)
        operator = Operator(cp, namespace, workdir, kubeconfig=kubeconfig, launcher=net.argv([]))
        env = stack.enter_context(environment(cp, namespace, workdir, operator))
        net.forward(env.prom.port)
        result = Lab(cp, env, net, account, kubeconfig, strategy)
        env.deploy_stable(result.manifest(1), RPS, read=STRATEGIES[strategy][1])
        yield result


# --- faults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    how: str
    begin: Callable[[Lab], None]
    end: Callable[[Lab], None]
    # Whether the analysis loses its data while the fault lasts (then no promotion may happen
    # during it); with the others a promotion during the fault on complete data is fine.
    cuts_data: bool = False


class Crowd:
    """Threads sending list requests as the operator's ServiceAccount without pause: they keep
    its priority level busy, as a noisy controller sharing the operator's level would."""

    def __init__(self, kubeconfig: Path, namespace: str, threads: int = 6) -> None:
        self._kubeconfig, self._namespace = kubeconfig, namespace
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Crowd:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        api = make_api_client(str(self._kubeconfig))
        kube = Kube(api)
        try:
            while not self._stop.is_set():
                with suppress(Exception):  # 429s are what this is for
                    kube.get(MODELDEPLOYMENTS, self._namespace, NAME)
        finally:
            api.close()


def _throttle(lab: Lab) -> None:
    """The operator's ServiceAccount on a priority level with no seats of its own and nothing to
    borrow: API Priority and Fairness lets one request run at a time (never none) and, the crowd
    keeping that one busy, answers the operator's requests with 429."""
    level = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": FLOW},
        "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 0, "lendablePercent": 0, "borrowingLimitPercent": 0,
            "limitResponse": {"type": "Reject"}}},
    }  # fmt: skip
    everything = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                  "namespaces": ["*"], "clusterScope": True}  # fmt: skip
    schema = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": FLOW},
        "spec": {
            "priorityLevelConfiguration": {"name": FLOW},
            "matchingPrecedence": 500,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": [{"kind": "ServiceAccount", "serviceAccount": {
                    "name": lab.account, "namespace": lab.env.namespace}}],
                "resourceRules": [everything],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            }],
        },
    }  # fmt: skip
    for obj in (level, schema):
        lab.cp.kubectl("apply", "-f", "-", input=json.dumps(obj))
    lab.crowd = Crowd(lab.kubeconfig, lab.env.namespace).start()
    wait_until("429s served to the operator", lambda: rejected(lab.cp) > 0, timeout=60)


def _unthrottle(lab: Lab) -> None:
    if lab.crowd is not None:
        lab.crowd.stop()
        lab.crowd = None
    lab.cp.kubectl("delete", "flowschema,prioritylevelconfiguration", FLOW, check=False)


def rejected(cp: ControlPlane) -> int:
    """Requests API Priority and Fairness rejected on the fault's flow schema so far."""
    text = cp.kubectl("get", "--raw", "/metrics").stdout
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_flowcontrol_rejected_requests_total{") and (
            f'flow_schema="{FLOW}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("operator SIGKILLed", "SIGKILL; a new process started after the fault",
              lambda lab: lab.env.operator.kill(), lambda lab: _restart_operator(lab)),
        Fault("kube-apiserver killed", "SIGKILL, then restarted",
              lambda lab: lab.cp.kill("kube-apiserver"),
              lambda lab: lab.cp.restart("kube-apiserver")),
        Fault("etcd killed", "SIGKILL, then restarted on the same data",
              lambda lab: lab.cp.kill("etcd"), lambda lab: lab.cp.restart("etcd")),
        Fault("Prometheus killed", "SIGKILL, then restarted on the same storage",
              lambda lab: lab.env.prom.kill(), lambda lab: lab.env.prom.start(), cuts_data=True),
        Fault("Prometheus slower than the timeout", "SIGSTOP: accepts, answers after SIGCONT",
              lambda lab: lab.env.prom.freeze(), lambda lab: lab.env.prom.thaw(), cuts_data=True),
        Fault("network to Prometheus dropped", "nftables drop in the operator's namespace",
              lambda lab: lab.net.cut(lab.prom_port), lambda lab: lab.net.heal(), cuts_data=True),
        Fault("API server throttling",
              "APF: the operator's account on a level without seats (Reject), kept busy by 6 "
              "threads of the same account; 429s on the level counted",
              _throttle, _unthrottle),
    )
}  # fmt: skip


def _restart_operator(lab: Lab) -> None:
    lab.env.operator.start()


# --- one rollout ---------------------------------------------------------------------------


@dataclass
class Record:
    """What one rollout did, as seen from outside the operator."""

    stable: str
    candidate: str
    started: float
    fault_began: float | None = None
    fault_ended: float | None = None
    finished: float | None = None
    statuses: list[tuple[float, Status]] = field(default_factory=list)
    routing: list[dict[str, int]] = field(default_factory=list)
    failed_requests: int = 0
    rejected: int = 0


class StatusSampler:
    """Reads the ModelDeployment's status every 0.2 s in a thread (skips what it cannot read)."""

    def __init__(self, cp: ControlPlane, namespace: str) -> None:
        self._api = make_api_client(str(cp.kubeconfig))
        self._kube = Kube(self._api)
        self._namespace = namespace
        self.samples: list[tuple[float, Status]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StatusSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self._api.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                md = self._kube.get(MODELDEPLOYMENTS, self._namespace, NAME)
            except Exception:  # the API server is down: that is the point of some faults
                md = None
            if md is not None:
                self.samples.append((time.monotonic(), dict(md.get("status") or {})))
            self._stop.wait(0.2)


def promoted(st: Status, candidate: str) -> bool:
    history = st.get("history") or []
    return (
        st.get("stableRevision") == candidate
        and bool(history)
        and (history[0].get("revision") == candidate)
    )


def roll(lab: Lab, fault: Fault | None, moment: str | None, timeout: float = 240) -> Record:
    """The next version rolled out, with `fault` from `moment` for FAULT_S seconds."""
    env = lab.env
    assert env.load is not None
    stable = env.status()["stableRevision"]
    lab.version += 1
    manifest = lab.manifest(lab.version)
    candidate = env.add_revision(manifest)
    changes_before = len(env.load.changes)
    failed_before = sum(env.load.failed.values())
    rejected_before = rejected(lab.cp)
    record = Record(stable, candidate, time.monotonic())
    with StatusSampler(lab.cp, env.namespace) as sampler:
        env.apply(manifest)
        if fault is not None and moment is not None:
            reached = MOMENTS[lab.strategy][moment]
            wait_until(
                f"the moment {moment!r}",
                lambda: any(reached(st, candidate) for _, st in sampler.samples[-3:]),
                timeout=timeout,
                interval=0.05,
            )
            record.fault_began = time.monotonic()
            try:
                fault.begin(lab)
                time.sleep(max(0.0, record.fault_began + FAULT_S - time.monotonic()))  # the fault
            finally:
                fault.end(lab)
            record.fault_ended = time.monotonic()
        wait_until(
            "the outcome",
            lambda: (
                any(promoted(st, candidate) for _, st in sampler.samples[-3:])
                or _rolled_back(sampler.samples, candidate)
                or waiting_for_a_person(sampler.samples)
            ),
            timeout=timeout,
        )
        record.finished = time.monotonic()
        if waiting_for_a_person(sampler.samples):
            # Recorded as it is; then aborted, so that the next rollout starts from the stable.
            control(lab.cp, env.namespace, NAME, "abort", f"matrix-{lab.version}")
            wait_until("back on the stable", lambda: env.routing() == {stable: 100})
        else:
            # The routing change that ends the rollout may come a moment after the status.
            wait_until(
                "the routing settled",
                lambda: (
                    env.routing() == {candidate: 100} or _rolled_back(sampler.samples, candidate)
                ),
                timeout=60,
            )
    record.statuses = sampler.samples
    record.routing = [weights for _, weights in env.load.changes[max(changes_before - 1, 0) :]]
    record.failed_requests = sum(env.load.failed.values()) - failed_before
    rejected_after = rejected(lab.cp)
    # A restarted kube-apiserver counts from zero again (a counter reset, as Prometheus reads it).
    record.rejected = (
        rejected_after - rejected_before if rejected_after >= rejected_before else rejected_after
    )
    return record


# Pauses that only a person ends (promote, abort or retry).
STICKY_PAUSES = {"AnalysisInconclusive"}


def waiting_for_a_person(samples: list[tuple[float, Status]]) -> bool:
    return any(
        st.get("phase") == "Paused" and st.get("pauseReason") in STICKY_PAUSES
        for _, st in samples[-3:]
    )


def _rolled_back(samples: list[tuple[float, Status]], candidate: str) -> bool:
    return any(
        (st.get("history") or [{}])[0].get("revision") == candidate
        and (st.get("history") or [{}])[0].get("outcome") != "Promoted"
        for _, st in samples[-3:]
    )


# --- judging a record -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    strategy: str
    fault: str
    moment: str
    outcome: str
    same_outcome: bool
    promoted_on_missing_data: bool
    same_routing: bool
    failed_requests: int
    recovered_s: float | None
    duration_s: float
    rejected: int

    @property
    def survived(self) -> bool:
        return (
            self.same_outcome
            and not self.promoted_on_missing_data
            and self.same_routing
            and self.failed_requests == 0
        )


def outcome_of(record: Record) -> str:
    if waiting_for_a_person(record.statuses):
        return f"Paused ({record.statuses[-1][1].get('pauseReason')})"
    for _, st in reversed(record.statuses):
        history = st.get("history") or []
        if history and history[0].get("revision") == record.candidate:
            return str(history[0].get("outcome"))
    return "none"


def routing_path(record: Record) -> list[dict[str, int]]:
    """The routing states in order, revisions named by their role, repeats folded."""
    roles = {record.stable: "stable", record.candidate: "candidate"}
    path: list[dict[str, int]] = []
    for weights in record.routing:
        named = {roles.get(r, r): w for r, w in weights.items()}
        if not path or path[-1] != named:
            path.append(named)
    return path


_KIND_RANK = {"prePromotion": 1, "postPromotion": 2}


def progress(st: Status, candidate: str) -> tuple[int, int, int, int]:
    """How far the rollout has gone (grows as it goes forward; a Fault pause is no progress)."""
    run = st.get("analysis") or {}
    mine = run.get("revision") == candidate
    return (
        int(promoted(st, candidate)),
        int(st.get("currentStepIndex") or 0),
        _KIND_RANK.get(str(run.get("kind")), 0) if mine else 0,
        int(run.get("successful") or 0) if mine else 0,
    )


def recovery_seconds(record: Record) -> float | None:
    """From the end of the fault to the first step forward after it (0 when the rollout had
    finished before the fault ended)."""
    if record.fault_ended is None:
        return None
    before = [
        progress(st, record.candidate) for t, st in record.statuses if t <= record.fault_ended
    ]
    reached = max(before, default=(0, 0, 0, 0))
    if reached[0]:
        return 0.0
    for t, st in record.statuses:
        if t > record.fault_ended and progress(st, record.candidate) > reached:
            return t - record.fault_ended
    return None


def fully_measured(record: Record) -> bool:
    """The candidate's last analysis run before the outcome: Successful, COUNT measurements."""
    for _, st in reversed(record.statuses):
        run = st.get("analysis") or {}
        if run.get("revision") == record.candidate:
            return run.get("phase") == "Successful" and int(run.get("successful") or 0) >= COUNT
    return False


def judge(strategy: str, fault: str, moment: str, record: Record, baseline: Record | None) -> Row:
    outcome = outcome_of(record)
    began, ended = record.fault_began, record.fault_ended
    during = [
        st
        for t, st in record.statuses
        if began is not None and ended is not None and began <= t <= ended
    ]
    return Row(
        strategy=strategy,
        fault=fault.name if fault else "none",
        moment=moment,
        outcome=outcome,
        same_outcome=outcome == (outcome_of(baseline) if baseline else "Promoted"),
        promoted_on_missing_data=not fully_measured(record)
        or bool(fault and fault.cuts_data and any(promoted(st, record.candidate) for st in during)),
        same_routing=baseline is None or routing_path(record) == routing_path(baseline),
        failed_requests=record.failed_requests,
        recovered_s=recovery_seconds(record),
        duration_s=(record.finished or record.started) - record.started,
        rejected=record.rejected,
    )
