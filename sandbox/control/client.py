"""A small client of the sandbox's /_sandbox/ control endpoints, for tests,
benchmarks and the local demo. Standard library only."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

from sandbox.core.control_calls import ControlCallError, call


class SandboxControlError(ControlCallError):
    """A control call failed; `status` is the HTTP status (0: no answer)."""


class SandboxControl:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.url}/_sandbox/{path}"
        return call(url, method, body, self.timeout, SandboxControlError)

    # --- lifecycle ----------------------------------------------------------

    def wait_until_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._call("GET", "health")
                return
            except SandboxControlError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def reset(self) -> None:
        self._call("POST", "reset", {})

    # --- OAuth ------------------------------------------------------------

    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: list[str]
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "clients",
            {
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": redirect_uris,
            },
        )

    def issue_token(self, email: str, client_id: str, scope: str | list[str]) -> dict[str, Any]:
        """Tokens as if `email` consented offline: refresh_token, access_token, expires_in, ..."""
        return self._call(
            "POST", "tokens", {"email": email, "client_id": client_id, "scope": scope}
        )

    def set_oauth(self, **knobs: Any) -> dict[str, Any]:
        """omit_refresh_token, access_token_ttl, id_token={aud, iss, exp_offset,
        email_verified, bad_signature, ...}, and the lenient refresh_token_without_consent
        and revoke_single_grant; no arguments clears them."""
        return self._call("POST", "oauth", knobs)

    # --- service accounts and domain-wide delegation -------------------------

    def add_service_account(self, email: str, key: bool = False) -> dict[str, Any]:
        """Register a service account: {email, client_id}, plus `key` (a key file's JSON)
        when asked for."""
        return self._call("POST", "service_accounts", {"email": email, "key": key})

    def grant_delegation(
        self, client_id: str, scopes: list[str], users: list[str] | None = None
    ) -> dict[str, Any]:
        """Let `client_id` act as the domain's users with exactly `scopes`."""
        return self._call(
            "POST", "delegation", {"client_id": client_id, "scopes": scopes, "users": users or []}
        )

    def withdraw_delegation(self, client_id: str) -> bool:
        query = urllib.parse.urlencode({"client_id": client_id})
        return self._call("DELETE", f"delegation?{query}")["withdrawn"]

    def expire_refresh_token(self, refresh_token: str) -> bool:
        """Make one refresh token stop working (invalid_grant), its grant's others kept."""
        return self._call("POST", "tokens/expire", {"refresh_token": refresh_token})["expired"]

    # --- Calendar ---------------------------------------------------------

    def add_calendar(
        self,
        calendar_id: str,
        owner: str | None = None,
        public: bool = False,
        time_zone: str | None = None,
        summary: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"id": calendar_id, "owner": owner or calendar_id, "public": public}
        if time_zone is not None:
            body["timeZone"] = time_zone
        if summary is not None:
            body["summary"] = summary
        return self._call("POST", "calendars", body)

    def set_calendar_rules(self, **rules: Any) -> dict[str, Any]:
        """page_cap, trailing_empty_page, bare_tombstones ("others", "everyone", "never"),
        channel_linger_seconds; those left out (no arguments: all) take the strict defaults."""
        return self._call("POST", "calendar_rules", rules)

    def set_conference(self, pending_reads: int = 0, outcome: str = "success") -> dict[str, Any]:
        return self._call(
            "POST", "conference", {"pending_reads": pending_reads, "outcome": outcome}
        )

    def expire_sync_tokens(self, calendar: str | None = None) -> int:
        body = {"calendar": calendar} if calendar is not None else {}
        return self._call("POST", "sync_tokens/expire", body)["expired"]

    def events(self, calendar: str) -> list[dict[str, Any]]:
        """Every event, tombstones included; each has a `sandbox` key with its sendUpdates log."""
        query = urllib.parse.urlencode({"calendar": calendar})
        return self._call("GET", f"events?{query}")["items"]

    def channels(self) -> list[dict[str, Any]]:
        return self._call("GET", "channels")["channels"]

    # --- faults and stats ---------------------------------------------------

    def fault(
        self,
        method: str | None,
        path: str,
        status: int,
        reason: str | None = None,
        count: int | None = 1,
        probability: float | None = None,
        commit: bool = False,
        delay: float | None = None,
        message: str | None = None,
        details: str | None = None,
    ) -> dict[str, Any]:
        """Make matching requests fail. `method` is an HTTP method or a discovery method id
        (None: any); `path` a regex searched in the request path; `count=None` means
        unlimited (with or without `probability`). `status=0` with `delay` only delays.
        `details`: the ErrorInfo reason the body's `details` carries (None: what Google
        sends with that reason, "": no `details`)."""
        body: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": status,
            "reason": reason,
            "count": count,
            "commit": commit,
        }
        if probability is not None:
            body["probability"] = probability
        if delay is not None:
            body["delay"] = delay
        if message is not None:
            body["message"] = message
        if details is not None:
            body["details"] = details
        return self._call("POST", "faults", body)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")
