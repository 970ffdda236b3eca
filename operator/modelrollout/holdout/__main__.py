"""modelrollout-validate: the offline gate. Exit 0 pass, 1 fail, 2 error (bad input, one line)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from modelrollout.holdout.evaluate import EvaluationError
from modelrollout.holdout.report import format_table, termination_summary, to_dict
from modelrollout.holdout.run import InputError, error_report, parse_input, read_input, run
from modelrollout.holdout.spec import ValidatorInput

DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modelrollout-validate",
        description="Evaluate a candidate model against the stable one on holdout data.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spec", type=Path, help="YAML or JSON: spec.validation + candidate, stable")
    src.add_argument(
        "--spec-env", metavar="VAR", help="read the same input from an environment variable"
    )
    p.add_argument("--report", type=Path, help="write the full JSON report here")
    p.add_argument(
        "--termination-log",
        type=Path,
        default=DEFAULT_TERMINATION_LOG if DEFAULT_TERMINATION_LOG.exists() else None,
        help="write a compact JSON summary here (default /dev/termination-log when it exists)",
    )
    return p


def _read(args: argparse.Namespace) -> ValidatorInput:
    if args.spec is not None:
        return read_input(args.spec)
    text = os.environ.get(args.spec_env)
    if text is None:
        raise InputError(f"environment variable {args.spec_env} is not set")
    return parse_input(text, f"${args.spec_env}")


def _write(path: Path | None, text: str, what: str) -> bool:
    if path is None:
        return True
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {what} {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec: ValidatorInput | None = None
    try:
        spec = _read(args)
        report = run(spec)
    except (InputError, EvaluationError) as exc:
        report = error_report(str(exc), spec)
        print(f"error: {exc}", file=sys.stderr)
    print(format_table(report))
    ok = _write(args.report, json.dumps(to_dict(report), indent=2) + "\n", "report")
    ok = _write(args.termination_log, termination_summary(report), "termination log") and ok
    # A result that could not be recorded must not count as a pass.
    return report.exit_code if ok else 2


if __name__ == "__main__":
    sys.exit(main())
