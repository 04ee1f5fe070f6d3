"""The /_sandbox/ control endpoints that tests, benchmarks and demos use to set the
scene (clients, tokens, calendars, knobs, faults) and to look behind it (stats,
events, channels). None of this exists at Google."""

from __future__ import annotations

import re
from typing import Any

from sandbox import calendar_api, oauth, timeutil
from sandbox.errors import ControlError
from sandbox.routing import Reply, RequestContext, Route, route
from sandbox.state import (
    DEFAULT_TIME_ZONE,
    Calendar,
    ConferenceSettings,
    Fault,
    OAuthClient,
    OAuthKnobs,
)

C = "/_sandbox"
_OAUTH_KNOBS = {"omit_refresh_token", "access_token_ttl", "id_token"}


def routes() -> list[Route]:
    def control(method: str, path: str, name: str, handler: Any) -> Route:
        return route(method, f"{C}/{path}", f"sandbox.{name}", "control", handler)

    return [
        control("GET", "health", "health", health),
        control("POST", "reset", "reset", reset),
        control("POST", "clients", "clients", register_client),
        control("POST", "tokens", "tokens", issue_token),
        control("POST", "calendars", "calendars", put_calendar),
        control("POST", "conference", "conference", set_conference),
        control("POST", "oauth", "oauth", set_oauth),
        control("POST", "sync_tokens/expire", "sync_tokens.expire", expire_sync_tokens),
        control("POST", "faults", "faults.add", add_fault),
        control("GET", "faults", "faults.list", list_faults),
        control("DELETE", "faults", "faults.clear", clear_faults),
        control("GET", "stats", "stats", stats),
        control("GET", "events", "events", events),
        control("GET", "channels", "channels", channels),
    ]


def _body(ctx: RequestContext) -> dict[str, Any]:
    return ctx.json_body(lambda message: ControlError(400, message))


def _required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ControlError(400, f"{name!r} is required (a non-empty string)")
    return value


def health(ctx: RequestContext) -> Reply:
    return Reply({"status": "ok"})


def reset(ctx: RequestContext) -> Reply:
    ctx.sandbox.reset()
    return Reply({"reset": True})


def register_client(ctx: RequestContext) -> Reply:
    body = _body(ctx)
    client_id = _required_str(body, "client_id")
    secret = _required_str(body, "client_secret")
    uris = body.get("redirect_uris") or []
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise ControlError(400, "'redirect_uris' must be a list of strings")
    with ctx.sandbox.state.lock:
        ctx.sandbox.state.clients[client_id] = OAuthClient(client_id, secret, list(uris))
    return Reply({"client_id": client_id, "redirect_uris": uris})


def issue_token(ctx: RequestContext) -> Reply:
    body = _body(ctx)
    email = _required_str(body, "email")
    client_id = _required_str(body, "client_id")
    scope = body.get("scope")
    if not scope or not isinstance(scope, str | list):
        raise ControlError(400, "'scope' is required (a space-separated string or a list)")
    with ctx.sandbox.state.lock:
        if client_id not in ctx.sandbox.state.clients:
            raise ControlError(404, f"client {client_id!r} is not registered")
        return Reply(oauth.issue_for_control(ctx.sandbox, email, client_id, scope))


def put_calendar(ctx: RequestContext) -> Reply:
    body = _body(ctx)
    calendar_id = _required_str(body, "id")
    owner = body.get("owner") or calendar_id
    time_zone = body.get("timeZone") or DEFAULT_TIME_ZONE
    try:
        timeutil.zone(time_zone)
    except ValueError as exc:
        raise ControlError(400, str(exc)) from exc
    state = ctx.sandbox.state
    with state.lock:
        calendar = state.calendars.get(calendar_id)
        if calendar is None:
            calendar = Calendar(id=calendar_id, owner=owner)
            state.calendars[calendar_id] = calendar
        calendar.owner = owner
        calendar.public = bool(body.get("public", calendar.public))
        calendar.time_zone = time_zone
        if "summary" in body:
            calendar.summary = body["summary"]
        return Reply(
            {
                "id": calendar.id,
                "owner": calendar.owner,
                "public": calendar.public,
                "timeZone": calendar.time_zone,
                "summary": calendar.summary,
            }
        )


def set_conference(ctx: RequestContext) -> Reply:
    body = _body(ctx)
    pending_reads = body.get("pending_reads", 0)
    outcome = body.get("outcome", "success")
    if not isinstance(pending_reads, int) or pending_reads < 0:
        raise ControlError(400, "'pending_reads' must be a non-negative integer")
    if outcome not in ("success", "failure"):
        raise ControlError(400, "'outcome' must be 'success' or 'failure'")
    with ctx.sandbox.state.lock:
        ctx.sandbox.state.conference_settings = ConferenceSettings(pending_reads, outcome)
    return Reply({"pending_reads": pending_reads, "outcome": outcome})


def set_oauth(ctx: RequestContext) -> Reply:
    body = _body(ctx)
    unknown = set(body) - _OAUTH_KNOBS
    if unknown:
        raise ControlError(
            400, f"unknown OAuth knobs {sorted(unknown)}; known: {sorted(_OAUTH_KNOBS)}"
        )
    knobs = OAuthKnobs(
        omit_refresh_token=bool(body.get("omit_refresh_token", False)),
        access_token_ttl=int(body.get("access_token_ttl", OAuthKnobs().access_token_ttl)),
        id_token=dict(body.get("id_token") or {}),
    )
    with ctx.sandbox.state.lock:
        ctx.sandbox.state.oauth_knobs = knobs
    return Reply(
        {
            "omit_refresh_token": knobs.omit_refresh_token,
            "access_token_ttl": knobs.access_token_ttl,
            "id_token": knobs.id_token,
        }
    )


def expire_sync_tokens(ctx: RequestContext) -> Reply:
    body = _body(ctx)
    calendar_id = body.get("calendar")
    state = ctx.sandbox.state
    with state.lock:
        doomed = [
            token
            for token, point in state.sync_tokens.items()
            if calendar_id is None or point.calendar_id == calendar_id
        ]
        for token in doomed:
            del state.sync_tokens[token]
    return Reply({"expired": len(doomed)})


def add_fault(ctx: RequestContext) -> Reply:
    body = _body(ctx)
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
    )
    with ctx.sandbox.state.lock:
        ctx.sandbox.state.faults.append(fault)
    return Reply(fault.describe())


def list_faults(ctx: RequestContext) -> Reply:
    with ctx.sandbox.state.lock:
        return Reply({"faults": [f.describe() for f in ctx.sandbox.state.faults]})


def clear_faults(ctx: RequestContext) -> Reply:
    with ctx.sandbox.state.lock:
        ctx.sandbox.state.faults.clear()
    return Reply({"faults": []})


def stats(ctx: RequestContext) -> Reply:
    with ctx.sandbox.state.lock:
        return Reply(ctx.sandbox.state.stats.snapshot())


def events(ctx: RequestContext) -> Reply:
    calendar_id = ctx.request.args.get("calendar")
    if not calendar_id:
        raise ControlError(400, "'calendar' query parameter is required")
    return Reply(
        {"calendar": calendar_id, "items": calendar_api.dump_events(ctx.sandbox, calendar_id)}
    )


def channels(ctx: RequestContext) -> Reply:
    return Reply({"channels": ctx.sandbox.notifier.describe()})
