"""What both variants of `make demo` tell: two namespaces, the same ModelDeployment in each
(manifests/examples/demo-canary.yaml), version 2 rolled out under load; a good model promoted
step by step, a worse one rolled back by prediction drift. Shared here: the models, the lines
printed, the watch until both rollouts have ended and the summary the tests read."""

from __future__ import annotations

import copy
import signal
import time
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from demo.models import Trained, train_good, train_worse
from demo.view import compact, screen
from modelrollout.cli.render import status_view
from tests.e2e.harness import NAME
from tests.integration.operator_process import settled_on

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "manifests" / "examples" / "demo-canary.yaml"
PROMOTE_NS, ROLLBACK_NS = "demo-promote", "demo-rollback"
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.0f}s] ==> {message}", flush=True)


TITLES = {
    PROMOTE_NS: "good candidate: promoted step by step",
    ROLLBACK_NS: "worse candidate: rolled back by prediction drift",
}


def manifest(version: str, prometheus: str, uri: str, sha256: str | None = None) -> dict[str, Any]:
    """manifests/examples/demo-canary.yaml with this run's Prometheus, model version and URI."""
    obj: dict[str, Any] = copy.deepcopy(yaml.safe_load(MANIFEST.read_text()))
    obj["spec"]["model"]["version"] = version
    obj["spec"]["model"]["uri"] = uri
    if sha256 is not None:
        obj["spec"]["model"]["sha256"] = sha256
    obj["spec"]["analysis"]["prometheus"]["address"] = prometheus
    return obj


class Lane(Protocol):
    """One namespace of the demo, as the watch shows it."""

    namespace: str
    title: str
    candidate: str

    def md(self) -> dict[str, Any]: ...

    def traffic(self) -> str: ...


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


def watch(lanes: Sequence[Lane], interactive: bool, timeout: float) -> dict[str, dict[str, Any]]:
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
            for lane in lanes:
                line = compact(objs[lane.namespace])
                if shown.get(lane.namespace) != line:
                    shown[lane.namespace] = line
                    print(f"[{time.monotonic() - STARTED:5.0f}s]     {line}", flush=True)
                    print(f"{'':14}load: {lane.traffic()}", flush=True)
        if all(finished(ln, objs[ln.namespace]) for ln in lanes):
            return objs
        if time.monotonic() > deadline:
            raise TimeoutError(f"the rollouts did not finish in {timeout:.0f}s")
        time.sleep(1.0)


def print_final(lanes: Sequence[Lane], objs: dict[str, dict[str, Any]]) -> None:
    say("Final state (what `kubectl modelrollout status fraud -n NAMESPACE` shows):")
    now = datetime.now(UTC)
    for lane in lanes:
        print(f"\n=== {lane.title}\n{status_view(objs[lane.namespace], now)}", flush=True)
        print(f"Load:       {lane.traffic()}\n", flush=True)


def summary_of(lanes: Sequence[Lane], objs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "seconds": round(time.monotonic() - STARTED),
        "modelDeployments": [outcome(ln, objs[ln.namespace]) for ln in lanes],
    }


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
