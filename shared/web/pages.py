"""Small, self-contained HTML pages for the people who open classcal's URLs in a browser.

Every value is escaped; a page loads nothing from anywhere (no scripts, images, fonts or
stylesheets), so its Content-Security-Policy can forbid everything but its own inline
style, pinned by hash. Every answer carries ``no-store`` (a page may describe the
school's account) and ``Referrer-Policy: no-referrer``: the callback URL holds a
one-time authorization code, and a link followed from that page must not carry it along.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.core.errors import ConnectionRefused
    from shared.domain.connection import Connected, ConnectionStatus
    from shared.domain.delegation import DelegationStatus

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1f2328}h1{font-size:1.5rem}"
    "dt{font-weight:600}dd{margin:0 0 .5rem 0}"
    ".ok{color:#116329}.bad{color:#a40e26}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

SECURITY_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, independent of the web framework that sends it."""

    status: int
    body: str
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: tuple[str, ...] = ()  # whole Set-Cookie values

    def all_headers(self) -> dict[str, str]:
        return {**SECURITY_HEADERS, "Content-Type": self.content_type, **self.headers}

    def with_cookies(self, *cookies: str) -> Answer:
        return Answer(
            self.status, self.body, self.content_type, self.headers, self.cookies + cookies
        )

    def with_headers(self, **headers: str) -> Answer:
        return Answer(
            self.status, self.body, self.content_type, {**self.headers, **headers}, self.cookies
        )


@dataclass(frozen=True)
class Link:
    text: str
    href: str


def _paragraphs(items: Iterable[str]) -> str:
    return "".join(f"<p>{html.escape(text)}</p>" for text in items)


def page(
    title: str,
    paragraphs: Iterable[str] = (),
    *,
    status: int = 200,
    facts: Mapping[str, str] | None = None,
    links: Iterable[Link] = (),
    tone: str = "",
) -> Answer:
    """A page: a heading, plain-language paragraphs, optional facts and links."""
    heading_class = f' class="{tone}"' if tone in ("ok", "bad") else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="robots" content="noindex">',
        f"<title>{html.escape(title)} · classcal</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1{heading_class}>{html.escape(title)}</h1>",
        _paragraphs(paragraphs),
    ]
    if facts:
        rows = "".join(
            f"<dt>{html.escape(name)}</dt><dd>{html.escape(value)}</dd>"
            for name, value in facts.items()
        )
        parts.append(f"<dl>{rows}</dl>")
    link_items = "".join(
        f'<li><a href="{html.escape(link.href, quote=True)}" rel="noreferrer">'
        f"{html.escape(link.text)}</a></li>"
        for link in links
    )
    if link_items:
        parts.append(f"<ul>{link_items}</ul>")
    parts.append("</body></html>")
    return Answer(status=status, body="".join(parts), content_type="text/html; charset=utf-8")


def json_answer(value: Any, *, status: int = 200) -> Answer:
    return Answer(
        status=status,
        body=json.dumps(value, ensure_ascii=False, sort_keys=True),
        content_type="application/json; charset=utf-8",
    )


def redirect(location: str) -> Answer:
    """A 302 with a tiny page for clients that do not follow redirects."""
    answer = page(
        "Continue to Google",
        ["Your browser should have taken you to Google. Follow the link below."],
        status=302,
        links=[Link("Continue to Google", location)],
    )
    return Answer(
        status=302,
        body=answer.body,
        content_type=answer.content_type,
        headers={"Location": location},
    )


def method_not_allowed(allowed: str = "GET, HEAD") -> Answer:
    answer = page(
        "Method not allowed",
        [f"This address only answers {allowed.replace(', ', ' and ')} requests."],
        status=405,
        tone="bad",
    )
    return Answer(
        status=405,
        body=answer.body,
        content_type=answer.content_type,
        headers={"Allow": allowed},
    )


def see_other(location: str) -> Answer:
    """A 303 after a form: the browser GETs ``location``."""
    answer = page("Continue", ["Follow the link below."], links=[Link("Continue", location)])
    return Answer(303, answer.body, answer.content_type, {"Location": location})


def not_found(links: Iterable[Link] = ()) -> Answer:
    return page(
        "Page not found",
        ["classcal has nothing at this address."],
        status=404,
        links=links,
        tone="bad",
    )


# ---------------------------------------------------------------------------------------
# The pages of the admin's Google connection (functions/oauth_callback)


