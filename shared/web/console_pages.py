"""The admin console's HTML: the anonymous page, the console itself and its small forms.

Like ``shared.web.pages``, every value is escaped and a page loads nothing (no script,
image, font or stylesheet): its Content-Security-Policy allows only its own inline
style, pinned by hash, and forms posting back to this function (``form-action 'self'``,
plus Google's consent origin, where "Connect Google" is redirected).
Each form carries the session's CSRF token. Built for a phone first: one column, no
tables wider than the screen.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from shared.domain import console
from shared.domain.connection import ConnectionStatus
from shared.google import clients
from shared.stores.attention import PendingGuests, Problem, Refund
from shared.web import pages

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:1.5rem auto;padding:0 1rem;"
    "line-height:1.45;color:#1f2328}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}"
    "dt{font-weight:600}dd{margin:0 0 .4rem 0;overflow-wrap:anywhere}"
    ".ok{color:#116329}.bad{color:#a40e26}.muted{color:#59636e}"
    ".card{border:1px solid #d1d9e0;border-radius:.5rem;padding:.6rem .8rem;margin:.6rem 0}"
    ".card p{margin:.2rem 0}.notice{background:#ddf4ff;padding:.5rem .8rem;border-radius:.5rem}"
    "form{display:inline}button{font-size:1rem;padding:.35rem .9rem;margin:.3rem .3rem 0 0}"
    "nav{display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


def content_security_policy() -> str:
    """Forms post back to this function only; "Connect Google" answers that post with a
    redirect to Google's consent page, and browsers check form-action on redirects too,
    so Google's authorization origin is allowed as well."""
    parts = urlsplit(clients.endpoints().auth_uri)
    return (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
        f"form-action 'self' {parts.scheme}://{parts.netloc}; frame-ancestors 'none'"
    )


e = html.escape


def _document(title: str, body: str, *, status: int = 200) -> pages.Answer:
    text = "".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer">',
            '<meta name="robots" content="noindex">',
            f"<title>{e(title)} · classcal</title>",
            f"<style>{_STYLE}</style></head><body>",
            body,
            "</body></html>",
        ]
    )
    return pages.Answer(
        status=status,
        body=text,
        content_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": content_security_policy()},
    )


def _form(action: str, label: str, csrf: str, fields: Mapping[str, str] | None = None) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(v, quote=True)}">'
        for k, v in {**(fields or {}), "csrf": csrf}.items()
    )
    return (
        f'<form method="post" action="{e(action, quote=True)}">{hidden}'
        f'<button type="submit">{e(label)}</button></form>'
    )


def _facts(items: Mapping[str, str]) -> str:
    rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in items.items())
    return f"<dl>{rows}</dl>"


def _when(value: datetime | None, zone: ZoneInfo | None = None) -> str:
    if value is None:
        return "never"
    if zone is None:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    local = value.astimezone(zone)
    return local.strftime("%a %d %b %Y, %H:%M ") + (local.tzname() or "")


def anonymous(connected: bool, *, sign_in_url: str, status: int = 200) -> pages.Answer:
    """What anyone may see: whether classcal is connected, and a way to sign in."""
    state = (
        '<p class="ok">classcal is connected to Google.</p>'
        if connected
        else '<p class="bad">classcal is not connected to Google.</p>'
    )
    body = (
        "<h1>classcal</h1>"
        f"{state}"
        "<p>The school's admin can sign in to see bookings that need attention.</p>"
        f'<p><a id="sign-in" href="{e(sign_in_url, quote=True)}" rel="noreferrer">'
        "Sign in with Google</a></p>"
    )
    return _document("classcal", body, status=status)


_RETRIED = {
    "scheduled": "The class was scheduled: its Calendar event and Meet link exist now.",
    "already_scheduled": "That booking was already scheduled; nothing new was created.",
    "cancelled": "That booking is cancelled, so it was not scheduled.",
    "slot_taken": "Its time is still taken by another class or event; nothing was created.",
    "busy": "Another attempt is working on that booking right now. Look again in a minute.",
    "waiting": "It still cannot be scheduled; classcal keeps retrying automatically.",
    "failed": "It still cannot be scheduled; the reason is shown below.",
    "gone": "That booking no longer needs attention.",
}
_INVITED = {
    "invited": "The class's guests are now in step with its Calendar event.",
    "idle": "Nothing was waiting: the class's guests were already in step.",
    "busy": "Another attempt is inviting that class's guests right now. Look again soon.",
    "waiting": "Its guests could not be invited just now; classcal keeps retrying.",
    "failed": "Its guests could not be invited; the reason is shown below.",
    "gone": "That class no longer exists.",
}
_SIGNED_OUT = "You are signed out."


