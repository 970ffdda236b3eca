"""Pure text views of ModelDeployments for the terminal (no I/O: easy to test)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from modelrollout.cli.controls import history_rows

Obj = Mapping[str, Any]

DONE, CURRENT, TODO = "[x]", "[>]", "[ ]"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age(value: Any, now: datetime) -> str:
    """'42s', '5m', '3h', '2d' like kubectl; '-' when unknown."""
    when = _parse_time(value)
    if when is None:
        return "-"
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600 * 2:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns separated by three spaces, like kubectl get."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = []
    for row in (header, *rows):
        lines.append("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return lines


def describe_step(step: Obj) -> str:
    if "setWeight" in step:
        return f"setWeight {step['setWeight']}%"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause {duration}" if duration else "pause (until promoted)"
    if "analysis" in step:
        metrics = (step.get("analysis") or {}).get("metrics")
        return f"analysis ({', '.join(metrics)})" if metrics else "analysis (all metrics)"
    if "shadow" in step:
        shadow = step.get("shadow") or {}
        return (
            f"shadow {shadow.get('percent', 10)}% of live requests for {shadow.get('duration')}"
            " (the candidate answers copies only)"
        )
    return str(dict(step))


def _step_lines(spec: Obj, status: Obj) -> list[str]:
    canary = (spec.get("strategy") or {}).get("canary")
    if not canary:
        return []
    steps = canary.get("steps") or []
    in_flight = bool(status.get("canaryRevision"))
    current = status.get("currentStepIndex")
    lines = ["Steps:"]
    for i, step in enumerate(steps):
        if not in_flight or current is None:
            mark = DONE if status.get("phase") == "Healthy" and not in_flight else TODO
        elif i < current:
            mark = DONE
        elif i == current:
            mark = CURRENT
        else:
            mark = TODO
        lines.append(f"  {mark} {i + 1}. {describe_step(step)}")
    post = canary.get("postPromotionAnalysis")
    if post is not None:
        metrics = post.get("metrics")
        what = f"({', '.join(metrics)})" if metrics else "(all metrics)"
        if not in_flight or current is None:
            mark = DONE if status.get("phase") == "Healthy" and not in_flight else TODO
        else:
            mark = CURRENT if current > len(steps) else TODO
        lines.append(
            f"  {mark} post-promotion analysis {what}: all traffic on the candidate, stable kept up"
        )
    return lines


def step_column(spec: Obj, status: Obj) -> str:
    """`2/5` on a step, then `promoting`, then `post-promotion` (its post-promotion window)."""
    steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
    index = status.get("currentStepIndex")
    # Blue/green has no steps (its currentStepIndex counts stages, not steps).
    if not steps or not status.get("canaryRevision") or index is None:
        return "-"
    if index > len(steps):
        return "post-promotion"
    if index == len(steps):
        return "promoting"
    return f"{index + 1}/{len(steps)}"


def _fmt_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _analysis_lines(status: Obj, now: datetime) -> list[str]:
    analysis = status.get("analysis")
    if not analysis:
        return []
    counts = ", ".join(
        f"{analysis.get(k, 0)} {k}" for k in ("successful", "failed", "inconclusive", "errors")
    )
    head = f"Analysis:   {analysis.get('phase', '-')}"
    if analysis.get("revision"):
        head += f" on {analysis['revision']}"
    head += f" ({analysis.get('measurements', 0)} measurements: {counts})"
    lines = [head]
    if analysis.get("message"):
        lines.append(f"  {analysis['message']}")
    return lines + _results(analysis.get("results") or [], now, with_stable=True)


def _results(results: list[Obj], now: datetime, *, with_stable: bool) -> list[str]:
    """Each metric's latest result as an indented table (none: no lines)."""
    if not results:
        return []
    rows = [
        [
            str(r.get("metric", "")),
            _fmt_value(r.get("value")),
            *([_fmt_value(r.get("stableValue"))] if with_stable else []),
            str(r.get("bound") or "-"),
            str(r.get("verdict", "")),
            age(r.get("measuredAt"), now),
            str(r.get("message") or ""),
        ]
        for r in results
    ]
    header = ["METRIC", "VALUE", *(["STABLE"] if with_stable else []), "BOUND", "VERDICT", "AGE"]
    return ["  " + line for line in table([*header, "MESSAGE"], rows)]


