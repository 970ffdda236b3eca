"""The validation Job (pure): its manifest and the reading of its pod's termination message."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml

from modelrollout.api import ModelDeploymentSpec, ModelSpec, ValidationResult
from modelrollout.core.children import OwnerRef
from modelrollout.core.holdout_job import (
    SPEC_ENV,
    job_manifest,
    job_name,
    requested_at,
    validation_status,
)
from modelrollout.holdout.report import Report, termination_summary
from modelrollout.holdout.spec import ValidatorInput
from modelrollout.holdout.thresholds import Verdict

EXAMPLE = Path(__file__).parents[2] / "manifests" / "examples" / "validation-gate.yaml"
OWNER = OwnerRef.for_md("fraud", "uid-1")
AT = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
STABLE = ModelSpec(name="fraud-detector", version="10", uri="pvc://models/fraud/10.skops")


def spec(**changes: Any) -> ModelDeploymentSpec:
    raw = yaml.safe_load(EXAMPLE.read_text())["spec"]
    raw.update(changes)
    return ModelDeploymentSpec.model_validate(raw)


def manifest(s: ModelDeploymentSpec | None = None) -> dict[str, Any]:
    return job_manifest(OWNER, "ml", s or spec(), "abc123", STABLE, AT, "modelrollout:test")


def test_job_runs_the_validator_once_within_the_timeout() -> None:
    job = manifest()
    assert job["metadata"]["name"] == "fraud-validate-abc123"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 600
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["command"] == ["modelrollout-validate"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert requested_at(job) == AT


def test_the_spec_in_the_env_is_the_validators_own_schema() -> None:
    container = manifest()["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    parsed = ValidatorInput.model_validate(json.loads(env[SPEC_ENV]))
    assert parsed.candidate.version == "11"
    assert parsed.stable is not None and parsed.stable.version == "10"
    assert parsed.target == "is_fraud"
    assert [m.name.value for m in parsed.metrics] == ["roc_auc", "f1", "log_loss"]


def test_pvc_uris_are_mounted_and_template_identity_is_shared() -> None:
    template = {
        "spec": {
            "serviceAccountName": "model-reader",
            "containers": [
                {"name": "server", "env": [{"name": "AWS_REGION", "value": "eu-west-1"}]}
            ],
        }
    }
    job = manifest(spec(template=template))
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "model-reader"
    assert pod["volumes"][1:] == [
        {"name": "pvc-0", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}}
    ]
    container = pod["containers"][0]
    assert container["volumeMounts"][1]["mountPath"] == "/mnt/models/models"
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in container["env"]


def test_job_name_fits_a_label() -> None:
    assert len(job_name("x" * 63, "0123456789")) <= 63


def job(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "fraud-validate-abc123",
            "creationTimestamp": "2026-01-02T03:04:06Z",
            "annotations": {"modelrollout.io/requested-at": AT.isoformat()},
        },
        "spec": {"activeDeadlineSeconds": 600},
        "status": status,
    }


def pod(message: str, exit_code: int) -> dict[str, Any]:
    terminated = {
        "exitCode": exit_code,
        "message": message,
        "reason": "Completed" if exit_code == 0 else "Error",
        "finishedAt": "2026-01-02T03:05:00Z",
    }
    return {
        "metadata": {"creationTimestamp": "2026-01-02T03:04:07Z"},
        "status": {
            "containerStatuses": [{"name": "validator", "state": {"terminated": terminated}}]
        },
    }


def summary(result: str, message: str = "ok") -> str:
    verdicts = (
        Verdict("accuracy", 0.93, 0.48, result == "passed", ()),
        Verdict("roc_auc", float("nan"), None, False, ()),
    )
    return termination_summary(Report(result, message, 400, (), verdicts))  # type: ignore[arg-type]


def test_passed_summary_with_exit_0_passes_with_metrics() -> None:
    st = validation_status(job(), [pod(summary("passed"), 0)], "abc123")
    assert st.result == ValidationResult.PASSED
    assert st.rows == 400
    assert st.started_at == AT
    assert st.completed_at == dt.datetime(2026, 1, 2, 3, 5, tzinfo=dt.UTC)
    assert [(m.name, m.value, m.stable_value) for m in st.metrics] == [
        ("accuracy", 0.93, 0.48),
        ("roc_auc", None, None),
    ]


def test_failed_summary_with_exit_1_fails_with_its_message() -> None:
    failed = {
        "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    }
    st = validation_status(
        job(**failed), [pod(summary("failed", "accuracy 0.4 < min 0.7"), 1)], "r"
    )
    assert st.result == ValidationResult.FAILED
    assert st.message == "accuracy 0.4 < min 0.7"


def test_timeout_is_an_error_even_with_a_pass_in_the_message() -> None:
    timed_out = {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}
    st = validation_status(job(**timed_out), [pod(summary("passed"), 0)], "r")
    assert st.result == ValidationResult.ERROR
    assert st.message == "validation timed out after 600s"


def test_a_pass_with_a_nonzero_exit_code_is_an_error() -> None:
    st = validation_status(job(), [pod(summary("passed"), 137)], "r")
    assert st.result == ValidationResult.ERROR
    assert "exited with code 137" in st.message


def test_log_tail_instead_of_a_summary_is_an_error() -> None:
    log = "Traceback (most recent call last):\n  ...\nMemoryError"
    st = validation_status(job(), [pod(log, 1)], "r")
    assert st.result == ValidationResult.ERROR
    assert st.message.startswith("validator exited with code 1: Traceback")


def test_failed_job_without_pods_and_complete_without_result_are_errors() -> None:
    failed = {"conditions": [{"type": "Failed", "status": "True", "message": "pod deleted"}]}
    assert validation_status(job(**failed), [], "r").message == "validation Job failed: pod deleted"
    complete = {"conditions": [{"type": "Complete", "status": "True"}]}
    assert validation_status(job(**complete), [], "r").result == ValidationResult.ERROR


def test_running_and_waiting() -> None:
    assert validation_status(job(active=1), [], "r").result == ValidationResult.RUNNING
    waiting = {
        "metadata": {},
        "status": {
            "containerStatuses": [
                {"name": "validator", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
            ]
        },
    }
    st = validation_status(job(active=1), [waiting], "r")
    assert st.result == ValidationResult.RUNNING
    assert st.message == "validator waiting: ImagePullBackOff"


def test_odd_values_in_the_summary_do_not_break_the_status() -> None:
    body = {
        "v": 1,
        "result": "failed",
        "message": "x",
        "rows": "many",
        "metrics": [["accuracy", "0.9", True, "yes"], ["f1"], "junk"],
    }
    st = validation_status(job(), [pod(json.dumps(body), 1)], "r")
    assert st.result == ValidationResult.FAILED
    assert st.rows is None
    assert [(m.name, m.value, m.stable_value, m.passed) for m in st.metrics] == [
        ("accuracy", None, None, False)
    ]