def notice_text(retried: str | None, invited: str | None = None) -> str | None:
    """The sentence for a finished action's outcome code (from the redirect's query)."""
    return _RETRIED.get(retried or "") or _INVITED.get(invited or "")


def _connection(status: ConnectionStatus, *, start_url: str, csrf: str) -> str:
    titles = {
        "connected": ("ok", "Connected"),
        "not_connected": ("bad", "Not connected"),
        "reconnect_required": ("bad", "Must be reconnected"),
        "unknown": ("bad", "Could not be checked just now"),
    }
    tone, title = titles.get(status.state, ("bad", status.state))
    facts: dict[str, str] = {}
    if status.email:
        facts["Account"] = status.email
    if status.connected_at:
        facts["Connected since"] = _when(status.connected_at)
    facts["Calendar"] = status.calendar_id
    if status.scopes:
        facts["Granted scopes"] = ", ".join(status.scopes)
    refreshes = {True: "yes", False: "no", None: "could not be checked just now"}
    if status.state != "not_connected":
        facts["Stored permission still works"] = refreshes[status.token_refreshes]
    problem = f"<p>{e(status.problem)}</p>" if status.problem else ""
    label = "Connect Google" if status.state == "not_connected" else "Reconnect Google"
    return (
        f'<section id="connection"><h2>Google connection: <span class="{tone}">{e(title)}'
        f"</span></h2>{problem}{_facts(facts)}{_form(start_url, label, csrf)}</section>"
    )


def _calendar(link: console.CalendarLink) -> str:
    age = link.mirror_age_minutes
    facts = {
        "Watch channel": (
            f"{link.channel_id} ({link.channel_state})" if link.channel_id else "none yet"
        ),
        "Channel expires": _when(link.channel_expires),
        "Last notification": _when(link.last_notification),
        "Last successful sync": _when(link.last_sync),
        "Mirror age": "unknown" if age is None else f"{age} min",
    }
    return f'<section id="calendar"><h2>Calendar link</h2>{_facts(facts)}</section>'


def _problem(problem: Problem, *, zone: ZoneInfo, retry_url: str, csrf: str) -> str:
    reason = console.REASONS.get(problem.reason, problem.reason.replace("_", " "))
    state = "Waiting" if problem.state == "waiting" else "Failed"
    link = (
        f'<p><a href="{e(problem.calendar_link, quote=True)}" rel="noreferrer">'
        "Open the Calendar event</a></p>"
        if problem.calendar_link
        else ""
    )
    message = f"<p>{e(problem.message)}</p>" if problem.message else ""
    return (
        f'<div class="card problem" id="booking-{e(problem.booking_id, quote=True)}">'
        f'<p><strong class="bad">{e(state)}:</strong> <span class="reason">{e(reason)}</span>'
        f' <span class="muted">({e(problem.reason)})</span></p>'
        f"<p>Class: {e(_when(problem.start, zone))}</p>"
        f"{message}"
        f'<p class="muted">Booking {e(problem.booking_id)} · since {e(_when(problem.since))}'
        f" · {problem.attempts} attempt{'s' if problem.attempts != 1 else ''}</p>"
        f"{link}"
        f"{_form(retry_url, 'Retry now', csrf, {'booking': problem.booking_id})}"
        "</div>"
    )


def _money(amount: float | None, currency: str | None) -> str:
    if amount is None:
        return "amount unknown"
    return f"{amount:,.2f} {currency or ''}".strip()


def _refund(refund: Refund, *, zone: ZoneInfo) -> str:
    what = console.REFUNDS.get(refund.reason, refund.reason.replace("_", " "))
    payment = f"MercadoPago payment {refund.payment_id}" if refund.payment_id else "no payment id"
    message = f"<p>{e(refund.message)}</p>" if refund.message else ""
    return (
        f'<div class="card refund" id="refund-{e(refund.booking_id, quote=True)}">'
        f'<p><strong>{e(what)}</strong> <span class="muted">({e(refund.reason)})</span></p>'
        f"<p>Class: {e(_when(refund.start, zone))} · "
        f"{e(_money(refund.amount, refund.currency))} · {e(payment)}</p>"
        f"{message}"
        f'<p class="muted">Booking {e(refund.booking_id)} · refunded '
        f"{e(_when(refund.cancelled_at))}</p></div>"
    )


