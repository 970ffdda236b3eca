"""Pure logic of the manual controls: request tokens, when a control makes sense, undo targets.

Control requests (promote, promoteFull, abort, retry) are status fields holding a token; the
operator acts once per new token (modelrollout.api.status). pause/resume is spec.paused.
Undo writes spec.model back to what an older revision served: the model snapshot in its history
entry, else read from that revision's Deployment (kept up to spec.revisionHistoryLimit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from modelrollout.api import ModelDeploymentStatus
from modelrollout.api.controls import Control, status_key
from modelrollout.api.controls import refusal as control_refusal

Obj = Mapping[str, Any]


def request_token(now: datetime, nonce: str) -> str:
    """A new, readable token: the UTC time plus a nonce (the API allows 64 characters)."""
    return f"kubectl-{now:%Y%m%dT%H%M%S.%f}Z-{nonce[:8]}"


def control_patch(action: str, token: str) -> dict[str, Any]:
    return {"status": {status_key(Control(action)): token}}


def refusal(action: str, obj: Obj) -> str | None:
    """Why `action` would do nothing on this object now (None: go ahead); the operator's rule."""
    try:
        status = ModelDeploymentStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        return None  # a status this plugin cannot read: let the operator decide
    return control_refusal(Control(action), status)


@dataclass(frozen=True)
class HistoryRow:
    number: int  # 1 = oldest shown; what `undo --to-revision N` takes
    revision: str
    model_version: str
    outcome: str
    at: str
    reason: str


def history_rows(status: Obj) -> list[HistoryRow]:
    """status.history (newest first on the wire) numbered from the oldest."""
    entries = list(reversed(status.get("history") or []))
    return [
        HistoryRow(
            number=i + 1,
            revision=str(e.get("revision", "")),
            model_version=str(e.get("modelVersion", "")),
            outcome=str(e.get("outcome", "")),
            at=str(e.get("at", "")),
            reason=str(e.get("reason", "")),
        )
        for i, e in enumerate(entries)
    ]


def undo_target(obj: Obj, to_revision: str | None) -> str:
    """The revision to go back to; raises ValueError with a readable reason."""
    status = obj.get("status") or {}
    stable = status.get("stableRevision")
    rows = history_rows(status)
    if to_revision is None:
        previous = status.get("previousStableRevision")
        if previous and previous != stable:
            return str(previous)
        for row in reversed(rows):
            if row.outcome == "Promoted" and row.revision != stable:
                return row.revision
        raise ValueError("no earlier promoted revision in the history to go back to")
    if to_revision.isdigit() and len(to_revision) < 4:
        number = int(to_revision)
        found = next((r for r in rows if r.number == number), None)
        if found is None:
            raise ValueError(f"no history entry {number} (see `kubectl modelrollout history`)")
        return found.revision
    return to_revision


def model_from_history(status: Obj, revision: str) -> dict[str, Any] | None:
    """The spec.model snapshot the operator kept in the history for `revision`, if any."""
    for entry in status.get("history") or []:
        if entry.get("revision") == revision and entry.get("model"):
            return dict(entry["model"])
    return None


_ENV_FIELDS = {
    "MODELROLLOUT_NAME": "name",
    "MODELROLLOUT_VERSION": "version",
    "MODELROLLOUT_URI": "uri",
    "MODELROLLOUT_FORMAT": "format",
    "MODELROLLOUT_SHA256": "sha256",
}


def model_from_deployment(deployment: Obj) -> dict[str, Any]:
    """spec.model as a revision's Deployment serves it (from the model server's environment)."""
    containers = (
        deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    )
    for container in containers:
        env = {
            e["name"]: e.get("value", "")
            for e in container.get("env") or []
            if isinstance(e, Mapping) and "name" in e
        }
        if "MODELROLLOUT_URI" not in env:
            continue
        model: dict[str, Any] = {
            field: env[var] for var, field in _ENV_FIELDS.items() if env.get(var)
        }
        trusted = [t for t in env.get("MODELROLLOUT_TRUSTED_TYPES", "").split(",") if t]
        if trusted:
            model["trustedTypes"] = trusted
        if env.get("MODELROLLOUT_ALLOW_PICKLE", "").lower() in ("1", "true", "yes"):
            model["allowPickle"] = True
        return model
    raise ValueError("the revision's Deployment has no model-server container (MODELROLLOUT_URI)")


def model_patch(current: Obj, target: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch turning spec.model `current` into `target` (absent keys set to null)."""
    patch: dict[str, Any] = dict(target)
    for key in current:
        if key not in target:
            patch[key] = None
    return {"spec": {"model": patch}}
