"""`make demo`: a real control plane, Prometheus, the operator and model servers on this machine;
one canary promoted step by step, one rolled back by analysis; then everything stops.

    python -m demo.run [--keep] [--non-interactive] [--workdir DIR]

Built from the e2e harness (tests/e2e/harness.py): kwok runs no containers, so the demo runs one
real `modelrollout-server` per revision itself, gives Prometheus labelled targets, and a load
generator splits requests by the weights the operator writes to each HTTPRoute.
The last line of a run is `DEMO-SUMMARY {json}`: each ModelDeployment's outcome, for tests.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import signal
import sys
import time
import types
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from demo.models import Trained, train_good, train_worse
from demo.view import compact, screen
from modelrollout.cli.render import status_view
from modelrollout.kube import Kube, make_api_client
from tests.e2e.harness import (
    HTTPROUTE_CRD,
    MD_CRD,
    NAME,
    Env,
    Fleet,
    http_route,
    revision_of,
)
from tests.e2e.prometheus import PrometheusProcess
from tests.integration.operator_process import Operator, get_md, install_crds, settled_on
from tests.testenv.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "manifests" / "examples" / "demo-canary.yaml"
PROMOTE_NS, ROLLBACK_NS = "demo-promote", "demo-rollback"
RPS = 40.0  # per namespace: enough requests for every 2 s measurement, light on 2 cores
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.0f}s] ==> {message}", flush=True)


def manifest(version: str, prometheus: str) -> dict[str, Any]:
    """manifests/examples/demo-canary.yaml with this run's Prometheus and a model version."""
    obj: dict[str, Any] = copy.deepcopy(yaml.safe_load(MANIFEST.read_text()))
    obj["spec"]["model"]["version"] = version
    obj["spec"]["model"]["uri"] = f"https://models.example/fraud/{version}/model.skops"
    obj["spec"]["analysis"]["prometheus"]["address"] = prometheus
    return obj


@dataclass
class Lane(Env):
    """One namespace of the demo. Prometheus is shared, so targets cover every lane's servers."""

    title: str = ""
    lanes: list[Lane] = field(default_factory=list, repr=False, compare=False)
    candidate: str = ""

    def add_revision(self, manifest: dict[str, Any], *faults: str) -> str:
        revision = revision_of(manifest)
        self.fleet.start(revision, *faults)
        self.prom.set_targets([t for ln in self.lanes for t in ln.fleet.targets(ln.namespace)])
        self.prom.wait_for(f'up{{namespace="{self.namespace}",revision="{revision}"}} == 1')
        return revision

    def md(self) -> dict[str, Any]:
        return get_md(self.cp, self.namespace, NAME)

    def traffic(self) -> str:
        sent = self.load.sent if self.load else {}
        return ", ".join(f"{rev}: {n} requests" for rev, n in sent.items()) or "-"


def finished(lane: Lane, obj: dict[str, Any]) -> bool:
    # Judged on `obj`, the object the summary reports, never on a fresh read: a rollout that
    # ends between the two reads would otherwise be reported by its stale, unfinished object.
    status = obj.get("status") or {}
    if lane.namespace == PROMOTE_NS:
        return settled_on(status, lane.candidate)
    return status.get("phase") == "Degraded"