def connected(result: Connected, *, status_url: str) -> Answer:
    facts = {"Connected as": result.email, "Calendar": result.calendar_id}
    if result.calendar_problem is None:
        count = result.upcoming_events or 0
        shown = f"{count} or more" if result.more_events else str(count)
        facts["Upcoming events it can see"] = shown
        return page(
            "Google account connected",
            [
                f"classcal now acts on the school's calendar as {result.email}. Classes "
                "booked from now on are added to it automatically.",
                "You can close this page. classcal's functions pick up the new permission "
                "by themselves; nothing needs to be redeployed.",
            ],
            facts=facts,
            links=[Link("Connection status", status_url)],
            tone="ok",
        )
    return page(
        "Connected, but the calendar could not be read",
        [
            f"The permission of {result.email} was saved, but reading the calendar failed.",
            result.calendar_problem,
        ],
        status=502,
        facts=facts,
        links=[Link("Connection status", status_url)],
        tone="bad",
    )


def refused(error: ConnectionRefused, *, start_url: str) -> Answer:
    return page(
        error.title,
        [error.advice],
        status=error.http_status,
        links=[Link("Start again", start_url)],
        tone="bad",
    )


def unavailable(start_url: str | None) -> Answer:
    links = [Link("Start again", start_url)] if start_url else []
    return page(
        "Please try again in a minute",
        [
            "Google or classcal's storage did not answer in time, so nothing was changed. "
            "Wait a minute, then start again."
        ],
        status=503,
        links=links,
        tone="bad",
    )


def misconfigured() -> Answer:
    return page(
        "classcal is not set up completely",
        [
            "A setting this page needs is missing or wrong. The person who deployed "
            "classcal can find which one in the function's logs."
        ],
        status=503,
        tone="bad",
    )


def failed() -> Answer:
    return page(
        "Something went wrong",
        [
            "classcal could not finish this request and nothing was changed. Try again; if "
            "it keeps happening, the function's logs say why."
        ],
        status=500,
        tone="bad",
    )


def connection_status(status: ConnectionStatus, *, start_url: str) -> Answer:
    titles = {
        "connected": "classcal is connected to Google",
        "not_connected": "classcal is not connected to Google",
        "reconnect_required": "classcal must be reconnected to Google",
        "unknown": "The Google connection could not be checked",
    }
    refreshes = {True: "yes", False: "no", None: "could not be checked just now"}
    facts: dict[str, str] = {}
    if status.email:
        facts["Account"] = status.email
    if status.connected_at:
        since = status.connected_at.astimezone(UTC)
        facts["Connected since"] = since.strftime("%Y-%m-%d %H:%M UTC")
    facts["Calendar"] = status.calendar_id
    if status.state != "not_connected":
        facts["Stored permission still works"] = refreshes[status.token_refreshes]
    paragraphs = [status.problem] if status.problem else []
    links = [] if status.state == "connected" else [Link("Connect Google", start_url)]
    return page(
        titles.get(status.state, "Google connection"),
        paragraphs,
        facts=facts,
        links=links,
        tone="ok" if status.state == "connected" else "bad",
    )


def delegation_status(status: DelegationStatus, *, status_code: int = 200) -> Answer:
    """Service-account mode's connect page: the mode and how delegation is set up; no
    Connect link, since nobody signs in."""
    titles = {
        "connected": "classcal acts on the calendar through domain-wide delegation",
        "delegation_refused": "Google refuses classcal's domain-wide delegation",
        "unknown": "The delegation could not be checked",
    }
    how = (
        "keyless: Google signs for the functions' own service account (IAM signJwt)"
        if status.keyless
        else "a service-account key file kept in Secret Manager"
    )
    facts = {
        "Mode": "service account (GOOGLE_AUTH_MODE=service_account)",
        "Acts as": status.subject,
        "Service account": status.service_account or "(not known yet)",
        "Client ID": status.client_id or "(see Terraform's output or IAM > Service accounts)",
        "Scope": status.scope,
        "Signing": how,
    }
    paragraphs = [
        "There is nothing to connect: no one signs in and no refresh token is kept. The "
        "school's Workspace administrator allows this service account, once, to act as "
        f"{status.subject} on the calendar.",
        f"To set it up or repair it, {status.instruction}.",
    ]
    if status.problem:
        paragraphs.insert(0, status.problem)
    return page(
        titles.get(status.state, "Domain-wide delegation"),
        paragraphs,
        status=status_code,
        facts=facts,
        tone="ok" if status.state == "connected" else "bad",
    )
