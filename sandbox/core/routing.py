"""Routes tables, the request a handler sees, replies, and the `Api` descriptor.

An API package lists its routes as a table of `(http method, path regex, method id,
handler)` rows; `bind` turns the table into `Route`s whose handlers are called with
the API's backend and the request, so a handler never sees the server. `Api` says
what the server needs to know about an API as a whole: which paths are its own (for
the error shape of unknown paths), how its errors look, whether faults apply to it,
and the discovery schema its responses are checked against.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import EnvironHeaders, ImmutableMultiDict
from werkzeug.wrappers import Request, Response

from sandbox.core.errors import SandboxError
from sandbox.core.schema import DiscoverySchema


@dataclass
class Reply:
    """A JSON answer; `body=None` means an empty body (e.g. 204)."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiRequest:
    """One matched request: the HTTP request, the path parameters and the method id."""

    request: Request
    params: dict[str, str]
    method_id: str

    @property
    def args(self) -> ImmutableMultiDict[str, str]:
        return self.request.args

    @property
    def form(self) -> ImmutableMultiDict[str, str]:
        return self.request.form

    @property
    def headers(self) -> EnvironHeaders:
        return self.request.headers

    def json_body(self, on_error: Callable[[str], Exception]) -> dict[str, Any]:
        """The request body as a JSON object; `on_error(message)` builds the error to raise."""
        raw = self.request.get_data(cache=True)
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise on_error(f"Parse Error: {exc}") from exc
        if not isinstance(value, dict):
            raise on_error("Parse Error: the body is not a JSON object")
        return value


Handler = Callable[[ApiRequest], "Reply | Response"]
# A row of a routes table: (HTTP method, path regex, method id, handler(backend, request)).
RouteRow = tuple[str, str, str, Callable[..., "Reply | Response"]]
# fault_error(status, reason, message); an API whose errors can carry an ErrorInfo
# also takes the keyword `details` (passed only when a fault names one).
ErrorFactory = Callable[..., SandboxError]


@dataclass(frozen=True)
class Route:
    http_method: str
    pattern: re.Pattern[str]
    method_id: str
    handler: Handler


def bind(table: Sequence[RouteRow], backend: object) -> tuple[Route, ...]:
    """The routes of a table, each handler called as `handler(backend, request)`."""
    return tuple(
        Route(method, re.compile(f"^{pattern}$"), method_id, functools.partial(handler, backend))
        for method, pattern, method_id, handler in table
    )


@dataclass(frozen=True)
class Api:
    name: str
    # Path prefixes that belong to this API even when no route matches them.
    prefixes: tuple[str, ...]
    routes: tuple[Route, ...]
    # The error an injected fault, an unknown path or a crashed handler answers with.
    error: ErrorFactory
    # Requests are counted in stats and faults may fire on them (not on the control API).
    faultable: bool = True
    # Every JSON response is checked against this discovery document, when given.
    schema: DiscoverySchema | None = None
    # Given: the API supports `fields=` partial responses; builds the error for a bad one.
    invalid_fields: Callable[[str], SandboxError] | None = None
