"""Shared pieces of the API: the base model, durations, path errors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel

# Go-style durations (500ms, 30s, 2m, 1h30m) or plain whole seconds ("30").
# The same pattern goes into the CRD, so the API server and Python agree.
DURATION_PATTERN = r"^([0-9]+|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

# Names that must be valid as DNS-1123 labels (metric names, Kubernetes object names).
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, snake_case in Python, no unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as the API server stores it (camelCase, no unset optionals)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# Numbers and booleans in the spec are what the API server's schema accepts: no "60" for 60, no
# "yes" for true (pydantic would coerce them; kube-apiserver refuses them).
WireInt = Annotated[int, Strict()]
WireFloat = Annotated[float, Strict()]
WireBool = Annotated[bool, Strict()]

Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=32,
        examples=["30s", "2m", "1h30m"],
    ),
]
"""A Go-style duration string (500ms, 30s, 2m, 1h30m) or whole seconds ("30")."""

DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]


def parse_duration(value: str | int | float) -> float:
    """Seconds in a Go-style duration ("2m" -> 120.0); plain numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: negative")
        return float(value)
    text = value.strip()
    if not _DURATION_RE.fullmatch(text):
        raise ValueError(f"invalid duration {value!r}: expected e.g. 500ms, 30s, 2m, 1h30m")
    if text.isdigit():
        return float(text)
    return sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _DURATION_PART_RE.findall(text))


class PathError(ValueError):
    """A validation error below the validated object: `path` is relative to it (wire names).

    Raised from model validators so error messages name the exact field, e.g.
    ("steps", 1, "setWeight"); `modelrollout.api.errors` joins it onto pydantic's location.
    """

    def __init__(self, path: Sequence[str | int], message: str) -> None:
        self.path: tuple[str | int, ...] = tuple(path)
        self.message = message
        super().__init__(f"{format_path(self.path)}: {message}" if self.path else message)


def format_path(path: Sequence[str | int]) -> str:
    """("spec", "steps", 1, "setWeight") -> "spec.steps[1].setWeight"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def exactly_one(obj: BaseModel, fields: Sequence[str], what: str) -> None:
    """Refuse unless exactly one of `fields` (Python names) is set; errors use wire names."""
    declared = type(obj).model_fields
    wire = {f: declared[f].alias or to_camel(f) for f in fields}
    present = [f for f in fields if getattr(obj, f) is not None]
    if len(present) == 1:
        return
    names = ", ".join(wire.values())
    if not present:
        raise PathError((), f"{what}: exactly one of {names} must be set")
    raise PathError(
        (wire[present[1]],), f"{what}: exactly one of {names} must be set, got {len(present)}"
    )


def cel(*rules: tuple[str, str] | tuple[str, str, str]) -> dict[str, Any]:
    """json_schema_extra carrying CEL rules: (rule, message[, fieldPath])."""
    out: list[dict[str, str]] = []
    for r in rules:
        entry = {"rule": r[0], "message": r[1]}
        if len(r) == 3:
            entry["fieldPath"] = r[2]
        out.append(entry)
    return {"x-kubernetes-validations": out}
