"""The one HTTP call the sandbox's control clients make: JSON to a /_sandbox/ endpoint,
JSON back, never through a proxy (the sandbox is always local). Standard library only."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ControlCallError(RuntimeError):
    """A control call failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def call(
    url: str,
    method: str,
    body: dict[str, Any] | None,
    timeout: float,
    error: type[ControlCallError] = ControlCallError,
) -> Any:
    """``method`` ``url`` with ``body`` as JSON; the answer's JSON (None when empty).
    Raises ``error`` with the status and the body of a refusal, status 0 with no answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - the URL is the sandbox's own
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} if data is not None else {},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        exc.close()
        raise error(exc.code, detail) from exc
    except OSError as exc:
        raise error(0, str(exc)) from exc
    return json.loads(raw) if raw else None