def _guests(pending: PendingGuests, *, zone: ZoneInfo, invite_url: str, csrf: str) -> str:
    to_invite, to_remove = console.guest_counts(pending)
    parts = [f"{to_invite} guest{'s' if to_invite != 1 else ''} to invite"]
    if to_remove:
        parts.append(f"{to_remove} to take out")
    why = (
        f'<p><span class="reason">{e(console.GUEST_REASONS.get(pending.reason, pending.reason))}'
        f'</span> <span class="muted">({e(pending.reason)})</span></p>'
        if pending.reason
        else ""
    )
    link = (
        f'<p><a href="{e(pending.calendar_link, quote=True)}" rel="noreferrer">'
        "Open the Calendar event</a></p>"
        if pending.calendar_link
        else ""
    )
    return (
        f'<div class="card guests" id="guests-{e(pending.booking_id, quote=True)}">'
        f"<p><strong>{e(', '.join(parts))}</strong></p>{why}"
        f"<p>Class: {e(_when(pending.start, zone))}</p>"
        f'<p class="muted">Booking {e(pending.booking_id)} · changed '
        f"{e(_when(pending.since))}</p>{link}"
        f"{_form(invite_url, 'Invite now', csrf, {'booking': pending.booking_id})}"
        "</div>"
    )


def _section(
    anchor: str,
    title: str,
    cards: Iterable[str],
    empty: str,
    *,
    base_url: str,
    param: str,
    next_cursor: str | None,
    paged: bool,
) -> str:
    listing = "".join(cards) or f"<p>{e(empty)}</p>"
    more = (
        f'<p><a href="{e(base_url, quote=True)}/?{param}={e(next_cursor, quote=True)}#{anchor}"'
        ' rel="noreferrer">Older</a></p>'
        if next_cursor
        else ""
    )
    home = e(base_url, quote=True)
    first = f'<p><a href="{home}/#{anchor}">Newest first</a></p>' if paged else ""
    return f'<section id="{anchor}"><h2>{e(title)}</h2>{listing}{more}{first}</section>'


def console_page(
    view: console.Console,
    *,
    email: str,
    csrf: str,
    base_url: str,
    zone: ZoneInfo,
    notice: str | None = None,
    cursors: console.Cursors | None = None,
) -> pages.Answer:
    cursors = cursors or console.Cursors()
    problems = _section(
        "problems",
        "Bookings that need a person",
        (
            _problem(p, zone=zone, retry_url=f"{base_url}/retry", csrf=csrf)
            for p in view.problems.items
        ),
        "No booking needs attention.",
        base_url=base_url,
        param="after",
        next_cursor=view.problems.next_cursor,
        paged=cursors.problems is not None,
    )
    refunds = _section(
        "refunds",
        "Refunds made",
        (_refund(r, zone=zone) for r in view.refunds.items),
        "No booking was refunded.",
        base_url=base_url,
        param="refunds_after",
        next_cursor=view.refunds.next_cursor,
        paged=cursors.refunds is not None,
    )
    guests = _section(
        "guests",
        "Guests not yet invited",
        (
            _guests(g, zone=zone, invite_url=f"{base_url}/invite", csrf=csrf)
            for g in view.guests.items
        ),
        "Every group class's guests are invited.",
        base_url=base_url,
        param="guests_after",
        next_cursor=view.guests.next_cursor,
        paged=cursors.guests is not None,
    )
    body = (
        f"<nav><h1>classcal console</h1><span>{e(email)} "
        f"{_form(f'{base_url}/signout', 'Sign out', csrf)}</span></nav>"
        + (f'<p class="notice" id="notice">{e(notice)}</p>' if notice else "")
        + _connection(view.connection, start_url=f"{base_url}/start", csrf=csrf)
        + _calendar(view.calendar)
        + f'<p class="muted">Lists newest first; class times in {e(str(zone))}.</p>'
        + problems
        + refunds
        + guests
    )
    return _document("Console", body)


def confirm_start(*, start_url: str, csrf: str) -> pages.Answer:
    body = (
        "<h1>Reconnect Google</h1><p>classcal will send you to Google to give it access to "
        "the school calendar again.</p>" + _form(start_url, "Reconnect Google", csrf)
    )
    return _document("Reconnect Google", body)


def signed_out_text() -> str:
    return _SIGNED_OUT
