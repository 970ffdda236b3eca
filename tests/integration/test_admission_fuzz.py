"""Admission agreement: generated ModelDeployments sent to the real kube-apiserver (the CRD's
schema and CEL rules, server-side dry run) and to the pydantic models get the same verdict, and
every refusal names the field.

MODELROLLOUT_ADMISSION_EXAMPLES sets how many (default 2,000, about 20 s); the default run is
derandomized (the same specs every time, as CI needs); MODELROLLOUT_ADMISSION_RANDOM=1 searches
afresh.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modelrollout.api import ModelDeployment, field_issues
from modelrollout.kube import MODELDEPLOYMENTS, Kube, KubeError, make_api_client
from tests.unit.test_api_cel_agreement import manifests

pytestmark = pytest.mark.cluster

EXAMPLES = int(os.environ.get("MODELROLLOUT_ADMISSION_EXAMPLES", "2000"))


def mostly(
    valid: st.SearchStrategy[Any], anything: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Valid values three times as often as anything, so that both verdicts occur often."""
    return st.one_of(valid, valid, valid, anything)


# Top-level and model fields with values on both sides of their bounds and formats.
spec_fields = st.fixed_dictionaries(
    {},
    optional={
        "replicas": mostly(st.integers(0, 10), st.integers(-2, 1200)),
        "progressDeadlineSeconds": mostly(
            st.integers(1, 3600), st.one_of(st.integers(-5, 100000), st.just("60"))
        ),
        "revisionHistoryLimit": mostly(st.integers(0, 10), st.integers(-1, 60)),
        "rollbackWindow": mostly(
            st.sampled_from(["30s", "1h30m", "10"]), st.sampled_from(["", "soon", "-5s"])
        ),
        "paused": mostly(st.booleans(), st.sampled_from(["true", 1])),
    },
)
model_fields = st.fixed_dictionaries(
    {},
    optional={
        "name": mostly(st.just("fraud"), st.sampled_from(["", "Fraud_Detector", "f" * 300])),
        "version": mostly(st.just("7"), st.sampled_from(["", "v" * 80])),
        "uri": mostly(
            st.sampled_from(["s3://b/m.skops", "file:///m", "pvc://claim/m", "https://h/m"]),
            st.sampled_from(["m.skops", "", "gs://b"]),
        ),
        "sha256": mostly(st.just("a" * 64), st.sampled_from(["A" * 64, "abc", "g" * 64])),
        "trustedTypes": st.lists(st.sampled_from(["sklearn.tree._tree.Tree", ""]), max_size=2),
    },
)


@st.composite
def generated(draw: st.DrawFn) -> dict[str, Any]:
    obj = copy.deepcopy(draw(manifests()))
    obj["spec"].update(draw(spec_fields))
    obj["spec"]["model"].update(draw(model_fields))
    return obj


def models_verdict(obj: dict[str, Any]) -> list[str]:
    """The field paths the pydantic models refuse (empty: accepted)."""
    try:
        ModelDeployment.model_validate(obj)
    except ValidationError as error:
        return [issue.path for issue in field_issues(error)]
    return []


def server_verdict(kube: Kube, namespace: str, obj: dict[str, Any]) -> str | None:
    """The API server's refusal (None: accepted), by a server-side dry run that stores nothing."""
    try:
        kube.request(
            "POST",
            MODELDEPLOYMENTS.path(namespace),
            query={"dryRun": "All", "fieldValidation": "Strict"},
            body=obj,
        )
    except KubeError as error:
        return error.message
    return None


def test_the_api_server_and_the_models_agree_on_generated_specs(
    crd: str, namespace: str, kubeconfig: Path
) -> None:
    api = make_api_client(str(kubeconfig))
    kube = Kube(api)
    seen = {"accepted": 0, "refused": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not os.environ.get("MODELROLLOUT_ADMISSION_RANDOM"),
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(generated())
    def agree(obj: dict[str, Any]) -> None:
        refused_at = models_verdict(obj)
        server = server_verdict(kube, namespace, obj)
        assert bool(refused_at) == (server is not None), (
            f"models refuse {refused_at}, API server says {server!r}"
        )
        if server is not None:
            seen["refused"] += 1
            assert "spec." in server, f"the API server's refusal names no field: {server}"
            assert all(path.startswith("spec") for path in refused_at), refused_at
        else:
            seen["accepted"] += 1

    try:
        agree()
    finally:
        api.close()
    # Both verdicts occur often enough for the agreement to mean something (about 1 in 10 specs
    # is accepted: most carry at least one value out of bounds).
    assert min(seen.values()) >= EXAMPLES // 20, seen
