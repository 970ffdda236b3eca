"""One validation run: read the input, load both models the server's way, evaluate, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelrollout.api import ModelSpec, field_issues
from modelrollout.holdout.dataset import DatasetError, read_dataset
from modelrollout.holdout.evaluate import EvaluationError, ModelUnderTest, evaluate
from modelrollout.holdout.report import ModelRef, Report
from modelrollout.holdout.spec import ValidatorInput, check_rules, thresholds
from modelrollout.server.loading import ModelLoadError, ModelSource, load_model


class InputError(Exception):
    """The validator's own input is unusable: one line naming the problem."""


def parse_input(text: str, where: str) -> ValidatorInput:
    try:
        raw: Any = yaml.safe_load(text)  # YAML is a superset of JSON: one parser for both
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML or JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping of spec.validation fields")
    try:
        return ValidatorInput.model_validate(raw)
    except ValidationError as exc:
        issues = "; ".join(str(i) for i in field_issues(exc))
        raise InputError(f"{where}: {issues}") from None


def read_input(path: Path) -> ValidatorInput:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_input(text, str(path))


def _load(role: str, spec: ModelSpec) -> ModelUnderTest:
    try:
        loaded = load_model(ModelSource.from_spec(spec))
    except ModelLoadError as exc:
        raise InputError(f"{role} model: {exc.reason}") from None
    return ModelUnderTest(role, ModelRef(spec.name, spec.version, spec.uri), loaded.estimator)


def run(spec: ValidatorInput) -> Report:
    """Raises InputError or EvaluationError when no verdict can be reached."""
    candidate = _load("candidate", spec.candidate)
    stable = _load("stable", spec.stable) if spec.stable is not None else None
    try:
        df = read_dataset(spec.dataset.uri, spec.dataset.format.value, spec.dataset.sha256)
    except DatasetError as exc:
        raise InputError(str(exc)) from None
    return evaluate(df, check_rules(spec), thresholds(spec), candidate, stable)


def error_report(message: str, spec: ValidatorInput | None = None) -> Report:
    def ref(m: ModelSpec | None) -> ModelRef | None:
        return None if m is None else ModelRef(m.name, m.version, m.uri)

    return Report(
        result="error",
        message=message,
        candidate=ref(spec.candidate) if spec else None,
        stable=ref(spec.stable) if spec else None,
    )


__all__ = ["EvaluationError", "InputError", "error_report", "parse_input", "read_input", "run"]
