"""The control API's routes table, under /_sandbox/."""

from __future__ import annotations

from sandbox.control import handlers
from sandbox.control.backend import ControlBackend
from sandbox.control.errors import fault_error
from sandbox.core.routing import Api, RouteRow, bind

C = "/_sandbox"

TABLE: tuple[RouteRow, ...] = (
    ("GET", f"{C}/health", "sandbox.health", handlers.health),
    ("POST", f"{C}/reset", "sandbox.reset", handlers.reset),
    ("POST", f"{C}/clients", "sandbox.clients", handlers.register_client),
    ("POST", f"{C}/tokens", "sandbox.tokens", handlers.issue_token),
    ("POST", f"{C}/calendars", "sandbox.calendars", handlers.put_calendar),
    ("POST", f"{C}/conference", "sandbox.conference", handlers.set_conference),
    ("POST", f"{C}/calendar_rules", "sandbox.calendar_rules", handlers.set_calendar_rules),
    ("POST", f"{C}/oauth", "sandbox.oauth", handlers.set_oauth),
    ("POST", f"{C}/service_accounts", "sandbox.service_accounts", handlers.add_service_account),
    ("POST", f"{C}/delegation", "sandbox.delegation.grant", handlers.grant_delegation),
    ("DELETE", f"{C}/delegation", "sandbox.delegation.withdraw", handlers.withdraw_delegation),
    ("POST", f"{C}/tokens/expire", "sandbox.tokens.expire", handlers.expire_refresh_token),
    ("POST", f"{C}/sync_tokens/expire", "sandbox.sync_tokens.expire", handlers.expire_sync_tokens),
    ("POST", f"{C}/faults", "sandbox.faults.add", handlers.add_fault),
    ("GET", f"{C}/faults", "sandbox.faults.list", handlers.list_faults),
    ("DELETE", f"{C}/faults", "sandbox.faults.clear", handlers.clear_faults),
    ("GET", f"{C}/stats", "sandbox.stats", handlers.stats),
    ("GET", f"{C}/events", "sandbox.events", handlers.events),
    ("GET", f"{C}/channels", "sandbox.channels", handlers.channels),
)


def apis(backend: ControlBackend) -> list[Api]:
    # Not faultable: faults and stats are about the Google APIs, never the control API.
    return [Api("control", ("/_sandbox/",), bind(TABLE, backend), fault_error, faultable=False)]
