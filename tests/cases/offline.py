"""An offline stand-in for the API server's CRD validation, for unit tests.

It applies the generated CRD's schema the way the API server does, in the same order:
defaults, then the structural schema (with strict field validation: unknown fields are errors),
then the CEL rules (x-kubernetes-validations, evaluated with cel-python). Field paths are
formatted as the API server formats them (list indices and map keys in brackets), so one case
file can state a single path for both this and the real API server.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import celpy
import jsonschema
from celpy import celtypes

Schema = dict[str, Any]
Issue = tuple[str, str]  # (field path, message)


# --- defaults ---------------------------------------------------------------------------------


def apply_defaults(schema: Schema, value: Any) -> Any:
    """A copy of `value` with the schema's defaults filled in, as the API server does."""
    value = copy.deepcopy(value)
    _default(schema, value)
    return value


def _default(schema: Schema, value: Any) -> None:
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                _default(prop, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for item in value.values():
                _default(extra, item)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default(schema["items"], item)


# --- paths ------------------------------------------------------------------------------------


def k8s_path(schema: Schema, parts: list[str | int]) -> str:
    """Format a path like the API server: spec.steps[1].pause, valueRanges[hour].min."""
    out = ""
    node: Schema | None = schema
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node.get("items") if node else None
            continue
        props = node.get("properties", {}) if node else {}
        if part in props or node is None or not isinstance(node.get("additionalProperties"), dict):
            out += f".{part}" if out else part
            node = props.get(part)
        else:
            out += f"[{part}]"
            node = node["additionalProperties"]
    return out


# --- structural schema ------------------------------------------------------------------------


def _closed(schema: Schema, *, root: bool = False) -> Schema:
    """Draft-4 JSON Schema that refuses unknown fields like strict field validation."""
    out: Schema = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {
                name: prop if (root and name == "metadata") else _closed(prop)
                for name, prop in value.items()
            }
        elif key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _closed(value)
        else:
            out[key] = value
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    if schema.get("type") == "object" and "additionalProperties" not in schema and not preserve:
        out["additionalProperties"] = False
    return out


def schema_issues(schema: Schema, obj: Any) -> list[Issue]:
    """Errors of the structural schema (bounds, enums, patterns, required, unknown fields)."""
    validator = jsonschema.Draft4Validator(_closed(schema, root=True))
    issues: list[Issue] = []
    for error in validator.iter_errors(obj):
        parts: list[str | int] = list(error.absolute_path)
        instance = error.instance
        if error.validator == "required" and isinstance(instance, dict):
            parts += [r for r in error.validator_value if r not in instance][:1]
        elif error.validator == "additionalProperties" and isinstance(instance, dict):
            known = set(error.schema.get("properties", {}))
            parts += sorted(k for k in instance if k not in known)[:1]
        issues.append((k8s_path(schema, parts), error.message))
    return issues


# --- CEL rules --------------------------------------------------------------------------------


def _is_sorted(values: celtypes.ListType) -> celtypes.BoolType:
    return celtypes.BoolType(all(a <= b for a, b in itertools.pairwise(values)))


# Kubernetes' CEL library functions that our rules use, beyond standard CEL.
K8S_FUNCTIONS = {"isSorted": _is_sorted}
_ENV = celpy.Environment()


def to_cel(schema: Schema, value: Any) -> Any:
    """Convert JSON to CEL values typed by the schema (number fields are doubles, as in k8s)."""
    kind = schema.get("type")
    if schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties"):
        return celpy.json_to_cel(value)
    if kind == "object" and isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return celtypes.MapType(
            {
                celtypes.StringType(k): to_cel(
                    props.get(k) or (extra if isinstance(extra, dict) else {}), v
                )
                for k, v in value.items()
            }
        )
    if kind == "array" and isinstance(value, list):
        return celtypes.ListType([to_cel(schema.get("items", {}), v) for v in value])
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return celtypes.DoubleType(float(value))
    return celpy.json_to_cel(value)


def rules(schema: Schema, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple, dict]]:
    """Every CEL rule of the schema with the (symbolic) path of the node carrying it."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule
    for name, prop in schema.get("properties", {}).items():
        yield from rules(prop, (*path, name))
    if "items" in schema:
        yield from rules(schema["items"], (*path, "[]"))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from rules(extra, (*path, "{}"))


def compile_rule(rule: str) -> celpy.Runner:
    """Compile one rule; raises on a syntax error."""
    return _ENV.program(_ENV.compile(rule), functions=K8S_FUNCTIONS)


def cel_issues(schema: Schema, obj: Any) -> list[Issue]:
    """Evaluate every CEL rule on every value it applies to (after defaulting)."""
    issues: list[Issue] = []
    _walk_cel(schema, obj, [], schema, issues)
    return issues


def _walk_cel(
    schema: Schema, value: Any, parts: list[str | int], root: Schema, out: list[Issue]
) -> None:
    for rule in schema.get("x-kubernetes-validations", []):
        try:
            result = compile_rule(rule["rule"]).evaluate({"self": to_cel(schema, value)})
            if isinstance(result, celpy.CELEvalError):
                raise result
            ok = isinstance(result, celtypes.BoolType) and bool(result)
            message = rule["message"]
        except celpy.CELEvalError as exc:  # the API server reports evaluation errors too
            ok, message = False, f"evaluation error: {exc}"
        if not ok:
            field = [p for p in rule.get("fieldPath", "").split(".") if p]
            out.append((k8s_path(root, [*parts, *field]), message))
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name in value:
                _walk_cel(prop, value[name], [*parts, name], root, out)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                _walk_cel(extra, item, [*parts, key], root, out)
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _walk_cel(schema["items"], item, [*parts, i], root, out)


def validate(schema: Schema, obj: Any) -> tuple[list[Issue], list[Issue]]:
    """(schema issues, CEL issues) for one object, in the API server's order: defaults first;
    CEL rules only run when the structural schema passed (as the API server does)."""
    defaulted = apply_defaults(schema, obj)
    structural = schema_issues(schema, defaulted)
    if structural:
        return structural, []
    return [], cel_issues(schema, defaulted)
