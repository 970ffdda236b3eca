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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelrollout.api import ModelDeploymentSpec
from modelrollout.core.revision import compute_revision
from modelrollout.core.validation_job import SPEC_ENV
from tests.integration.operator_process import (
    Operator,
    apply,
    control,
    deployments,
    events,
    kubectl_json,
    settled_on,
    status,
    wait_for,
)
from tests.testenv.controlplane import ControlPlane
from tests.unit import validation_samples as samples

NAME = "fraud"
VALIDATE = Path(sys.executable).parent / "modelrollout-validate"


@pytest.fixture
def operator(
    crd: str, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[Operator]:
    op = Operator(control_plane, namespace, tmp_path).start()
    try:
        yield op
    finally:
        op.stop()
        print(op.log()[-20000:])  # shown by pytest when the test failed


def md(model: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME},
        "spec": {
            "model": model,
            "replicas": 2,
            "validation": validation,
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "1s"}}]}},
        },
    }


def revision(manifest: dict[str, Any]) -> str:
    return compute_revision(ModelDeploymentSpec.model_validate(manifest["spec"]))


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
    good, bad = samples.classifiers(tmp_path)
    spec = samples.classification_input(tmp_path, good, None)
    validation = {k: spec[k] for k in ("dataset", "target", "metrics", "dataChecks")}
    validation["timeoutSeconds"] = 300

    # First deployment: validated on its own (no stable to compare with), then deployed.
    v1 = md(good, validation)
    r1 = revision(v1)
    apply(cp, ns, v1)
    wait_for("phase Validating", lambda: status(cp, ns, NAME).get("phase") == "Validating")
    job, code = play_kubelet(cp, ns, r1, tmp_path)
    assert code == 0
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 300
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"

    def healthy_on(rev: str) -> dict[str, Any] | None:
        st = status(cp, ns, NAME)
        return st if settled_on(st, rev) else None

    st = wait_for("first revision Healthy", lambda: healthy_on(r1))
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
    assert status(cp, ns, NAME)["phase"] == "Validating"
    _, code = play_kubelet(cp, ns, r2, tmp_path)
    assert code == 1

    def degraded() -> dict[str, Any] | None:
        st = status(cp, ns, NAME)
        return st if st.get("phase") == "Degraded" else None

    st = wait_for("phase Degraded", degraded)
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
    warnings = [e for e in events(cp, ns, NAME) if e["reason"] == "ValidationFailed"]
    assert warnings and "accuracy" in warnings[0]["message"]

    # retry: a new request replaces the Job (an old result never answers a new request).
    control(cp, ns, NAME, "retry", "retry-1")
    first_uid = job2["metadata"]["uid"]

    def replaced() -> dict[str, Any] | None:
        job = job_of(cp, ns, r2)
        return job if job is not None and job["metadata"]["uid"] != first_uid else None

    wait_for("a new validation Job", replaced)
    wait_for("phase Validating again", lambda: status(cp, ns, NAME).get("phase") == "Validating")
    _, code = play_kubelet(cp, ns, r2, tmp_path)
    assert code == 1
    again = wait_for("phase Degraded again", degraded)
    assert again["validation"]["startedAt"] > st["validation"]["startedAt"]
    assert again["stableRevision"] == r1


def test_a_validation_that_times_out_is_an_error_not_a_pass(
    operator: Operator, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cp, ns = control_plane, namespace
    good, _ = samples.classifiers(tmp_path)
    spec = samples.classification_input(tmp_path, good, None)
    validation = {k: spec[k] for k in ("dataset", "target", "metrics")}
    validation["timeoutSeconds"] = 2  # the pod stays Running: nobody plays the kubelet here
    v1 = md(good, validation)
    apply(cp, ns, v1)

    def degraded() -> dict[str, Any] | None:
        st = status(cp, ns, NAME)
        return st if st.get("phase") == "Degraded" else None

    st = wait_for("phase Degraded after the deadline", degraded)
    assert st["validation"]["result"] == "Error"
    assert st["validation"]["message"] == "validation timed out after 2s"
    assert not st.get("stableRevision")
    assert deployments(cp, ns, NAME).get(revision(v1), 0) == 0
