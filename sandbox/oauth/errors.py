"""OAuth's two error shapes: RFC 6749's `{"error", "error_description"}` JSON on the
token endpoints, and the HTML page Google shows instead of the consent screen."""

from __future__ import annotations

import html

from werkzeug.wrappers import Response

from sandbox.core.errors import SandboxError, json_response, status_phrase


class OAuthError(SandboxError):
    def __init__(self, status: int, error: str, description: str | None = None) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(f"{status} {error}: {description}")

    def to_response(self) -> Response:
        body: dict[str, str] = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        # A Basic challenge needs its realm (RFC 7617): httplib2, which google-auth uses
        # under googleapiclient, cannot parse a bare "Basic" and raises TransportError.
        headers = (
            {"WWW-Authenticate": 'Basic realm="https://accounts.google.com"'}
            if self.status == 401
            else None
        )
        return json_response(body, self.status, headers)


class ConsentPageError(SandboxError):
    """The HTML page Google shows instead of the consent screen ("Error 400: ...")."""

    def __init__(self, status: int, error: str, description: str) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(f"{status} {error}: {description}")

    def to_response(self) -> Response:
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error {self.status}: {html.escape(self.error)}</title></head>
<body>
<h1>Access blocked: authorization error</h1>
<p id="error-code">Error {self.status}: {html.escape(self.error)}</p>
<p id="error-description">{html.escape(self.description)}</p>
</body></html>
"""  # noqa: E501
        return Response(page, status=self.status, content_type="text/html; charset=utf-8")


def fault_error(status: int, reason: str | None, message: str | None) -> OAuthError:
    """What an injected fault, an unknown path or a crash answers on the token endpoints."""
    return OAuthError(status, reason or "server_error", message or status_phrase(status))


def consent_fault_error(status: int, reason: str | None, message: str | None) -> ConsentPageError:
    """The same, on the consent screen's paths: an HTML error page."""
    return ConsentPageError(status, reason or "server_error", message or status_phrase(status))
