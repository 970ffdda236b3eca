"""The validation Job (pure): its manifest, and reading its result back into status.

The validator (modelrollout-validate) reports through its pod's termination message, a compact
JSON summary; FallbackToLogsOnError puts the log's tail there when it crashed before writing one.
Anything but a well-formed summary from a container that exited as the summary says is an
error, never a pass: a timeout, a failed Job, a missing pod, unreadable output.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from modelrollout.api import (
    ModelDeploymentSpec,
    ModelSpec,
    ValidationMetricResult,
    ValidationResult,
    ValidationStatus,
)
from modelrollout.api.names import (
    HOLDOUT_JOB_LABEL,
    MANAGED_BY,
    NAME_LABEL,
    REQUESTED_AT_ANNOTATION,
)
from modelrollout.core.children import PVC_ROOT, SERVER_CONTAINER, OwnerRef
from modelrollout.core.pod_trouble import pod_trouble

SPEC_ENV = "MODELROLLOUT_VALIDATION_SPEC"
CONTAINER = "validator"
TERMINATION_PATH = "/dev/termination-log"
SUMMARY_VERSION = 1
_MAX_NAME = 63
_MAX_MESSAGE = 1024
# Pod-level settings of spec.template the validator shares with the model server (identity,
# registry and placement), so it can read the same artifacts the server reads.
_POD_FIELDS = ("serviceAccountName", "imagePullSecrets", "nodeSelector", "tolerations", "affinity")


def job_name(name: str, revision: str) -> str:
    suffix = f"-validate-{revision}"
    return name[: _MAX_NAME - len(suffix)] + suffix


def validator_input(spec: ModelDeploymentSpec, stable: ModelSpec | None) -> dict[str, Any]:
    """What modelrollout-validate reads: spec.validation's fields + candidate + stable (wire)."""
    if spec.validation is None:
        raise ValueError("spec.validation is not set")
    body = spec.validation.to_wire()
    body["candidate"] = spec.model.to_wire()
    if stable is not None:
        body["stable"] = stable.to_wire()
    return body


def _pvc_claims(uris: list[str]) -> list[str]:
    claims = []
    for uri in uris:
        if uri.startswith("pvc://"):
            claim = uri[len("pvc://") :].lstrip("/").split("/", 1)[0]
            if claim and claim not in claims:
                claims.append(claim)
    return claims


def _template_parts(spec: ModelDeploymentSpec) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """(pod fields, env, envFrom) taken from spec.template; our own variables are not copied."""
    template = spec.template or {}
    pod_spec = template.get("spec") or {}
    pod = {k: pod_spec[k] for k in _POD_FIELDS if k in pod_spec}
    server: dict[str, Any] = next(
        (c for c in pod_spec.get("containers") or [] if c.get("name") == SERVER_CONTAINER), {}
    )
    env = [
        e for e in server.get("env") or [] if not str(e.get("name", "")).startswith("MODELROLLOUT_")
    ]
    return pod, env, list(server.get("envFrom") or [])


