"""What the demo prints while the rollouts run: the plugin's status view (modelrollout.cli.render)
redrawn in a terminal, or one line per change when the output is not a terminal (CI, logs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from modelrollout.cli.render import describe_step, status_view

CLEAR_SCREEN = "\x1b[H\x1b[2J"
Obj = Mapping[str, Any]


def _verdicts(status: Obj) -> str:
    results = (status.get("analysis") or {}).get("results") or []
    latest: dict[str, Obj] = {}
    for result in results:  # newest last: keep each metric's latest verdict
        latest[str(result.get("metric"))] = result
    parts = []
    for metric, r in latest.items():
        value = r.get("value")
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(f"{metric}={shown} {r.get('verdict')}")
    return ", ".join(parts)


def compact(obj: Obj) -> str:
    """One line: phase, step, weight, analysis and its verdicts, and the message when it ends."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
    index = status.get("currentStepIndex")
    line = f"{obj['metadata']['namespace']:<14} {status.get('phase') or 'Pending':<11}"
    if status.get("canaryRevision") and index is not None and index < len(steps):
        line += f" step {index + 1}/{len(steps)} {describe_step(steps[index]):<22}"
        line += f" canary weight {status.get('canaryWeight', 0):>3}%"
    analysis = status.get("analysis") or {}
    if analysis.get("phase") and status.get("canaryRevision"):
        line += f"  analysis {analysis['phase']}"
        verdicts = _verdicts(status)
        if verdicts:
            line += f" [{verdicts}]"
    if status.get("phase") in ("Healthy", "Degraded") and status.get("message"):
        line += f"  | {status['message']}"
    return line


def screen(panels: Sequence[tuple[str, Obj, str]], header: str) -> str:
    """The full-terminal view: one `kubectl modelrollout status` per ModelDeployment."""
    now = datetime.now(UTC)
    parts = [CLEAR_SCREEN + header]
    for title, obj, traffic in panels:
        parts += ["", f"=== {title}", status_view(obj, now), f"Load:       {traffic}"]
    return "\n".join(parts)
