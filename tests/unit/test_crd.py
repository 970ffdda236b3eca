"""The generated CRD: in sync with the models, structural, and refusing what the models refuse.

Offline stand-in for the API server: tests/cases/offline.py (jsonschema for the structural
schema, cel-python for the CEL rules). The real API server runs the same cases in the
control-plane tests.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelrollout.api import ModelDeployment, field_issues
from modelrollout.api import crd as crd_module
from tests.cases import offline
from tests.cases.manifests import LAYERS, Case, load_cases

ROOT = Path(__file__).parents[2]


def _script(name: str) -> ModuleType:
    """A module of scripts/ (not a package: the scripts run as files)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_crds = _script("render_crds")
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
INVALID = load_cases("invalid")
VALID = load_cases("valid")
CRD = crd_module.build_crd()
VERSION = CRD["spec"]["versions"][0]
SCHEMA: dict[str, Any] = VERSION["schema"]["openAPIV3Schema"]


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, prop in schema.get("properties", {}).items():
        yield from nodes(prop, f"{path}.{name}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


# --- generation -------------------------------------------------------------------------------


def test_checked_in_crds_are_in_sync() -> None:
    for rel in render_crds.CRD_PATHS:
        assert (ROOT / rel).read_text() == crd_module.render(), f"{rel} is stale: run make crds"


def test_check_reports_stale_files_and_write_fixes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render_crds.main(["--check", "--root", str(tmp_path)]) == 1
    assert render_crds.main(["--root", str(tmp_path)]) == 0
    assert render_crds.main(["--check", "--root", str(tmp_path)]) == 0
    target = tmp_path / render_crds.CRD_PATHS[0]
    target.write_text(target.read_text().replace("maxItems: 32", "maxItems: 33"))
    capsys.readouterr()
    assert render_crds.main(["--check", "--root", str(tmp_path)]) == 1
    diff = capsys.readouterr().out
    assert "-" in diff and "maxItems: 33" in diff and "maxItems: 32" in diff


def test_crd_identity() -> None:
    assert CRD["metadata"]["name"] == "modeldeployments.modelrollout.io"
    names = CRD["spec"]["names"]
    assert names["kind"] == "ModelDeployment" and names["plural"] == "modeldeployments"
    assert names["shortNames"] == ["md", "mdep"]
    assert "modelrollout" in names["categories"]
    assert CRD["spec"]["scope"] == "Namespaced"
    assert VERSION["name"] == "v1alpha1" and VERSION["served"] and VERSION["storage"]
    assert VERSION["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = {c["name"]: c for c in VERSION["additionalPrinterColumns"]}
    default = [c["name"] for c in VERSION["additionalPrinterColumns"] if not c.get("priority")]
    assert default == ["Phase", "Stable", "Canary", "Weight", "Step", "Age"]
    assert columns["Phase"]["jsonPath"] == ".status.phase"
    assert columns["Weight"]["jsonPath"] == ".status.canaryWeight"
    assert columns["Step"]["jsonPath"] == ".status.currentStepIndex"
    assert columns["Age"]["type"] == "date"


# --- structural schema ------------------------------------------------------------------------


FORBIDDEN_KEYS = {"$ref", "anyOf", "allOf", "oneOf", "const", "title", "examples", "$defs"}


def test_schema_is_structural() -> None:
    for path, node in nodes(SCHEMA):
        assert not FORBIDDEN_KEYS & node.keys(), path
        assert "type" in node, f"{path}: no type"
        if node["type"] == "object" and "properties" in node:
            assert node.get("additionalProperties") in (None,), f"{path}: properties + additional"
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True and "minimum" in node, path


def test_every_field_has_a_description() -> None:
    missing = [
        path
        for path, node in nodes(SCHEMA)
        if path.count(".") >= 2 and not path.endswith(("[]", "{}")) and "description" not in node
    ]
    assert [p for p in missing if not p.startswith(".metadata")] == []


def test_cel_cost_is_bounded() -> None:
    """The API server refuses CRDs whose rules have an unbounded estimated cost: every list
    has maxItems, every map maxProperties, every string a maxLength (or an enum)."""
    for path, node in nodes(SCHEMA["properties"]["spec"], ".spec"):
        kind = node["type"]
        if kind == "array":
            assert "maxItems" in node, path
        if kind == "object" and isinstance(node.get("additionalProperties"), dict):
            assert "maxProperties" in node, path
        if kind == "string":
            assert "maxLength" in node or "enum" in node, path


def test_durations_carry_the_pattern() -> None:
    for path in (".spec.analysis.interval", ".spec.rollbackWindow"):
        node = dict(nodes(SCHEMA))[path]
        assert (
            node["pattern"] == crd_module.DURATION_PATTERN
            if hasattr(crd_module, "DURATION_PATTERN")
            else node["pattern"]
        )


def test_template_is_free_form() -> None:
    template = SCHEMA["properties"]["spec"]["properties"]["template"]
    assert template == {
        "description": template["description"],
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_cel_rules_compile_and_field_paths_exist() -> None:
    all_paths = {path for path, _ in nodes(SCHEMA)}
    count = 0
    for where, rule in offline.rules(SCHEMA):
        offline.compile_rule(rule["rule"])
        assert rule["message"], rule
        if "fieldPath" in rule:
            base = "".join(f".{p}" if p not in ("[]", "{}") else p for p in where)
            assert base + rule["fieldPath"] in all_paths, rule
        count += 1
    assert count >= 20


# --- examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_example_is_valid(example: Path) -> None:
    obj = yaml.safe_load(example.read_text())
    assert offline.validate(SCHEMA, obj) == ([], [])
    ModelDeployment.model_validate(obj)


def test_all_examples_present() -> None:
    assert {e.stem for e in EXAMPLES} >= {
        "canary-replicas",
        "canary-gateway-api",
        "canary-manual-gate",
        "bluegreen",
        "canary-custom-promql",
        "validation-gate",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_crd_defaults_equal_model_defaults(example: Path) -> None:
    """What the API server stores (defaults applied) parses to the same spec as the manifest."""
    obj = yaml.safe_load(example.read_text())
    defaulted = offline.apply_defaults(SCHEMA, obj)
    assert defaulted != obj  # the schema does carry defaults
    assert ModelDeployment.model_validate(defaulted) == ModelDeployment.model_validate(obj)
    wire = ModelDeployment.model_validate(obj).to_wire()
    assert offline.apply_defaults(SCHEMA, wire) == wire  # nothing the models leave out


# --- invalid and valid cases ------------------------------------------------------------------


def test_enough_invalid_cases() -> None:
    assert len(INVALID) >= 25
    assert {c.layer for c in INVALID} == set(LAYERS)


@pytest.mark.parametrize("case", INVALID, ids=[c.id for c in INVALID])
def test_invalid_case(case: Case) -> None:
    assert case.expect and case.apiserver and case.layer in LAYERS, "bad case header"
    with pytest.raises(ValidationError) as info:
        ModelDeployment.model_validate(case.manifest)
    assert case.expect in [i.path for i in field_issues(info.value)]
    structural, cel = offline.validate(SCHEMA, case.manifest)
    if case.layer == "schema":
        assert case.apiserver in [path for path, _ in structural], structural
    else:
        assert structural == [], "a cel case must pass the structural schema"
        assert case.apiserver in [path for path, _ in cel], cel


@pytest.mark.parametrize("case", VALID, ids=[c.id for c in VALID])
def test_valid_case(case: Case) -> None:
    ModelDeployment.model_validate(case.manifest)
    assert offline.validate(SCHEMA, case.manifest) == ([], [])


def test_every_spec_cel_rule_refuses_some_case() -> None:
    spec_rules = {
        rule["message"] for where, rule in offline.rules(SCHEMA) if where[:1] == ("spec",)
    }
    refused = {
        message
        for case in INVALID
        if case.layer == "cel"
        for _, message in offline.validate(SCHEMA, case.manifest)[1]
    }
    assert spec_rules - refused == set()


def test_offline_checker_refuses_unknown_fields_and_accepts_maps() -> None:
    obj = copy.deepcopy(VALID[0].manifest)
    obj["spec"]["surprise"] = 1
    assert offline.validate(SCHEMA, obj)[0][0][0] == "spec.surprise"
