"""Generate the ModelDeployment CRD from the pydantic models.

    python -m modelrollout.api.crd --write   # (re)write the checked-in YAML files
    python -m modelrollout.api.crd --check   # exit 1 with a diff when they are out of date
    python -m modelrollout.api.crd           # print the CRD

The pydantic JSON schema is turned into a structural OpenAPI v3 schema: $refs inlined, the
null branch of optionals dropped, JSON-Schema-only keywords rewritten or removed. Cross-field
rules travel as `x-kubernetes-validations` (CEL) from each model's json_schema_extra.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from modelrollout.api.names import (
    CATEGORIES,
    GROUP,
    KIND,
    LIST_KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
)
from modelrollout.api.resource import MAX_NAME_LENGTH
from modelrollout.api.spec import ModelDeploymentSpec
from modelrollout.api.status import ModelDeploymentStatus

CRD_FILENAME = f"{GROUP}_{PLURAL}.yaml"
CRD_PATHS = (
    Path("manifests/crds") / CRD_FILENAME,
    Path("charts/modelrollout/crds") / CRD_FILENAME,
)
HEADER = (
    "# Generated from the pydantic models in modelrollout.api: do not edit.\n"
    "# Regenerate with `make crds` (python -m modelrollout.api.crd --write).\n"
)

# Keywords of pydantic's JSON Schema that a Kubernetes structural schema does not accept.
_DROPPED = {"title", "examples", "$defs", "additionalProperties", "const", "$ref", "anyOf"}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stableRevision"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canaryRevision"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
    {"name": "Step", "type": "integer", "jsonPath": ".status.currentStepIndex"},
    {"name": "Version", "type": "string", "jsonPath": ".spec.model.version", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


class SchemaError(ValueError):
    """The models produce a schema that cannot be made structural."""


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline $refs and unwrap optionals (anyOf [X, null]) recursively."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").rsplit("/", 1)[-1]])
        # Keys next to the $ref (the field's own description, default) win over the type's.
        node = {**target, **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**_resolve(node.pop("allOf")[0], defs), **node}
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b != {"type": "null"}]
        if len(branches) != 1:
            raise SchemaError(f"anyOf with {len(branches)} non-null branches: {branches}")
        node = {**_resolve(branches[0], defs), **node}
        if node.get("default", 0) is None:
            del node["default"]
    return {
        key: _resolve(value, defs) if key != "default" else value for key, value in node.items()
    }


def _structural(node: dict[str, Any], *, keep_defaults: bool) -> dict[str, Any]:
    """Rewrite one resolved JSON Schema node into Kubernetes' OpenAPI v3 dialect."""
    out: dict[str, Any] = {}
    if "const" in node:
        out["enum"] = [node["const"]]
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "default" and (not keep_defaults or value is None):
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
            continue
        if key == "properties":
            out[key] = {
                name: _structural(prop, keep_defaults=keep_defaults) for name, prop in value.items()
            }
            continue
        if key == "x-kubernetes-validations":
            out[key] = [_rule_order(rule) for rule in value]
            continue
        if key == "items":
            out[key] = _structural(value, keep_defaults=keep_defaults)
            continue
        out[key] = value
    extra = node.get("additionalProperties")
    if extra is True or (node.get("type") == "object" and "properties" not in node and not extra):
        if extra is True:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(extra, dict):
        out["additionalProperties"] = _structural(extra, keep_defaults=keep_defaults)
    if "type" not in out:
        raise SchemaError(f"schema node without a type: {node}")
    return _ordered(out)


_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "maxProperties",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
)


def _rule_order(rule: dict[str, str]) -> dict[str, str]:
    keys = ("rule", "message", "fieldPath", "reason")
    return {key: rule[key] for key in keys if key in rule}


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    rank = {key: i for i, key in enumerate(_KEY_ORDER)}
    return dict(sorted(node.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def openapi_schema(model: type[BaseModel], *, keep_defaults: bool = True) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one model (no $ref, no anyOf)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(_resolve(raw, defs), keep_defaults=keep_defaults)


def resource_schema() -> dict[str, Any]:
    """The openAPIV3Schema of the whole ModelDeployment object."""
    spec = openapi_schema(ModelDeploymentSpec)
    # Status is written by the operator only: defaults there would just add noise.
    status = openapi_schema(ModelDeploymentStatus, keep_defaults=False)
    return {
        "description": (
            "A machine-learning model served on Kubernetes and rolled out progressively "
            "(canary or blue/green) when spec.model changes, judged from Prometheus metrics."
        ),
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion of this representation of the object.",
                "type": "string",
            },
            "kind": {"description": "Kind of this object: ModelDeployment.", "type": "string"},
            # Only name and generateName may be constrained in a CRD's metadata schema.
            "metadata": {
                "type": "object",
                "properties": {
                    # Children are named <name>-<revision>: keep them DNS labels.
                    "name": {"type": "string", "maxLength": MAX_NAME_LENGTH},
                },
            },
            "spec": spec,
            "status": status,
        },
    }


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "modelrollout"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": LIST_KIND,
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": resource_schema()},
                }
            ],
        },
    }


def render() -> str:
    """The CRD as YAML text, exactly as checked in."""
    body = yaml.safe_dump(build_crd(), sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def _diff(path: Path, expected: str) -> str:
    current = path.read_text() if path.exists() else ""
    if current == expected:
        return ""
    return (
        "".join(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                fromfile=f"{path} (checked in)",
                tofile=f"{path} (generated)",
            )
        )
        or f"{path}: differs\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelrollout.api.crd", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the CRD files")
    mode.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    args = parser.parse_args(argv)
    text = render()
    if not (args.write or args.check):
        sys.stdout.write(text)
        return 0
    stale = 0
    for rel in CRD_PATHS:
        path = args.root / rel
        diff = _diff(path, text)
        if not diff:
            continue
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {rel}")
        else:
            sys.stdout.write(diff)
            stale += 1
    if stale:
        print(f"{stale} CRD file(s) out of date: run `make crds`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
