"""Google's `fields` partial-response syntax: `a,b(c,d),e/f,*`.

The selection is parsed into a tree (`{name: subtree or None}`, None meaning
"the whole value") that is checked against the response schema, as Google
rejects a selection naming a field the resource does not have, and then
applied to the response body.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.core.schema import DiscoverySchema

Selection = dict[str, "Selection | None"]

_TOKEN_RE = re.compile(r"\s*([A-Za-z0-9_\-.@$*]+|[(),/])")


class FieldsError(ValueError):
    """The `fields` parameter cannot be parsed or names an unknown field."""


def parse(expression: str) -> Selection:
    tokens = _tokenize(expression)
    selection, position = _parse_list(tokens, 0)
    if position != len(tokens):
        raise FieldsError(f"Invalid field selection {expression}")
    return selection


def _tokenize(expression: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    expression = expression.strip()
    while position < len(expression):
        match = _TOKEN_RE.match(expression, position)
        if match is None:
            raise FieldsError(f"Invalid field selection {expression}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _parse_list(tokens: list[str], position: int) -> tuple[Selection, int]:
    selection: Selection = {}
    while True:
        position = _parse_item(tokens, position, selection)
        if position < len(tokens) and tokens[position] == ",":
            position += 1
            continue
        return selection, position


def _parse_item(tokens: list[str], position: int, into: Selection) -> int:
    path: list[str] = []
    while True:
        if position >= len(tokens) or tokens[position] in "(),/":
            raise FieldsError("Invalid field selection")
        path.append(tokens[position])
        position += 1
        if position < len(tokens) and tokens[position] == "/":
            position += 1
            continue
        break
    sub: Selection | None = None
    if position < len(tokens) and tokens[position] == "(":
        sub, position = _parse_list(tokens, position + 1)
        if position >= len(tokens) or tokens[position] != ")":
            raise FieldsError("Invalid field selection: unbalanced parentheses")
        position += 1
    _merge_path(into, path, sub)
    return position


def _merge_path(into: Selection, path: list[str], sub: Selection | None) -> None:
    node = into
    for name in path[:-1]:
        existing = node.get(name, {})
        if existing is None:  # the whole parent is already selected
            return
        node[name] = existing
        node = existing
    last = path[-1]
    if last in node and (node[last] is None or sub is None):
        node[last] = None
    elif last in node:
        current = node[last]
        if current is not None and sub is not None:
            current.update(sub)
    else:
        node[last] = sub


def check(selection: Selection, schemas: DiscoverySchema, schema_name: str) -> None:
    """Raise FieldsError when the selection names a field the schema lacks."""
    _check(selection, schemas, {"$ref": schema_name}, "")


def _check(
    selection: Selection, schemas: DiscoverySchema, schema: dict[str, Any], prefix: str
) -> None:
    schema = schemas.resolve(schema)
    while schema.get("type") == "array":
        schema = schemas.resolve(schema.get("items", {"type": "any"}))
    properties = schema.get("properties", {})
    additional = schema.get("additionalProperties")
    for name, sub in selection.items():
        if name == "*":
            child_schema: dict[str, Any] | None = {"type": "any"}
        elif name in properties:
            child_schema = properties[name]
        elif additional is not None:
            child_schema = additional
        else:
            raise FieldsError(f"Invalid field selection {prefix}{name}")
        if sub is not None and child_schema.get("type") != "any":
            _check(sub, schemas, child_schema, f"{prefix}{name}/")


def apply(value: Any, selection: Selection | None) -> Any:
    """The part of `value` the selection keeps."""
    if selection is None:
        return value
    if isinstance(value, list):
        return [apply(item, selection) for item in value]
    if not isinstance(value, dict):
        return value
    if "*" in selection:
        wildcard = selection["*"]
        result = {key: apply(item, wildcard) for key, item in value.items()}
        for key, sub in selection.items():
            if key != "*" and key in value:
                result[key] = apply(value[key], sub)
        return result
    return {key: apply(value[key], sub) for key, sub in selection.items() if key in value}
