"""The control endpoints' handlers: check the body, act on the backends."""

from __future__ import annotations

import re
from typing import Any

from sandbox.calendar import render as calendar_render
from sandbox.calendar.backend import KEEP
from sandbox.calendar.models import DEFAULT_TIME_ZONE, CalendarRules, ConferenceSettings
from sandbox.control.backend import ControlBackend
from sandbox.control.errors import ControlError
from sandbox.core import timeutil
from sandbox.core.faults import Fault
from sandbox.core.routing import ApiRequest, Reply
from sandbox.oauth import render as oauth_render
from sandbox.oauth.models import OAuthKnobs

_OAUTH_KNOBS = {
    "omit_refresh_token",
    "access_token_ttl",
    "id_token",
    "refresh_token_without_consent",
    "revoke_single_grant",
}


def _body(req: ApiRequest) -> dict[str, Any]:
    return req.json_body(lambda message: ControlError(400, message))


def _required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ControlError(400, f"{name!r} is required (a non-empty string)")
    return value


def health(backend: ControlBackend, req: ApiRequest) -> Reply:
    return Reply({"status": "ok"})


def reset(backend: ControlBackend, req: ApiRequest) -> Reply:
    backend.reset()
    return Reply({"reset": True})


def register_client(backend: ControlBackend, req: ApiRequest) -> Reply:
    body = _body(req)
    client_id = _required_str(body, "client_id")
    secret = _required_str(body, "client_secret")
    uris = body.get("redirect_uris") or []
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise ControlError(400, "'redirect_uris' must be a list of strings")
    backend.oauth.register_client(client_id, secret, uris)
    return Reply({"client_id": client_id, "redirect_uris": uris})


def issue_token(backend: ControlBackend, req: ApiRequest) -> Reply:
    body = _body(req)
    email = _required_str(body, "email")
    client_id = _required_str(body, "client_id")
    scope = body.get("scope")
    if not scope or not isinstance(scope, str | list):
        raise ControlError(400, "'scope' is required (a space-separated string or a list)")
    if not backend.oauth.has_client(client_id):
        raise ControlError(404, f"client {client_id!r} is not registered")
    return Reply(oauth_render.token_response(backend.oauth.issue_offline(email, client_id, scope)))


def put_calendar(backend: ControlBackend, req: ApiRequest) -> Reply:
    body = _body(req)
    calendar_id = _required_str(body, "id")
    owner = body.get("owner") or calendar_id
    time_zone = body.get("timeZone") or DEFAULT_TIME_ZONE
    try:
        timeutil.zone(time_zone)
    except ValueError as exc:
        raise ControlError(400, str(exc)) from exc
    calendar = backend.calendar.put_calendar(
        calendar_id,
        owner,
        time_zone,
        public=body.get("public", KEEP),
        summary=body.get("summary", KEEP),
    )
    return Reply(
        {
            "id": calendar.id,
            "owner": calendar.owner,
            "public": calendar.public,
            "timeZone": calendar.time_zone,
            "summary": calendar.summary,
        }
    )


def set_conference(backend: ControlBackend, req: ApiRequest) -> Reply:
    body = _body(req)
    pending_reads = body.get("pending_reads", 0)
    outcome = body.get("outcome", "success")
    if not isinstance(pending_reads, int) or pending_reads < 0:
        raise ControlError(400, "'pending_reads' must be a non-negative integer")
    if outcome not in ("success", "failure"):
        raise ControlError(400, "'outcome' must be 'success' or 'failure'")
    backend.calendar.set_conference_settings(ConferenceSettings(pending_reads, outcome))
    return Reply({"pending_reads": pending_reads, "outcome": outcome})


def set_calendar_rules(backend: ControlBackend, req: ApiRequest) -> Reply:
    """Calendar's strictness knobs; the fields left out take their (strict) defaults."""
    body = _body(req)
    defaults = CalendarRules()
    unknown = set(body) - set(vars(defaults))
    if unknown:
        raise ControlError(400, f"unknown calendar rules {sorted(unknown)}")
    page_cap = body.get("page_cap")
    if page_cap is not None and (not isinstance(page_cap, int) or page_cap < 1):
        raise ControlError(400, "'page_cap' must be a positive integer or null")
    tombstones = body.get("bare_tombstones", defaults.bare_tombstones)
    if tombstones not in ("others", "everyone", "never"):
        raise ControlError(400, "'bare_tombstones' must be 'others', 'everyone' or 'never'")
    linger = body.get("channel_linger_seconds", defaults.channel_linger_seconds)
    if not isinstance(linger, int | float) or linger < 0:
        raise ControlError(400, "'channel_linger_seconds' must be a non-negative number")
    rules = CalendarRules(
        page_cap=page_cap,
        trailing_empty_page=bool(body.get("trailing_empty_page", False)),
        bare_tombstones=tombstones,
        channel_linger_seconds=float(linger),
    )
    backend.calendar.set_rules(rules)
    return Reply(vars(rules))


def set_oauth(backend: ControlBackend, req: ApiRequest) -> Reply:
    body = _body(req)
    unknown = set(body) - _OAUTH_KNOBS
    if unknown:
        raise ControlError(
            400, f"unknown OAuth knobs {sorted(unknown)}; known: {sorted(_OAUTH_KNOBS)}"
        )
    knobs = OAuthKnobs(
        omit_refresh_token=bool(body.get("omit_refresh_token", False)),
        access_token_ttl=int(body.get("access_token_ttl", OAuthKnobs().access_token_ttl)),
        id_token=dict(body.get("id_token") or {}),
        refresh_token_without_consent=bool(body.get("refresh_token_without_consent", False)),
        revoke_single_grant=bool(body.get("revoke_single_grant", False)),
    )
    backend.oauth.set_knobs(knobs)
    return Reply(
        {
            "omit_refresh_token": knobs.omit_refresh_token,
            "access_token_ttl": knobs.access_token_ttl,
            "id_token": knobs.id_token,
            "refresh_token_without_consent": knobs.refresh_token_without_consent,
            "revoke_single_grant": knobs.revoke_single_grant,
        }
    )


