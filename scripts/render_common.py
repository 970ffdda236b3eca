"""What every `make manifests` renderer does with its text: write the file, or with --check
only compare (CI fails on a stale generated file)."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(target: Path, text: str, argv: list[str]) -> int:
    """Exit code: 1 when --check finds `target` stale, else 0 (after writing it)."""
    if "--check" in argv:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is stale: run `make manifests`", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0
