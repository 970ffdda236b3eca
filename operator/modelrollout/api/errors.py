"""Readable validation errors: every message names the field path, e.g.
`spec.strategy.canary.steps[1].setWeight: ...`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from modelrollout.api.common import PathError, format_path


class FieldIssue(BaseModel):
    """One problem: the full wire path of the field and what is wrong with it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def field_issues(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[FieldIssue]:
    """Flatten a pydantic ValidationError into (path, message) pairs with wire field names.

    Model validators raise PathError to point below the model they check; its path is joined
    onto pydantic's location here.
    """
    issues: list[FieldIssue] = []
    for err in exc.errors():
        loc: list[str | int] = [*prefix, *err["loc"]]
        message = err["msg"]
        cause: Any = (err.get("ctx") or {}).get("error")
        if isinstance(cause, PathError):
            loc.extend(cause.path)
            message = cause.message
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        issues.append(FieldIssue(path=format_path(loc), message=message))
    return issues


def describe(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> str:
    """All issues, one per line (for events, status messages and CLI output)."""
    return "\n".join(str(i) for i in field_issues(exc, prefix))