def _monitoring_lines(status: Obj, now: datetime) -> list[str]:
    """spec.monitoring's checks: state, breaches, and each metric's latest result (inputDrift's
    message names the features that moved most)."""
    monitoring = status.get("monitoring")
    if not monitoring:
        return []
    head = (
        f"Monitoring: {monitoring.get('state', '-')} on {monitoring.get('revision', '-')}"
        f" for {age(monitoring.get('since'), now)}"
        f" ({monitoring.get('breaches', 0)} breaches)"
    )
    lines = [head]
    if monitoring.get("message"):
        lines.append(f"  {monitoring['message']}")
    results = (monitoring.get("check") or {}).get("results") or []
    return lines + _results(results, now, with_stable=False)


def _revision(rev: Any, version: Any) -> str:
    if not rev:
        return "-"
    return f"{rev} (version {version})" if version else str(rev)


def status_view(obj: Obj, now: datetime) -> str:
    """The readable status of one ModelDeployment: what `kubectl modelrollout status` prints."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    model = spec.get("model") or {}
    strategy = spec.get("strategy") or {}
    kind = "canary" if "canary" in strategy else "blueGreen" if "blueGreen" in strategy else "-"
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    phase = status.get("phase") or "Unknown"
    if spec.get("paused"):
        phase += " (spec.paused)"
    lines = [
        f"Name:       {meta.get('name')}   Namespace: {meta.get('namespace')}",
        f"Phase:      {phase}",
    ]
    if status.get("message"):
        lines.append(f"Message:    {status['message']}")
    if generation is not None and observed != generation:
        lines.append(
            f"Generation: {generation} (operator has seen {observed if observed else '-'})"
        )
    lines.append(f"Model:      {model.get('name', '-')} version {model.get('version', '-')}")
    lines.append(f"Strategy:   {kind}")
    lines.append(
        f"Stable:     {_revision(status.get('stableRevision'), status.get('stableModelVersion'))}"
        f"   ready {_fmt_value(status.get('readyReplicas'))}"
    )
    if status.get("canaryRevision"):
        label = "Canary:    " if kind == "canary" else "Preview:   "
        rev = _revision(status.get("canaryRevision"), status.get("canaryModelVersion"))
        lines.append(
            f"{label} {rev}   ready {_fmt_value(status.get('canaryReadyReplicas'))}"
            f"   weight {status.get('canaryWeight', 0)}%"
        )
    if status.get("pauseReason"):
        lines.append(
            f"Paused:     {status['pauseReason']} for {age(status.get('pauseStartedAt'), now)}"
        )
    lines += _step_lines(spec, status)
    validation = status.get("validation")
    if validation:
        lines.append(
            f"Validation: {validation.get('result', '-')} on {validation.get('revision', '-')}"
            + (f": {validation['message']}" if validation.get("message") else "")
        )
    lines += _analysis_lines(status, now)
    lines += _monitoring_lines(status, now)
    conditions = status.get("conditions") or []
    if conditions:
        lines.append("Conditions:")
        rows = [
            [
                str(c.get("type", "")),
                str(c.get("status", "")),
                str(c.get("reason") or ""),
                age(c.get("lastTransitionTime"), now),
                str(c.get("message") or ""),
            ]
            for c in conditions
        ]
        lines += ["  " + ln for ln in table(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], rows)]
    history = history_lines(status, now)
    if history:
        lines.append("History:")
        lines += ["  " + ln for ln in history]
    return "\n".join(lines)


def history_lines(status: Obj, now: datetime) -> list[str]:
    rows = [
        [str(r.number), r.revision, r.model_version, r.outcome, age(r.at, now), r.reason]
        for r in history_rows(status)
    ]
    if not rows:
        return []
    return table(["#", "REVISION", "VERSION", "OUTCOME", "AGE", "REASON"], rows)


def list_view(items: Sequence[Obj], now: datetime, all_namespaces: bool) -> str:
    if not items:
        return "No modeldeployments found."
    header = ["NAME", "PHASE", "VERSION", "STABLE", "CANARY", "WEIGHT", "STEP", "AGE", "MESSAGE"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    rows = []
    for obj in items:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        step = step_column(spec, status)
        row = [
            str(meta.get("name", "")),
            str(status.get("phase") or "-"),
            str((spec.get("model") or {}).get("version", "-")),
            str(status.get("stableRevision") or "-"),
            str(status.get("canaryRevision") or "-"),
            f"{status.get('canaryWeight', 0)}%",
            step,
            age(meta.get("creationTimestamp"), now),
            str(status.get("message") or ""),
        ]
        if all_namespaces:
            row.insert(0, str(meta.get("namespace", "")))
        rows.append(row)
    return "\n".join(table(header, rows))
