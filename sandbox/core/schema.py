"""A validator for Google API discovery-document schemas.

The sandbox validates every Calendar response it sends against the discovery
document bundled with google-api-python-client, so that a field Google never
sends (or a number where Google sends a string) is caught here rather than
in production. It is deliberately small: discovery schemas use a handful of
JSON-schema keywords (`$ref`, `type`, `properties`, `additionalProperties`,
`items`, `format`, `enum`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient

DISCOVERY_DIR = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"

_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
_INT64_RE = re.compile(r"^-?\d+$")
_UINT64_RE = re.compile(r"^\d+$")
_RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)


@dataclass(frozen=True)
class Violation:
    """One place where a document does not fit its schema."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.problem}"


@cache
def load_discovery(api: str, version: str) -> dict[str, Any]:
    """The discovery document bundled with google-api-python-client."""
    path = DISCOVERY_DIR / f"{api}.{version}.json"
    return json.loads(path.read_text(encoding="utf-8"))


class DiscoverySchema:
    """Validates JSON values against the schemas of one discovery document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas: dict[str, Any] = document.get("schemas", {})
        self.methods: dict[str, dict[str, Any]] = dict(_walk_methods(document))

    @classmethod
    def bundled(cls, api: str, version: str) -> DiscoverySchema:
        return cls(load_discovery(api, version))

    def response_ref(self, method_id: str) -> str | None:
        """The schema name of a method's response body, None when it has none."""
        method = self.methods.get(method_id)
        if method is None or "response" not in method:
            return None
        return method["response"]["$ref"]

    def validate_response(self, method_id: str, value: Any) -> list[Violation]:
        ref = self.response_ref(method_id)
        if ref is None:
            return [] if value in (None, "", {}) else [Violation("", "method has no response body")]
        return self.validate(value, ref)

    def validate(self, value: Any, schema: str | dict[str, Any]) -> list[Violation]:
        """Every violation of `schema` (a schema name or a schema object) by `value`."""
        if isinstance(schema, str):
            schema = {"$ref": schema}
        return list(self._check(value, schema, ""))

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            ref = schema["$ref"]
            if ref not in self.schemas:
                raise KeyError(f"unknown schema $ref {ref!r}")
            schema = self.schemas[ref]
        return schema

    def _check(self, value: Any, schema: dict[str, Any], path: str) -> Iterator[Violation]:
        schema = self.resolve(schema)
        kind = schema.get("type")
        if kind == "any" or kind is None:
            return
        if kind == "object":
            yield from self._check_object(value, schema, path)
        elif kind == "array":
            if not isinstance(value, list):
                yield Violation(path, f"expected array, got {_type_name(value)}")
                return
            items = schema.get("items", {"type": "any"})
            for index, item in enumerate(value):
                yield from self._check(item, items, f"{path}[{index}]")
        elif kind == "string":
            yield from self._check_string(value, schema, path)
        elif kind == "integer":
            yield from self._check_integer(value, schema, path)
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                yield Violation(path, f"expected number, got {_type_name(value)}")
        elif kind == "boolean":
            if not isinstance(value, bool):
                yield Violation(path, f"expected boolean, got {_type_name(value)}")
        else:
            yield Violation(path, f"schema has unsupported type {kind!r}")

    def _check_object(self, value: Any, schema: dict[str, Any], path: str) -> Iterator[Violation]:
        if not isinstance(value, dict):
            yield Violation(path, f"expected object, got {_type_name(value)}")
            return
        properties: dict[str, Any] = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if key in properties:
                yield from self._check(item, properties[key], child)
            elif additional is not None:
                yield from self._check(item, additional, child)
            else:
                yield Violation(child, "field not defined by the schema")

    def _check_string(self, value: Any, schema: dict[str, Any], path: str) -> Iterator[Violation]:
        if not isinstance(value, str):
            # int64 and friends are strings in JSON: a bare number is the classic mistake.
            yield Violation(path, f"expected string, got {_type_name(value)}")
            return
        fmt = schema.get("format")
        if fmt == "int64" and not _INT64_RE.match(value):
            yield Violation(path, f"not an int64 string: {value!r}")
        elif fmt == "uint64" and not _UINT64_RE.match(value):
            yield Violation(path, f"not a uint64 string: {value!r}")
        elif fmt in ("date-time", "google-datetime") and not _is_rfc3339(value):
            yield Violation(path, f"not an RFC 3339 date-time: {value!r}")
        elif fmt == "date" and not _is_date(value):
            yield Violation(path, f"not a date: {value!r}")
        elif fmt == "byte" and not _is_base64(value):
            yield Violation(path, "not base64")
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            yield Violation(path, f"{value!r} is not one of {enum}")

    def _check_integer(self, value: Any, schema: dict[str, Any], path: str) -> Iterator[Violation]:
        if isinstance(value, bool) or not isinstance(value, int):
            yield Violation(path, f"expected integer, got {_type_name(value)}")
            return
        low, high = _UINT32 if schema.get("format") == "uint32" else _INT32
        if not low <= value <= high:
            yield Violation(path, f"{value} out of range for {schema.get('format', 'int32')}")


def _walk_methods(resource: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for method in resource.get("methods", {}).values():
        yield method["id"], method
    for child in resource.get("resources", {}).values():
        yield from _walk_methods(child)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_rfc3339(value: str) -> bool:
    if not _RFC3339_RE.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        try:
            base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            return False
    return True
