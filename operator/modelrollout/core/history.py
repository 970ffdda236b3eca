"""The bounded history of finished rollouts (newest first)."""

from __future__ import annotations

from datetime import datetime

from modelrollout.api import HistoryEntry, ModelSpec, Outcome
from modelrollout.api.status import MAX_HISTORY


def history_limit(revision_history_limit: int) -> int:
    """Entries kept: a few more than the revisions kept, never past the schema's bound."""
    return max(1, min(MAX_HISTORY, revision_history_limit + 5))


def with_entry(
    history: list[HistoryEntry],
    *,
    revision: str,
    model: ModelSpec | None,
    model_version: str,
    outcome: Outcome,
    at: datetime,
    reason: str,
    limit: int,
) -> list[HistoryEntry]:
    entry = HistoryEntry(
        revision=revision,
        model_version=model_version,
        outcome=outcome,
        at=at,
        reason=reason[:1024],
        model=model.model_copy(deep=True) if model is not None else None,
    )
    return [entry, *history][:limit]


def model_of(history: list[HistoryEntry], revision: str) -> ModelSpec | None:
    """The model spec recorded for `revision`, newest entry first."""
    for entry in history:
        if entry.revision == revision and entry.model is not None:
            return entry.model
    return None
