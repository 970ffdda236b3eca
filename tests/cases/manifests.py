"""Load the manifest cases: YAML files whose leading comments say what must happen.

Header lines of an invalid case (see README.md):
    # expect: spec.strategy.canary.steps[2].setWeight   field path pydantic names (exact)
    # apiserver: spec.strategy.canary.steps            field path the API server names
                                                       (optional; default: the expect path)
    # layer: cel                                        which CRD layer refuses it: schema | cel
    # why: setWeight decreases along the steps          one line for humans
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).parent
LAYERS = ("schema", "cel")


@dataclass(frozen=True)
class Case:
    """One manifest and what the API must say about it."""

    file: Path
    manifest: dict[str, Any]
    expect: str = ""
    apiserver: str = ""
    layer: str = ""
    why: str = ""

    @property
    def id(self) -> str:
        return self.file.stem


def _header(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line.lstrip("# ").partition(":")
        if sep and key in ("expect", "apiserver", "layer", "why"):
            fields[key] = value.strip()
    return fields


def load(path: Path) -> Case:
    text = path.read_text()
    head = _header(text)
    expect = head.get("expect", "")
    return Case(
        file=path,
        manifest=yaml.safe_load(text),
        expect=expect,
        apiserver=head.get("apiserver", expect),
        layer=head.get("layer", ""),
        why=head.get("why", ""),
    )


def load_cases(kind: str) -> list[Case]:
    """All cases of a kind ("invalid" or "valid"), sorted by file name."""
    return [load(p) for p in sorted((CASES_DIR / kind).glob("*.yaml"))]
