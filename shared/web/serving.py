"""One error-to-answer rule for HTTP functions, the counterpart of ``pubsub.run``.

An HTTP entry point hands its request to ``run`` with a handler and the function's
``Answers`` (how it words each kind of failure: JSON, an HTML page, a bare status).
The rule is the same everywhere:

- ``ConfigError``: the deployment needs fixing; logged at ERROR, ``answers.misconfigured``;
- ``TransientError``: the same request may work later; one WARNING line,
  ``answers.unavailable`` (a 503, so callers that retry, like Google's push, do);
- ``PermanentError`` and any other ``ClasscalError``: retrying cannot help; logged at
  ERROR, ``answers.failed``;
- anything else is a bug: logged with its traceback, ``answers.internal``. The
  exception's text never reaches the caller (functions-framework would send it).

Expected outcomes (a 400 for a bad parameter, a refused connection) are the handler's
own answers, not errors here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.core.errors import ClasscalError, ConfigError, PermanentError, TransientError
from shared.core.logs import get_logger

log = get_logger(__name__)

Response = Any  # a Flask response, or anything functions-framework accepts


@dataclass(frozen=True)
class Answers:
    """How one HTTP function answers each kind of failure."""

    unavailable: Callable[[ClasscalError], Response]
    misconfigured: Callable[[ClasscalError], Response]
    failed: Callable[[ClasscalError], Response]
    internal: Callable[[], Response]


def run(
    request: Any,
    handler: Callable[[Any], Response],
    *,
    name: str,
    answers: Answers,
    context: Mapping[str, Any] | None = None,
) -> Response:
    """``handler(request)``, with every failure turned into the function's answer."""
    fields = {"function": name, **(context or {})}
    try:
        return handler(request)
    except ConfigError as error:
        log.error(
            f"{name} misconfigured: {error.message}",
            extra={**fields, "outcome": "misconfigured", "reason": error.code},
        )
        return answers.misconfigured(error)
    except TransientError as error:
        log.warning(
            f"{name} unavailable, try again later: {error.message}",
            extra={**fields, "outcome": "retry", "reason": error.code},
        )
        return answers.unavailable(error)
    except (PermanentError, ClasscalError) as error:
        log.error(
            f"{name} failed: {error.message}",
            extra={**fields, "outcome": "failed", "reason": error.code},
        )
        return answers.failed(error)
    except Exception:
        log.exception(f"unexpected error in {name}", extra={**fields, "outcome": "bug"})
        return answers.internal()
