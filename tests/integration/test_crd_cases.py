"""tests/cases/ against the real kube-apiserver: every invalid manifest is refused, naming the
field path its header promises (`# apiserver:`), and every valid one is accepted.

The same files run offline in tests/unit/test_crd.py; this proves the CRD's schema and CEL
rules really refuse them where it matters, at admission.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.cases.manifests import Case, load_cases
from tests.testenv.controlplane import ControlPlane

INVALID = load_cases("invalid")
VALID = load_cases("valid")


def _dry_run(control_plane: ControlPlane, case: Case, namespace: str) -> tuple[int, str]:
    obj = copy.deepcopy(case.manifest)
    obj["metadata"]["namespace"] = namespace
    result = control_plane.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-",
        input=yaml.safe_dump(obj), check=False,
    )  # fmt: skip
    return result.returncode, " ".join((result.stdout + result.stderr).split())


@pytest.mark.cluster
@pytest.mark.parametrize("case", INVALID, ids=[c.id for c in INVALID])
def test_invalid_case_refused_by_apiserver(
    control_plane: ControlPlane, crd: str, namespace: str, case: Case
) -> None:
    code, out = _dry_run(control_plane, case, namespace)
    assert code != 0, f"accepted: {case.why}"
    # Structural errors read "<path>: Invalid value/Required value/...", unknown fields
    # 'unknown field "<path>"'; CEL errors "<path>: Invalid value: <message>".
    assert f"{case.apiserver}:" in out or f'unknown field "{case.apiserver}"' in out, out


@pytest.mark.cluster
@pytest.mark.parametrize("case", VALID, ids=[c.id for c in VALID])
def test_valid_case_accepted_by_apiserver(
    control_plane: ControlPlane, crd: str, namespace: str, case: Case
) -> None:
    code, out = _dry_run(control_plane, case, namespace)
    assert code == 0, out
