"""The generated CRD, judged by the real kube-apiserver: schema, CEL rules, explain, columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.testenv.controlplane import ControlPlane
from tests.testenv.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))


def _load(path: Path) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert len(docs) == 1, f"{path.name}: expected one document"
    doc: dict[str, Any] = docs[0]
    return doc


def _in_namespace(obj: dict[str, Any], namespace: str) -> str:
    obj = json.loads(json.dumps(obj))
    obj["metadata"]["namespace"] = namespace
    return yaml.safe_dump(obj)


def _served_version(control_plane: ControlPlane, crd: str) -> dict[str, Any]:
    crd_obj = json.loads(control_plane.kubectl("get", "crd", crd, "-o", "json").stdout)
    served: dict[str, Any] = next(v for v in crd_obj["spec"]["versions"] if v["storage"])
    return served


def test_crd_is_established_with_short_names(control_plane: ControlPlane, crd: str) -> None:
    got = json.loads(control_plane.kubectl("get", "crd", crd, "-o", "json").stdout)
    assert set(got["spec"]["names"]["shortNames"]) >= {"md"}
    resources = control_plane.kubectl("api-resources", "--api-group=modelrollout.io").stdout
    assert "modeldeployments" in resources


def test_examples_exist() -> None:
    assert EXAMPLES, "manifests/examples holds no example"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_accepted(
    control_plane: ControlPlane, crd: str, namespace: str, example: Path
) -> None:
    obj = _load(example)
    name = obj["metadata"]["name"]
    # Dry run first so a refusal names the field; then store it for real.
    control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=_in_namespace(obj, namespace)
    )
    control_plane.kubectl("apply", "-f", "-", input=_in_namespace(obj, namespace))
    stored = json.loads(
        control_plane.kubectl("get", "md", name, "-n", namespace, "-o", "json").stdout
    )
    assert stored["spec"]["model"] == {**stored["spec"]["model"], **obj["spec"]["model"]}


def test_explain_prints_our_descriptions(control_plane: ControlPlane, crd: str) -> None:
    version = _served_version(control_plane, crd)
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    strategy = spec["properties"]["strategy"]

    def explained() -> str | None:
        # The aggregated OpenAPI picks a new CRD up a moment after it is Established.
        out = control_plane.kubectl("explain", "modeldeployment.spec.strategy", check=False)
        return out.stdout if out.returncode == 0 else None

    text = " ".join(eventually(explained, "kubectl explain of the CRD").split())
    assert " ".join(strategy["description"].split()) in text
    for field, prop in strategy["properties"].items():
        assert field in text
        assert " ".join(prop["description"].split()) in text


def test_get_shows_printer_columns(control_plane: ControlPlane, crd: str, namespace: str) -> None:
    obj = _load(EXAMPLES[0])
    name = obj["metadata"]["name"]
    control_plane.kubectl("apply", "-f", "-", input=_in_namespace(obj, namespace))
    status = {
        "phase": "Progressing",
        "stableRevision": "abc123",
        "canaryRevision": "def456",
        "canaryWeight": 25,
        "currentStepIndex": 2,
        "message": "step 2: analysis running",
    }
    control_plane.kubectl(
        "patch", "md", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip
    columns = _served_version(control_plane, crd)["additionalPrinterColumns"]
    default = [c["name"].upper() for c in columns if not c.get("priority")]
    every = [c["name"].upper() for c in columns]
    assert {"PHASE", "STABLE", "CANARY", "WEIGHT", "STEP"} <= set(default)

    table = control_plane.kubectl("get", "md", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", *default]
    row = table[1].split()
    assert row[0] == name
    for value in ("Progressing", "abc123", "def456", "25", "2"):
        assert value in row[1:], value
    wide = control_plane.kubectl("get", "md", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", *every]
    assert str(obj["spec"]["model"]["version"]) in wide[1].split()
    assert "step 2: analysis running" in wide[1]