def job_manifest(
    owner: OwnerRef,
    namespace: str,
    spec: ModelDeploymentSpec,
    revision: str,
    stable: ModelSpec | None,
    requested_at: datetime,
    image: str,
) -> dict[str, Any]:
    """The Job that validates `revision` (spec.model) against `stable` on the holdout set."""
    assert spec.validation is not None, "only called when spec.validation is set"
    body = validator_input(spec, stable)
    labels = {**MANAGED_BY, NAME_LABEL: owner.name, HOLDOUT_JOB_LABEL: revision}
    pod_fields, env, env_from = _template_parts(spec)
    uris = [spec.model.uri, spec.validation.dataset.uri, *([stable.uri] if stable else [])]
    claims = _pvc_claims(uris)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "command": ["modelrollout-validate"],
        "args": ["--spec-env", SPEC_ENV, "--termination-log", TERMINATION_PATH],
        "env": [
            {"name": SPEC_ENV, "value": json.dumps(body, separators=(",", ":"), sort_keys=True)},
            {"name": "MODELROLLOUT_PVC_ROOT", "value": PVC_ROOT},
            *env,
        ],
        "terminationMessagePath": TERMINATION_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        # The root filesystem is read-only: libraries that need scratch space get /tmp.
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            *(
                {"name": f"pvc-{i}", "mountPath": f"{PVC_ROOT}/{c}", "readOnly": True}
                for i, c in enumerate(claims)
            ),
        ],
    }
    if env_from:
        container["envFrom"] = env_from
    pod_spec: dict[str, Any] = {
        **pod_fields,
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            *(
                {"name": f"pvc-{i}", "persistentVolumeClaim": {"claimName": c, "readOnly": True}}
                for i, c in enumerate(claims)
            ),
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(owner.name, revision),
            "namespace": namespace,
            "labels": labels,
            "annotations": {REQUESTED_AT_ANNOTATION: requested_at.isoformat()},
            "ownerReferences": [owner.manifest()],
        },
        "spec": {
            # One attempt: a failed validation is a verdict, not a flake to retry.
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.validation.timeout_seconds,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def requested_at(job: dict[str, Any]) -> datetime | None:
    raw = ((job.get("metadata") or {}).get("annotations") or {}).get(REQUESTED_AT_ANNOTATION)
    try:
        return datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _conditions(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    items = (job.get("status") or {}).get("conditions") or []
    return {c.get("type", ""): c for c in items if c.get("status") == "True"}


def _timestamp(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def _terminated(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The validator container's terminated state in the newest pod that has one."""
    newest = sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    for pod in reversed(newest):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") == CONTAINER and (cs.get("state") or {}).get("terminated"):
                state: dict[str, Any] = cs["state"]["terminated"]
                return state
    return None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def parse_summary(text: str) -> dict[str, Any] | None:
    """The validator's summary, or None when the text is not one (e.g. the log's tail)."""
    try:
        body = json.loads(text)
    except (ValueError, TypeError):
        return None
    if not isinstance(body, dict) or body.get("v") != SUMMARY_VERSION:
        return None
    if body.get("result") not in ("passed", "failed", "error"):
        return None
    return body


_EXIT_CODES = {"passed": 0, "failed": 1, "error": 2}


def _number(x: Any) -> float | None:
    # The message is read from a pod: anything odd in it must not break the status write.
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def validation_status(
    job: dict[str, Any], pods: list[dict[str, Any]], revision: str
) -> ValidationStatus:
    """What the Job says about `revision`: Running, Passed, Failed or Error (never guessed)."""
    started = requested_at(job) or _timestamp((job.get("metadata") or {}).get("creationTimestamp"))
    conditions = _conditions(job)
    completed = _timestamp((job.get("status") or {}).get("completionTime"))

    def status(result: ValidationResult, message: str, **extra: Any) -> ValidationStatus:
        return ValidationStatus(
            revision=revision,
            result=result,
            message=_short(message),
            started_at=started,
            completed_at=extra.pop("completed_at", completed),
            **extra,
        )

    failed = conditions.get("Failed") or conditions.get("FailureTarget")
    if failed is not None and failed.get("reason") == "DeadlineExceeded":
        timeout = (job.get("spec") or {}).get("activeDeadlineSeconds")
        return status(ValidationResult.ERROR, f"validation timed out after {timeout}s")
    term = _terminated(pods)
    if term is not None:
        finished = _timestamp(term.get("finishedAt")) or completed
        text = str(term.get("message") or "")
        summary = parse_summary(text)
        code = term.get("exitCode")
        if summary is None:
            why = f"validator exited with code {code}"
            tail = _short(text).rsplit(" | ", 1)[-1] if text.strip() else term.get("reason", "")
            return status(
                ValidationResult.ERROR, f"{why}: {tail}" if tail else why, completed_at=finished
            )
        result = summary["result"]
        if code != _EXIT_CODES[result]:
            return status(
                ValidationResult.ERROR,
                f"validator reported {result} but exited with code {code}",
                completed_at=finished,
            )
        metrics = [
            ValidationMetricResult(
                name=str(m[0])[:64],
                value=_number(m[1]),
                stable_value=_number(m[2]),
                passed=m[3] is True,
            )
            for m in (summary.get("metrics") or [])[:16]
            if isinstance(m, list) and len(m) == 4
        ]
        by_result = {
            "passed": ValidationResult.PASSED,
            "failed": ValidationResult.FAILED,
            "error": ValidationResult.ERROR,
        }
        rows = summary.get("rows")
        return status(
            by_result[result],
            str(summary.get("message") or result),
            metrics=metrics,
            rows=rows if isinstance(rows, int) and rows >= 0 else None,
            completed_at=finished,
        )
    if failed is not None:
        why = failed.get("message") or failed.get("reason") or "the Job failed"
        return status(ValidationResult.ERROR, f"validation Job failed: {why}")
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        return status(ValidationResult.ERROR, "validation Job completed without a result")
    trouble = pod_trouble(pods, CONTAINER)
    message = f"validator waiting: {trouble.reason}" if trouble else "validator running"
    return status(ValidationResult.RUNNING, message, completed_at=None)
