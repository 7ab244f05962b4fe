"""JSON Schema, the part that tool arguments and structured answers use.

    problems(instance, schema)   -> ["$.city: expected string, got number", ...]  ([] if valid)
    check_schema(schema, where)  -> ConfigError naming `where` unless the schema is usable

Checked keywords: type, enum, const, properties, required, additionalProperties, items,
prefixItems, anyOf, oneOf, allOf, local $ref (#/$defs/..., #/definitions/...), minimum,
maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength, minItems, maxItems. Others
(format, pattern, ...) are accepted and not checked: a backend with constrained decoding
enforces them, and for the rest this is a check of the answer's shape, not a full validator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from moa.errors import ConfigError

__all__ = ["MAX_SCHEMA_DEPTH", "TYPES", "check_schema", "problems"]

TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
MAX_SCHEMA_DEPTH = 32
_MAX_PROBLEMS = 5


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is(value: Any, kind: str) -> bool:
    actual = _type_of(value)
    return actual == kind or (kind == "number" and actual == "integer")


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        node = (
            node.get(part.replace("~1", "/").replace("~0", "~"))
            if isinstance(node, Mapping)
            else None
        )
    return node if isinstance(node, Mapping) else None


def problems(instance: Any, schema: Mapping[str, Any] | bool) -> list[str]:
    """What makes `instance` invalid against `schema` (at most a few, each with its path)."""
    out: list[str] = []
    root = schema if isinstance(schema, Mapping) else {}
    _check(instance, schema, root, "$", out, 0)
    return out[:_MAX_PROBLEMS]


def _check(
    value: Any, schema: Any, root: Mapping[str, Any], path: str, out: list[str], depth: int
) -> None:
    if len(out) >= _MAX_PROBLEMS or depth > MAX_SCHEMA_DEPTH:
        return
    if schema is False:
        out.append(f"{path}: no value is allowed here")
        return
    if not isinstance(schema, Mapping):
        return
    if isinstance(ref := schema.get("$ref"), str):
        target = _resolve(ref, root)
        if target is not None:
            _check(value, target, root, path, out, depth + 1)
    kinds = schema.get("type")
    if isinstance(kinds, str):
        kinds = [kinds]
    if isinstance(kinds, list) and kinds and not any(_is(value, k) for k in kinds):
        out.append(f"{path}: expected {' or '.join(map(str, kinds))}, got {_type_of(value)}")
        return
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: expected {schema['const']!r}")
    if isinstance(schema.get("enum"), list) and value not in schema["enum"]:
        out.append(f"{path}: expected one of {schema['enum']!r}, got {value!r}")
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            fits = sum(1 for o in options if not problems_at(value, o, root, depth))
            if fits == 0 or (key == "oneOf" and fits > 1):
                out.append(f"{path}: matches {fits} of the {key} options")
    for part in schema.get("allOf") or ():
        _check(value, part, root, path, out, depth + 1)
    if isinstance(value, dict):
        _object(value, schema, root, path, out, depth)
    elif isinstance(value, list):
        _array(value, schema, root, path, out, depth)
    elif isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            out.append(f"{path}: shorter than {schema['minLength']} characters")
        if isinstance(most := schema.get("maxLength"), int) and len(value) > most:
            out.append(f"{path}: longer than {most} characters")
    elif _type_of(value) in ("integer", "number"):
        _number(float(value), schema, path, out)


def problems_at(value: Any, schema: Any, root: Mapping[str, Any], depth: int) -> list[str]:
    found: list[str] = []
    _check(value, schema, root, "$", found, depth + 1)
    return found


def _object(
    value: dict[str, Any],
    schema: Mapping[str, Any],
    root: Mapping[str, Any],
    path: str,
    out: list[str],
    depth: int,
) -> None:
    found = schema.get("properties")
    props: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    for name in schema.get("required") or ():
        if name not in value:
            out.append(f"{path}: the field {name!r} is required")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            _check(item, props[name], root, f"{path}.{name}", out, depth + 1)
        elif extra is False:
            out.append(f"{path}: unexpected field {name!r}")
        elif isinstance(extra, Mapping):
            _check(item, extra, root, f"{path}.{name}", out, depth + 1)


def _array(
    value: list[Any],
    schema: Mapping[str, Any],
    root: Mapping[str, Any],
    path: str,
    out: list[str],
    depth: int,
) -> None:
    if len(value) < schema.get("minItems", 0):
        out.append(f"{path}: fewer than {schema['minItems']} items")
    if isinstance(most := schema.get("maxItems"), int) and len(value) > most:
        out.append(f"{path}: more than {most} items")
    given = schema.get("prefixItems")
    prefix: list[Any] = given if isinstance(given, list) else []
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else schema.get("items", True)
        _check(item, sub, root, f"{path}[{i}]", out, depth + 1)


def _number(value: float, schema: Mapping[str, Any], path: str, out: list[str]) -> None:
    for key, word in (
        ("minimum", "below"),
        ("maximum", "above"),
        ("exclusiveMinimum", "not above"),
        ("exclusiveMaximum", "not below"),
    ):
        bound = schema.get(key)
        if not isinstance(bound, (int, float)) or isinstance(bound, bool):
            continue
        broken = {
            "minimum": value < bound,
            "maximum": value > bound,
            "exclusiveMinimum": value <= bound,
            "exclusiveMaximum": value >= bound,
        }[key]
        if broken:
            out.append(f"{path}: {value:g} is {word} {bound}")
    if not math.isfinite(value):
        out.append(f"{path}: not a finite number")


NAMED = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
"""Keywords whose value maps names to schemas."""
DATA = frozenset({"enum", "const", "default", "examples"})
"""Keywords whose value is data, not a schema."""


def check_schema(schema: Any, where: str) -> None:
    """A ConfigError naming `where` unless `schema` is an object schema this module can read:
    a mapping, nested at most MAX_SCHEMA_DEPTH deep, with known `type` names and local refs."""
    if not isinstance(schema, Mapping):
        raise ConfigError(f"{where}: a JSON schema must be an object")
    level: list[tuple[Any, str, bool]] = [(schema, where, False)]  # (node, where, names?)
    for _ in range(MAX_SCHEMA_DEPTH + 1):
        below: list[tuple[Any, str, bool]] = []
        for node, at, names in level:
            if isinstance(node, list):
                below.extend((item, f"{at}[{i}]", False) for i, item in enumerate(node))
                continue
            if not isinstance(node, Mapping):
                continue
            if names:  # {name: schema}: a property may be called "type" or "$ref"
                below.extend((v, f"{at}.{k}", False) for k, v in node.items())
                continue
            kinds = node.get("type")
            if kinds is not None and not isinstance(kinds, (str, list)):
                raise ConfigError(f"{at}.type: expected a type name or a list of them")
            for kind in [kinds] if isinstance(kinds, str) else kinds or ():
                if kind not in TYPES:
                    raise ConfigError(
                        f"{at}.type: unknown type {kind!r} (known: {', '.join(TYPES)})"
                    )
            ref = node.get("$ref")
            if ref is not None and (not isinstance(ref, str) or _resolve(ref, schema) is None):
                raise ConfigError(
                    f"{at}.$ref: only refs inside the schema (#/$defs/...) are allowed"
                )
            below.extend(
                (v, f"{at}.{k}", k in NAMED)
                for k, v in node.items()
                if isinstance(v, (Mapping, list)) and k not in DATA
            )
        if not below:
            return
        level = below
    raise ConfigError(f"{where}: the schema is nested more than {MAX_SCHEMA_DEPTH} deep")
