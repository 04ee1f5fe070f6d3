"""The control API's error body: `{"error": message}`."""

from __future__ import annotations

from werkzeug.wrappers import Response

from sandbox.core.errors import SandboxError, json_response, status_phrase


class ControlError(SandboxError):
    """A malformed request to a /_sandbox/ control endpoint."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)

    def to_response(self) -> Response:
        return json_response({"error": self.message}, self.status)


def fault_error(status: int, reason: str | None, message: str | None) -> ControlError:
    """What an unknown path (or a crash) answers outside every Google API's paths."""
    return ControlError(status, message or reason or status_phrase(status))
