"""The validation gate on the real control plane, with the operator as a real process.

kwok runs no containers, so the test plays the kubelet: it runs the real `modelrollout-validate`
on the very input the operator put into the Job, and writes the pod's terminated state with that
exit code and termination message through the pod status subresource.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from modelrollout.core.holdout_job import SPEC_ENV
from tests.integration.operator_process import (
    Operator,
    apply,
    control,
    deployments,
    events,
    healthy_on,
    in_phase,
    kubectl_json,
    md_manifest,
    revision,
    wait_for,
)
from tests.testenv.controlplane import ControlPlane
from tests.unit import holdout_samples as samples

NAME = "fraud"
VALIDATE = Path(sys.executable).parent / "modelrollout-validate"


def md(model: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
    steps = [{"setWeight": 50}, {"pause": {"duration": "1s"}}]
    return md_manifest(NAME, model, {"canary": {"steps": steps}}, 2, validation=validation)


def holdout_validation(
    tmp: Path, timeout: int, *checks: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The sample classifiers (good, bad) and a spec.validation on their holdout rows."""
    good, bad = samples.classifiers(tmp)
    spec = samples.classification_input(tmp, good, None)
    validation = {k: spec[k] for k in ("dataset", "target", "metrics", *checks)}
    validation["timeoutSeconds"] = timeout
    return good, bad, validation


def job_of(cp: ControlPlane, ns: str, rev: str) -> dict[str, Any] | None:
    result = cp.kubectl("get", "job", f"{NAME}-validate-{rev}", "-n", ns, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def validator_pod(cp: ControlPlane, ns: str, job: dict[str, Any]) -> dict[str, Any] | None:
    uid = job["metadata"]["uid"]
    pods = kubectl_json(
        cp, "get", "pods", "-n", ns, "-l", f"batch.kubernetes.io/controller-uid={uid}"
    )["items"]
    # Running: kwok is done with it (it never touches a pod in a terminal phase).
    running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
    return running[0] if running else None


def run_validator(job: dict[str, Any], tmp: Path) -> tuple[int, str]:
    """The real validator on the Job's own input: (exit code, termination message)."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    term = tmp / f"termination-{job['metadata']['uid']}"
    proc = subprocess.run(
        [str(VALIDATE), "--spec-env", SPEC_ENV, "--termination-log", str(term)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    print(proc.stdout, proc.stderr)
    return proc.returncode, term.read_text()


def terminate(cp: ControlPlane, ns: str, pod: dict[str, Any], code: int, message: str) -> None:
    """What a kubelet writes when the validator container exits."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    container = pod["spec"]["containers"][0]
    patch = {
        "status": {
            "phase": "Succeeded" if code == 0 else "Failed",
            "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "False", "lastTransitionTime": now},
            ],
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {
                        "terminated": {
                            "exitCode": code,
                            "reason": "Completed" if code == 0 else "Error",
                            "message": message,
                            "startedAt": now,
                            "finishedAt": now,
                        }
                    },
                }
            ],
        }
    }
    cp.kubectl(
        "patch", "pod", pod["metadata"]["name"], "-n", ns, "--subresource=status",
        "--type=merge", "-p", json.dumps(patch),
    )  # fmt: skip


def play_kubelet(cp: ControlPlane, ns: str, rev: str, tmp: Path) -> tuple[dict[str, Any], int]:
    job = wait_for(f"validation Job of {rev}", lambda: job_of(cp, ns, rev))
    pod = wait_for("validator pod Running", lambda: validator_pod(cp, ns, job))
    code, message = run_validator(job, tmp)
    terminate(cp, ns, pod, code, message)
    return job, code


