"""Service-account mode's side of connecting Google: there is no connection to make.

With ``GOOGLE_AUTH_MODE=service_account`` nobody signs in and no refresh token exists;
the Workspace administrator delegates the calendar scope to the service account once.
The connect page then reports whether Google gives that account a token as
``ADMIN_EMAIL``, and how delegation is set up (``shared.web.connect_pages``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.core.config import get_config
from shared.google import credentials as auth


def uses_delegation() -> bool:
    """GOOGLE_AUTH_MODE=service_account: nobody connects; the Workspace admin delegates."""
    return get_config().service_account_mode


@dataclass(frozen=True)
class DelegationStatus:
    """What the connect page shows in service-account mode. Never a key or a token."""

    state: str  # connected | delegation_refused | unknown
    keyless: bool
    service_account: str | None
    client_id: str | None
    subject: str
    scope: str
    instruction: str
    problem: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": "service_account",
            "state": self.state,
            "connected": self.state == "connected",
            "keyless": self.keyless,
            "serviceAccount": self.service_account,
            "clientId": self.client_id,
            "subject": self.subject,
            "scope": self.scope,
            "calendarId": get_config().calendar_id,
            "problem": self.problem,
        }


def delegation_status() -> DelegationStatus:
    """Whether Google gives the service account a token as ADMIN_EMAIL (it asks once)."""
    checked, problem = auth.check_delegation()
    about = auth.delegation()  # after the check: a key file names its own client id
    state = {
        auth.WORKS: "connected",
        auth.REFUSED: "delegation_refused",
        auth.UNCHECKED: "unknown",
    }[checked]
    return DelegationStatus(
        state=state,
        keyless=about.keyless,
        service_account=about.service_account,
        client_id=about.client_id,
        subject=about.subject,
        scope=about.scope,
        instruction=about.instruction(),
        problem=problem,
    )
