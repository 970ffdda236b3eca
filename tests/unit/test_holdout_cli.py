"""The real console script: exit codes 0/1/2, the table, the JSON report, the termination log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.unit import holdout_samples as samples

SCRIPT = Path(sys.executable).parent / "modelrollout-validate"


def validate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def write(tmp: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(spec) if name.endswith(".yaml") else json.dumps(spec))
    return path


def test_pass_exits_0_and_writes_report_and_termination_log(tmp_path: Path) -> None:
    good, bad = samples.classifiers(tmp_path)
    spec = write(tmp_path, samples.classification_input(tmp_path, good, bad))
    out, term = tmp_path / "report.json", tmp_path / "termination-log"
    proc = validate("--spec", str(spec), "--report", str(out), "--termination-log", str(term))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "result: PASSED" in proc.stdout
    assert "accuracy" in proc.stdout and "roc_auc" in proc.stdout
    report = json.loads(out.read_text())
    assert report["result"] == "passed"
    assert [m["name"] for m in report["metrics"]] == ["accuracy", "roc_auc"]
    summary = json.loads(term.read_text())
    assert summary["result"] == "passed" and summary["v"] == 1
    assert summary["metrics"][0][0] == "accuracy"


def test_fail_exits_1(tmp_path: Path) -> None:
    good, bad = samples.classifiers(tmp_path)
    spec = write(tmp_path, samples.classification_input(tmp_path, bad, good), "spec.json")
    term = tmp_path / "termination-log"
    proc = validate("--spec", str(spec), "--termination-log", str(term))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "result: FAILED: accuracy 0.48 < min 0.7" in proc.stdout
    assert json.loads(term.read_text())["result"] == "failed"


def test_bad_input_exits_2_naming_the_field(tmp_path: Path) -> None:
    good, bad = samples.classifiers(tmp_path)
    raw = samples.classification_input(tmp_path, good, bad)
    raw["metrics"][0]["treshold"] = 0.9
    term = tmp_path / "termination-log"
    proc = validate("--spec", str(write(tmp_path, raw)), "--termination-log", str(term))
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.endswith("metrics[0].treshold: unknown field")
    assert json.loads(term.read_text())["result"] == "error"


def test_missing_spec_file_and_missing_model_exit_2(tmp_path: Path) -> None:
    proc = validate("--spec", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert "nope.yaml: cannot read" in proc.stderr
    good, bad = samples.classifiers(tmp_path)
    bad["uri"] = (tmp_path / "gone.skops").as_uri()
    proc = validate(
        "--spec", str(write(tmp_path, samples.classification_input(tmp_path, good, bad)))
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: stable model: ")
    assert "gone.skops" in proc.stderr


def test_spec_from_environment_variable(tmp_path: Path) -> None:
    good, bad = samples.classifiers(tmp_path)
    text = json.dumps(samples.classification_input(tmp_path, good, bad))
    env = {"PATH": "/usr/bin:/bin", "VALIDATION_SPEC": text}
    proc = validate("--spec-env", "VALIDATION_SPEC", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = validate("--spec-env", "UNSET_VARIABLE", env=env)
    assert proc.returncode == 2
    assert "UNSET_VARIABLE is not set" in proc.stderr