def test_gate_passes_a_good_model_and_stops_a_worse_one(
    operator: Operator, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cp, ns = control_plane, namespace
    good, bad, validation = holdout_validation(tmp_path, 300, "dataChecks")

    # First deployment: validated on its own (no stable to compare with), then deployed.
    v1 = md(good, validation)
    r1 = revision(v1)
    apply(cp, ns, v1)
    wait_for("phase Validating", lambda: in_phase(cp, ns, NAME, "Validating"))
    job, code = play_kubelet(cp, ns, r1, tmp_path)
    assert code == 0
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 300
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"

    st = wait_for("first revision Healthy", lambda: healthy_on(cp, ns, NAME, r1))
    assert st["validation"]["result"] == "Passed"
    assert st["validation"]["revision"] == r1
    assert [m["name"] for m in st["validation"]["metrics"]] == ["accuracy", "roc_auc"]

    # A worse candidate: compared with the stable on the same rows, it never gets traffic.
    v2 = md(dict(bad, version="2"), validation)
    r2 = revision(v2)
    apply(cp, ns, v2)
    job2 = wait_for(f"validation Job of {r2}", lambda: job_of(cp, ns, r2))
    input2 = json.loads(
        next(
            e["value"]
            for e in job2["spec"]["template"]["spec"]["containers"][0]["env"]
            if e["name"] == SPEC_ENV
        )
    )
    wait_for("the earlier candidate's Job removed", lambda: job_of(cp, ns, r1) is None)
    assert input2["stable"]["uri"] == good["uri"]
    assert input2["candidate"]["uri"] == bad["uri"]
    # The Job is created before the status that reports it is written.
    wait_for("phase Validating", lambda: in_phase(cp, ns, NAME, "Validating"))
    _, code = play_kubelet(cp, ns, r2, tmp_path)
    assert code == 1

    st = wait_for("phase Degraded", lambda: in_phase(cp, ns, NAME, "Degraded"))
    assert st["stableRevision"] == r1
    assert st.get("canaryWeight", 0) == 0
    assert st["validation"]["result"] == "Failed"
    assert st["validation"]["revision"] == r2
    accuracy = st["validation"]["metrics"][0]
    assert accuracy["name"] == "accuracy" and accuracy["value"] < accuracy["stableValue"]
    assert "accuracy 0.48 < min 0.7" in st["validation"]["message"]
    condition = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert condition["status"] == "True" and condition["reason"] == "ValidationFailed"
    assert deployments(cp, ns, NAME).get(r2, 0) == 0
    assert deployments(cp, ns, NAME)[r1] == 2
    # Events are posted after the status write that reports them.
    wait_for(
        "a ValidationFailed event naming accuracy",
        lambda: any(
            e["reason"] == "ValidationFailed" and "accuracy" in e["message"]
            for e in events(cp, ns, NAME)
        ),
    )

    # retry: a new request replaces the Job (an old result never answers a new request).
    control(cp, ns, NAME, "retry", "retry-1")
    first_uid = job2["metadata"]["uid"]

    def replaced() -> dict[str, Any] | None:
        job = job_of(cp, ns, r2)
        return job if job is not None and job["metadata"]["uid"] != first_uid else None

    wait_for("a new validation Job", replaced)
    wait_for("phase Validating again", lambda: in_phase(cp, ns, NAME, "Validating"))
    _, code = play_kubelet(cp, ns, r2, tmp_path)
    assert code == 1
    again = wait_for("phase Degraded again", lambda: in_phase(cp, ns, NAME, "Degraded"))
    assert again["validation"]["startedAt"] > st["validation"]["startedAt"]
    assert again["stableRevision"] == r1


def test_a_validation_that_times_out_is_an_error_not_a_pass(
    operator: Operator, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cp, ns = control_plane, namespace
    # The pod stays Running: nobody plays the kubelet here.
    good, _, validation = holdout_validation(tmp_path, 2)
    v1 = md(good, validation)
    apply(cp, ns, v1)

    st = wait_for("phase Degraded after the deadline", lambda: in_phase(cp, ns, NAME, "Degraded"))
    assert st["validation"]["result"] == "Error"
    assert st["validation"]["message"] == "validation timed out after 2s"
    assert not st.get("stableRevision")
    assert deployments(cp, ns, NAME).get(revision(v1), 0) == 0
