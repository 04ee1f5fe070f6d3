"""Configuration: one frozen dataclass, read from the environment on first use.

Every variable is parsed and validated when the configuration is first read, so a
malformed value fails at once with an error naming it. Variables that only some
functions need (the OAuth client secret, the admin email, ...) may be unset; reading
them through ``Config.require`` then fails with the variable's name.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.core.errors import ConfigError

SEND_UPDATES_VALUES = ("all", "externalOnly", "none")
OAUTH = "oauth"
SERVICE_ACCOUNT = "service_account"
AUTH_MODES = (OAUTH, SERVICE_ACCOUNT)

DEFAULT_EVENT_SUMMARY = "Clase de Inglés"
DEFAULT_EVENT_DESCRIPTION = "La clase sera {classType} con x{participants} participantes"


@dataclass(frozen=True)
class Config:
    """Every setting classcal reads. Field names match the variables, lower-cased."""

    google_cloud_project: str | None
    auth_google_id: str | None
    auth_google_secret: str | None
    google_redirect_uri: str | None
    admin_email: str | None
    base_url: str | None
    calendar_id: str
    calendar_timezone: str
    refresh_token_secret: str
    google_auth_mode: str
    google_service_account_json: str | None
    google_service_account_email: str | None
    google_service_account_client_id: str | None
    send_updates: str
    event_summary: str
    event_description: str
    google_sandbox_url: str | None
    google_api_retries: int
    google_http_timeout_seconds: float
    scheduling_lease_seconds: int
    past_grace_minutes: int
    conference_poll_delays: tuple[float, ...]
    list_window_days: int
    list_cache_ttl_seconds: float
    allowed_origins: tuple[str, ...]
    calendar_webhook_url: str | None
    channel_renew_before_hours: float
    channel_ttl_hours: float
    reconcile_grace_minutes: int
    slot_guard: bool
    hold_minutes: int
    mirror_max_age_minutes: int
    mirror_horizon_days: int
    guest_changes_topic: str | None
    calendar_changes_topic: str

    @property
    def service_account_mode(self) -> bool:
        return self.google_auth_mode == SERVICE_ACCOUNT

    mercadopago_api_url: str
    mercadopago_access_token: str | None
    mercadopago_webhook_secret: str | None
    mercadopago_signature_tolerance_seconds: int
    mercadopago_http_timeout_seconds: float
    auto_refund_on_slot_taken: bool
    payments_topic: str
    event_reminders: tuple[tuple[str, int], ...]
    complete_after_minutes: int
    session_signing_key: str | None
    sync_min_interval_seconds: float

    def require(self, name: str) -> str:
        """The value of an optional variable that this code path needs."""
        value = getattr(self, name.lower())
        if value is None or value == "":
            raise ConfigError(f"{name.upper()} is not set; this function needs it")
        return value

    @property
    def project(self) -> str:
        return self.require("GOOGLE_CLOUD_PROJECT")

    @property
    def mercadopago(self) -> bool:
        """Whether classcal reads payments from MercadoPago (an access token is set)."""
        return bool(self.mercadopago_access_token)

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.calendar_timezone)


def _text(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name, "").strip()
    return value or default


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _float(
    env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float
) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _url(env: Mapping[str, str], name: str) -> str | None:
    raw = _text(env, name)
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an absolute http(s) URL, got {raw!r}")
    return raw


def _timezone(env: Mapping[str, str]) -> str:
    name = _text(env, "CALENDAR_TIMEZONE", "America/Argentina/Buenos_Aires")
    assert name is not None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"CALENDAR_TIMEZONE must be an IANA time zone, got {name!r}") from None
    return name


def _origins(env: Mapping[str, str], base_url: str | None) -> tuple[str, ...]:
    raw = _text(env, "ALLOWED_ORIGINS")
    if raw is None:
        # The booking page lives at BASE_URL: let it read busy slots by default.
        if base_url is None:
            return ()
        parts = urlsplit(base_url)
        return (f"{parts.scheme}://{parts.netloc}",)
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ConfigError(
                f"ALLOWED_ORIGINS entries must be '*' or http(s) origins, got {origin!r}"
            )
    return origins


def _delays(env: Mapping[str, str]) -> tuple[float, ...]:
    raw = _text(env, "CONFERENCE_POLL_DELAYS", "0.5,1,2,4")
    assert raw is not None
    try:
        delays = tuple(float(d) for d in raw.split(","))
    except ValueError:
        raise ConfigError(
            f"CONFERENCE_POLL_DELAYS must be comma-separated seconds, got {raw!r}"
        ) from None
    if len(delays) > 10 or any(not 0 <= d <= 30 for d in delays):
        raise ConfigError("CONFERENCE_POLL_DELAYS takes at most 10 delays of 0 to 30 seconds")
    return delays


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _text(env, name, default)
    assert value is not None
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _topic(env: Mapping[str, str], name: str) -> str | None:
    value = _text(env, name)
    if value is None:
        return None
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9._~+%-]{2,254}", value) or value.startswith("goog"):
        raise ConfigError(f"{name} must be a Pub/Sub topic name, got {value!r}")
    return value


def _secret_id(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = _text(env, name, default)
    if value is None:
        return None
    if value.startswith("{") or "PRIVATE KEY" in value:
        # The seed's way, a key in a plain variable: refused, and never echoed back.
        raise ConfigError(
            f"{name} must name the Secret Manager secret that holds the key file, not "
            "hold the key itself: store the key file as a secret version and set this to "
            "its secret id"
        )
    if not value.replace("-", "").replace("_", "").isalnum() or len(value) > 255:
        raise ConfigError(f"{name} must be a Secret Manager secret id, got {value!r}")
    return value


def _service_account(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    email = _text(env, "GOOGLE_SERVICE_ACCOUNT_EMAIL")
    if email is not None and not email.endswith(".gserviceaccount.com"):
        raise ConfigError(
            "GOOGLE_SERVICE_ACCOUNT_EMAIL must be a service account's email "
            f"(name@project.iam.gserviceaccount.com), got {email!r}"
        )
    client_id = _text(env, "GOOGLE_SERVICE_ACCOUNT_CLIENT_ID")
    if client_id is not None and not client_id.isdigit():
        raise ConfigError(
            "GOOGLE_SERVICE_ACCOUNT_CLIENT_ID must be the service account's numeric unique "
            f"id, got {client_id!r}"
        )
    return email, client_id


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _text(env, name)
    if raw is None:
        return default
    value = raw.lower()
    if value not in ("true", "false"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return value == "true"


# Google's limits on an event's reminder overrides.
REMINDER_METHODS = ("email", "popup")
MAX_REMINDERS = 5
MAX_REMINDER_MINUTES = 40320  # four weeks


def _reminders(env: Mapping[str, str]) -> tuple[tuple[str, int], ...]:
    """EVENT_REMINDERS: ``method:minutes`` pairs, comma-separated; empty: the calendar's."""
    raw = _text(env, "EVENT_REMINDERS")
    if raw is None:
        return ()
    found: list[tuple[str, int]] = []
    for item in raw.split(","):
        method, _, minutes = item.strip().partition(":")
        if method not in REMINDER_METHODS or not minutes.isdigit() or not minutes.isascii():
            raise ConfigError(
                "EVENT_REMINDERS must be method:minutes pairs separated by commas, the method "
                f"email or popup, e.g. email:1440,popup:30; got {item.strip()!r}"
            )
        if int(minutes) > MAX_REMINDER_MINUTES:
            raise ConfigError(
                f"EVENT_REMINDERS minutes must be 0 to {MAX_REMINDER_MINUTES}, got {minutes}"
            )
        if (method, int(minutes)) in found:
            raise ConfigError(f"EVENT_REMINDERS lists {method}:{int(minutes)} twice")
        found.append((method, int(minutes)))
    if len(found) > MAX_REMINDERS:
        raise ConfigError(f"EVENT_REMINDERS takes at most {MAX_REMINDERS} reminders")
    return tuple(found)


