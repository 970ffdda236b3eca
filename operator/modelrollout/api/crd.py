"""The ModelDeployment CRD, generated from the pydantic models (pure: no files).

scripts/render_crds.py writes it into the repository (`make crds`).

The pydantic JSON schema is turned into a structural OpenAPI v3 schema: $refs inlined, the
null branch of optionals dropped, JSON-Schema-only keywords rewritten or removed. Cross-field
rules travel as `x-kubernetes-validations` (CEL) from each model's json_schema_extra.
"""

from __future__ import annotations

import copy
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

HEADER = (
    "# Generated from the pydantic models in modelrollout.api: do not edit.\n"
    "# Regenerate with `make crds` (python scripts/render_crds.py).\n"
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