def outcome(lane: Lane, obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status") or {}
    degraded = next((c for c in status.get("conditions") or [] if c["type"] == "Degraded"), {})
    history = status.get("history") or [{}]
    return {
        "namespace": lane.namespace,
        "name": NAME,
        "phase": status.get("phase"),
        "stableRevision": status.get("stableRevision"),
        "candidateRevision": lane.candidate,
        "lastOutcome": history[0].get("outcome"),
        "degradedReason": degraded.get("reason") if degraded.get("status") == "True" else None,
        "message": status.get("message"),
    }


def watch(lanes: list[Lane], interactive: bool, timeout: float) -> dict[str, dict[str, Any]]:
    """Show both rollouts until each has ended (promoted / rolled back); the final objects."""
    deadline = time.monotonic() + timeout
    shown: dict[str, str] = {}
    while True:
        objs = {lane.namespace: lane.md() for lane in lanes}
        if interactive:
            header = (
                f"modelrollout demo ({time.monotonic() - STARTED:.0f}s)   Ctrl-C stops everything"
            )
            panels = [(ln.title, objs[ln.namespace], ln.traffic()) for ln in lanes]
            print(screen(panels, header), flush=True)
        else:
            for namespace, obj in objs.items():
                line = compact(obj)
                if shown.get(namespace) != line:
                    shown[namespace] = line
                    print(f"[{time.monotonic() - STARTED:5.0f}s]     {line}", flush=True)
        if all(finished(ln, objs[ln.namespace]) for ln in lanes):
            return objs
        if time.monotonic() > deadline:
            raise TimeoutError(f"the rollouts did not finish in {timeout:.0f}s")
        time.sleep(1.0)


def print_keep_help(cp: ControlPlane) -> None:
    print(
        f"""
The demo keeps running (load included) until Ctrl-C. In another terminal:

  export KUBECONFIG={cp.kubeconfig}
  export PATH={cp.bin_dir}:{REPO / ".venv" / "bin"}:$PATH
  kubectl get modeldeployments -A
  kubectl modelrollout list -A
  kubectl modelrollout status fraud -n {PROMOTE_NS} --watch
  kubectl modelrollout history fraud -n {ROLLBACK_NS}
  kubectl modelrollout retry fraud -n {ROLLBACK_NS}     # roll the worse model out again
  kubectl get deployments,services,httproutes -n {PROMOTE_NS}
""",
        flush=True,
    )


@contextmanager
def interrupt_once() -> Iterator[None]:
    """First Ctrl-C stops the demo (cleanup runs); further ones do not cut the cleanup short."""

    def handler(signum: int, frame: types.FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("\nCtrl-C: stopping everything ...", flush=True)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def train(workdir: Path) -> tuple[Trained, Trained]:
    say("Training two scikit-learn models (logistic regression, saved as skops)")
    good = train_good(workdir / "fraud-good.skops")
    worse = train_worse(workdir / "fraud-worse.skops")
    for label, t in (("good ", good), ("worse", worse)):
        say(
            f"  {label}: accuracy {t.accuracy:.0%}, predicts class 1 for "
            f"{t.share_of_class_1:.0%} of inputs -> {t.path.name}"
        )
    return good, worse


def run(workdir: Path, keep: bool, interactive: bool, timeout: float) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    # A previous run's series (same namespaces and revisions) must not enter this run's analysis.
    shutil.rmtree(workdir / "prometheus", ignore_errors=True)
    good, worse = train(workdir)
    with ExitStack() as stack:
        say("Starting the control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok")
        say("  (fake nodes: pods turn Running without containers; about 20-40 s)")
        cp = stack.enter_context(ControlPlane(workdir / "cluster"))
        say(f"Control plane up at {cp.server}; installing the ModelDeployment and HTTPRoute CRDs")
        install_crds(cp, MD_CRD, "modeldeployments.modelrollout.io")
        install_crds(cp, HTTPROUTE_CRD, "httproutes.gateway.networking.k8s.io")
        for namespace in (PROMOTE_NS, ROLLBACK_NS):
            cp.create_namespace(namespace)
            cp.kubectl("apply", "-f", "-", input=json.dumps(http_route(namespace)))
        say("Starting Prometheus (scrapes every model server each second)")
        prom = PrometheusProcess(workdir / "prometheus")
        stack.callback(prom.stop)
        prom.start()
        say(f"Starting the operator (modelrollout-operator) for {PROMOTE_NS} and {ROLLBACK_NS}")
        operator = Operator(cp, PROMOTE_NS, workdir, "--standalone", "--namespace", ROLLBACK_NS)
        stack.callback(operator.stop)
        operator.start()
        api = make_api_client(str(cp.kubeconfig))
        stack.callback(api.close)
        kube = Kube(api)
        lanes: list[Lane] = []
        titles = {
            PROMOTE_NS: "good candidate: promoted step by step",
            ROLLBACK_NS: "worse candidate: rolled back by prediction drift",
        }
        for namespace, title in titles.items():
            fleet = Fleet(good.path, workdir, ("--fault-latency-ms", "20"))
            stack.callback(fleet.stop)
            lane = Lane(cp, namespace, prom, fleet, kube, operator, title=title, lanes=lanes)
            stack.callback(lambda ln=lane: ln.load.stop() if ln.load else None)
            lanes.append(lane)

        v1, v2 = manifest("1", prom.url), manifest("2", prom.url)
        for lane in lanes:
            say(f"{lane.namespace}: model server for version 1; `kubectl apply` of {MANIFEST.name}")
            stable = lane.deploy_stable(v1, RPS)
            say(f"{lane.namespace}: version 1 Healthy (revision {stable}); load {RPS:.0f} req/s")
        for lane in lanes:
            lane.fleet.model = good.path if lane.namespace == PROMOTE_NS else worse.path
            say(f"{lane.namespace}: model server for version 2 ({lane.fleet.model.name})")
            lane.candidate = lane.add_revision(v2)
        for lane in lanes:
            say(f"{lane.namespace}: `kubectl apply` of version 2: the canary rollout starts")
            lane.apply(v2)
        say("Watching: 20% -> pause 8s -> analysis -> 50% -> pause 8s -> analysis -> promote")
        objs = watch(lanes, interactive, timeout)
        summary = {
            "seconds": round(time.monotonic() - STARTED),
            "modelDeployments": [outcome(ln, objs[ln.namespace]) for ln in lanes],
        }
        say("Final state (what `kubectl modelrollout status fraud -n NAMESPACE` shows):")
        now = datetime.now(UTC)
        for lane in lanes:
            print(f"\n=== {lane.title}\n{status_view(objs[lane.namespace], now)}\n", flush=True)
        if keep:
            print_keep_help(cp)
            while True:
                time.sleep(3600)
        say("Stopping load, model servers, operator, Prometheus and the control plane")
    say("Everything stopped.")
    print("DEMO-SUMMARY " + json.dumps(summary), flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.run", description=__doc__)
    parser.add_argument("--workdir", type=Path, default=REPO / ".demo")
    parser.add_argument("--keep", action="store_true", help="keep running until Ctrl-C")
    parser.add_argument(
        "--non-interactive", action="store_true", help="one line per change, no screen redraws"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for the rollouts")
    args = parser.parse_args(argv)
    interactive = sys.stdout.isatty() and not args.non_interactive
    with interrupt_once():
        try:
            run(args.workdir.resolve(), args.keep, interactive, args.timeout)
        except KeyboardInterrupt:
            say("Stopped (Ctrl-C); no process left running.")
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