def expire_refresh_token(backend: ControlBackend, req: ApiRequest) -> Reply:
    token = _required_str(_body(req), "refresh_token")
    return Reply({"expired": backend.oauth.expire_refresh_token(token)})


def expire_sync_tokens(backend: ControlBackend, req: ApiRequest) -> Reply:
    body = _body(req)
    return Reply({"expired": backend.calendar.expire_sync_tokens(body.get("calendar"))})


def _details(value: Any) -> str | None:
    """A fault's `details`: an ErrorInfo reason, "" for none, absent for the API's default."""
    if value is None or isinstance(value, str):
        return value
    raise ControlError(400, "'details' must be an ErrorInfo reason (a string)")


def add_fault(backend: ControlBackend, req: ApiRequest) -> Reply:
    body = _body(req)
    path = body.get("path", "")
    try:
        re.compile(path)
    except (re.error, TypeError) as exc:
        raise ControlError(400, f"'path' is not a valid regex: {exc}") from exc
    status = int(body.get("status") or 0)
    delay = body.get("delay")
    if status == 0 and not delay:
        raise ControlError(400, "a fault needs a 'status', a 'delay' or both")
    if status and not 400 <= status <= 599:
        raise ControlError(400, "'status' must be an HTTP error status (400-599)")
    probability = body.get("probability")
    if probability is not None and not 0 <= float(probability) <= 1:
        raise ControlError(400, "'probability' must be between 0 and 1")
    # Absent count: one fault (unlimited with a probability). An explicit null: unlimited.
    count = body.get("count", None if probability is not None else 1)
    if count is not None and int(count) < 1:
        raise ControlError(400, "'count' must be at least 1")
    fault = Fault(
        method=body.get("method") or None,
        path=path,
        status=status,
        reason=body.get("reason"),
        message=body.get("message"),
        remaining=int(count) if count is not None else None,
        probability=float(probability) if probability is not None else None,
        commit=bool(body.get("commit", False)),
        delay=float(delay) if delay else None,
        details=_details(body.get("details")),
    )
    backend.faults.add(fault)
    return Reply(fault.describe())


def list_faults(backend: ControlBackend, req: ApiRequest) -> Reply:
    return Reply({"faults": backend.faults.describe()})


def clear_faults(backend: ControlBackend, req: ApiRequest) -> Reply:
    backend.faults.clear()
    return Reply({"faults": []})


def stats(backend: ControlBackend, req: ApiRequest) -> Reply:
    return Reply(backend.stats.snapshot())


def events(backend: ControlBackend, req: ApiRequest) -> Reply:
    calendar_id = req.args.get("calendar")
    if not calendar_id:
        raise ControlError(400, "'calendar' query parameter is required")
    items = []
    for view, extras in backend.calendar.dump(calendar_id):
        rendered = calendar_render.event(view)
        rendered["sandbox"] = extras
        items.append(rendered)
    return Reply({"calendar": calendar_id, "items": items})


def channels(backend: ControlBackend, req: ApiRequest) -> Reply:
    return Reply({"channels": backend.calendar.channels()})


def add_service_account(backend: ControlBackend, req: ApiRequest) -> Reply:
    """Register a service account; with `"key": true` also issue a key file for it."""
    body = _body(req)
    email = _required_str(body, "email")
    try:
        account = backend.iam.register(email)
    except ValueError as exc:
        raise ControlError(400, str(exc)) from exc
    reply: dict[str, Any] = {"email": account.email, "client_id": account.unique_id}
    if body.get("key"):
        token_uri = req.request.host_url.rstrip("/") + "/token"
        reply["key"] = backend.iam.create_key(account.email, token_uri)
    return Reply(reply)


def _scopes(body: dict[str, Any]) -> list[str]:
    scopes = body.get("scopes")
    if isinstance(scopes, str):
        scopes = scopes.replace(",", " ").split()
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise ControlError(400, "'scopes' is required (a list, or a comma-separated string)")
    return scopes


def grant_delegation(backend: ControlBackend, req: ApiRequest) -> Reply:
    """What the Workspace admin console's "Add new" under Domain-wide delegation does:
    the client id may act as the domain's users with exactly these scopes. `users` adds
    accounts to the domain (admin@school.test is always one)."""
    body = _body(req)
    client_id = _required_str(body, "client_id")
    scopes = _scopes(body)
    users = body.get("users") or []
    if not isinstance(users, list) or not all(isinstance(u, str) and "@" in u for u in users):
        raise ControlError(400, "'users' must be a list of email addresses")
    with backend.oauth.lock:
        backend.oauth.delegation.grant(client_id, scopes)
        backend.oauth.delegation.users.update(u.lower() for u in users)
    return Reply({"client_id": client_id, "scopes": scopes})


def withdraw_delegation(backend: ControlBackend, req: ApiRequest) -> Reply:
    client_id = req.args.get("client_id", "")
    if not client_id:
        raise ControlError(400, "'client_id' is required (a query parameter)")
    with backend.oauth.lock:
        withdrawn = backend.oauth.delegation.withdraw(client_id)
    return Reply({"client_id": client_id, "withdrawn": withdrawn})