MIN_SIGNING_KEY_LENGTH = 32


def _signing_key(env: Mapping[str, str]) -> str | None:
    key = _text(env, "SESSION_SIGNING_KEY")
    if key is not None and len(key) < MIN_SIGNING_KEY_LENGTH:
        # Never quote it: it is a secret.
        raise ConfigError(
            f"SESSION_SIGNING_KEY must be at least {MIN_SIGNING_KEY_LENGTH} characters "
            f"(deploy.sh creates a random one), got {len(key)}"
        )
    return key


def from_env(env: Mapping[str, str]) -> Config:
    """Parse and validate every variable; raise ConfigError naming the first bad one."""
    base_url = _url(env, "BASE_URL")
    admin_email = _text(env, "ADMIN_EMAIL")
    if admin_email is not None and "@" not in admin_email:
        raise ConfigError(f"ADMIN_EMAIL must be an email address, got {admin_email!r}")
    secret_name = _secret_id(env, "REFRESH_TOKEN_SECRET", "calendar-refresh-token")
    assert secret_name is not None
    sa_email, sa_client_id = _service_account(env)
    sandbox = _url(env, "GOOGLE_SANDBOX_URL")
    mercadopago_url = _url(env, "MERCADOPAGO_API_URL") or "https://api.mercadopago.com"
    mercadopago_token = _text(env, "MERCADOPAGO_ACCESS_TOKEN")
    topic = _text(env, "PAYMENTS_TOPIC", "payments") or "payments"
    if not topic.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(topic) > 255:
        raise ConfigError(f"PAYMENTS_TOPIC must be a Pub/Sub topic id, got {topic!r}")
    return Config(
        google_cloud_project=_text(env, "GOOGLE_CLOUD_PROJECT"),
        auth_google_id=_text(env, "AUTH_GOOGLE_ID"),
        auth_google_secret=_text(env, "AUTH_GOOGLE_SECRET"),
        google_redirect_uri=_url(env, "GOOGLE_REDIRECT_URI"),
        admin_email=admin_email,
        base_url=base_url,
        calendar_id=_text(env, "CALENDAR_ID", "primary") or "primary",
        calendar_timezone=_timezone(env),
        refresh_token_secret=secret_name,
        google_auth_mode=_choice(env, "GOOGLE_AUTH_MODE", OAUTH, AUTH_MODES),
        google_service_account_json=_secret_id(env, "GOOGLE_SERVICE_ACCOUNT_JSON"),
        google_service_account_email=sa_email,
        google_service_account_client_id=sa_client_id,
        send_updates=_choice(env, "SEND_UPDATES", "all", SEND_UPDATES_VALUES),
        event_summary=_text(env, "EVENT_SUMMARY", DEFAULT_EVENT_SUMMARY) or DEFAULT_EVENT_SUMMARY,
        event_description=_text(env, "EVENT_DESCRIPTION", DEFAULT_EVENT_DESCRIPTION)
        or DEFAULT_EVENT_DESCRIPTION,
        google_sandbox_url=sandbox.rstrip("/") if sandbox else None,
        google_api_retries=_int(env, "GOOGLE_API_RETRIES", 4, 0, 10),
        google_http_timeout_seconds=_float(env, "GOOGLE_HTTP_TIMEOUT_SECONDS", 15.0, 0.1, 300.0),
        scheduling_lease_seconds=_int(env, "SCHEDULING_LEASE_SECONDS", 120, 1, 3600),
        past_grace_minutes=_int(env, "PAST_GRACE_MINUTES", 30, 0, 7 * 24 * 60),
        conference_poll_delays=_delays(env),
        list_window_days=_int(env, "LIST_WINDOW_DAYS", 60, 1, 90),
        list_cache_ttl_seconds=_float(env, "LIST_CACHE_TTL_SECONDS", 30.0, 0.0, 3600.0),
        allowed_origins=_origins(env, base_url),
        calendar_webhook_url=_url(env, "CALENDAR_WEBHOOK_URL"),
        channel_renew_before_hours=_float(env, "CHANNEL_RENEW_BEFORE_HOURS", 24.0, 0.0, 24 * 30),
        channel_ttl_hours=_float(env, "CHANNEL_TTL_HOURS", 24.0 * 7, 0.01, 24 * 30),
        reconcile_grace_minutes=_int(env, "RECONCILE_GRACE_MINUTES", 10, 0, 7 * 24 * 60),
        slot_guard=_choice(env, "SLOT_GUARD", "on", ("on", "off")) == "on",
        hold_minutes=_int(env, "HOLD_MINUTES", 15, 0, 24 * 60),
        mirror_max_age_minutes=_int(env, "MIRROR_MAX_AGE_MINUTES", 90, 1, 7 * 24 * 60),
        mirror_horizon_days=_int(env, "MIRROR_HORIZON_DAYS", 120, 90, 400),
        guest_changes_topic=_topic(env, "GUEST_CHANGES_TOPIC"),
        calendar_changes_topic=_topic(env, "CALENDAR_CHANGES_TOPIC") or "calendar-changes",
        mercadopago_api_url=mercadopago_url.rstrip("/"),
        mercadopago_access_token=mercadopago_token,
        mercadopago_webhook_secret=_text(env, "MERCADOPAGO_WEBHOOK_SECRET"),
        mercadopago_signature_tolerance_seconds=_int(
            env, "MERCADOPAGO_SIGNATURE_TOLERANCE_SECONDS", 600, 1, 7 * 24 * 3600
        ),
        mercadopago_http_timeout_seconds=_float(
            env, "MERCADOPAGO_HTTP_TIMEOUT_SECONDS", 5.0, 0.1, 20.0
        ),
        # Refunding needs MercadoPago: on by default exactly when it is configured.
        auto_refund_on_slot_taken=_flag(
            env, "AUTO_REFUND_ON_SLOT_TAKEN", mercadopago_token is not None
        ),
        payments_topic=topic,
        event_reminders=_reminders(env),
        complete_after_minutes=_int(env, "COMPLETE_AFTER_MINUTES", 30, 0, 7 * 24 * 60),
        session_signing_key=_signing_key(env),
        sync_min_interval_seconds=_float(env, "SYNC_MIN_INTERVAL_SECONDS", 3.0, 0.0, 60.0),
    )


_lock = threading.Lock()
_config: Config | None = None


def get_config() -> Config:
    """The configuration, parsed from os.environ the first time it is asked for."""
    global _config
    if _config is None:
        with _lock:
            if _config is None:
                _config = from_env(os.environ)
                _warn_ignored(os.environ)
    return _config


# Variables earlier versions read and this one ignores: said once per instance.
IGNORED_VARIABLES = {
    "CALENDAR_API_KEY": "busy slots are read from classcal's Firestore mirror of the "
    "calendar, never from Google with an API key",
}


def _warn_ignored(env: Mapping[str, str]) -> None:
    from shared.core.logs import get_logger

    for name, why in IGNORED_VARIABLES.items():
        if _text(env, name) is not None:
            get_logger(__name__).warning(
                f"{name} is set but ignored: {why}", extra={"reason": "ignored_variable"}
            )


def reset_config() -> None:
    """Forget the parsed configuration (tests change the environment between cases)."""
    global _config
    with _lock:
        _config = None


ENVIRONMENT_VARIABLES = tuple(f.name.upper() for f in fields(Config))
