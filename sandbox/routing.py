"""The pieces shared by the server and the API modules: routes, request context, replies."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from sandbox.server import Sandbox


@dataclass
class Reply:
    """A JSON answer; `body=None` means an empty body (e.g. 204)."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RequestContext:
    request: Request
    params: dict[str, str]
    sandbox: Sandbox
    method_id: str

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


Handler = Callable[[RequestContext], "Reply | Response"]


@dataclass(frozen=True)
class Route:
    http_method: str
    pattern: re.Pattern[str]
    method_id: str
    # Which API the path belongs to decides the error body shape:
    # calendar, secretmanager, oauth, consent (HTML) or control.
    api: str
    handler: Handler


def route(http_method: str, pattern: str, method_id: str, api: str, handler: Handler) -> Route:
    return Route(http_method, re.compile(f"^{pattern}$"), method_id, api, handler)


def api_of_path(path: str) -> str:
    """The API a path belongs to, also for paths no route matches."""
    if path.startswith("/calendar/"):
        return "calendar"
    if path.startswith("/v1/"):
        return "secretmanager"
    if path.startswith("/o/oauth2/"):
        return "consent"
    if path.startswith(("/token", "/revoke", "/oauth2/")):
        return "oauth"
    return "control"
