"""JSON log lines that Cloud Logging reads as structured entries (``severity``, ``message``).

Structured fields travel as ``extra={...}``: ``log.info("scheduled", extra={"booking_id": b})``.
Anything that looks like a credential is masked before a line is written, as a last
line of defence: code must still never pass tokens or access codes to a logger.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else came in through ``extra``.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)

_SECRET_KEYS = re.compile(
    r"(token|secret|password|access_?code|authorization|code_verifier|api_?key|^code$)", re.I
)
_SECRET_PATTERNS = (
    re.compile(r"ya29\.[\w.-]+"),  # Google access tokens
    re.compile(r"1//[\w.-]+"),  # Google refresh tokens
    re.compile(r"(?i)(bearer\s+)[\w.~+/-]+=*"),
    re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]*"),  # JWTs (id_tokens)
    re.compile(
        r"(?i)((?:code|token|refresh_token|access_token|id_token|client_secret|key|state)=)[^&\s\"']+"
    ),
)
MASK = "[redacted]"


def redact(text: str) -> str:
    """Mask credential-looking substrings of free text."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


def _clean(key: str, value: Any) -> Any:
    if _SECRET_KEYS.search(key):
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(key, v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the fields Cloud Logging understands."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": "WARNING" if record.levelname == "WARN" else record.levelname,
            "message": redact(record.getMessage()),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _clean(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            # A traceback helps find bugs; its text is redacted like everything else.
            entry["exception"] = redact("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(entry, ensure_ascii=False, default=str)


_configured = False


def configure_logging() -> None:
    """Send the root logger's records to stdout as JSON lines (idempotent)."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    # The client libraries are chatty at INFO about things that are not ours to report.
    for noisy in ("googleapiclient.discovery_cache", "google.auth", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


def get_logger(name: str) -> logging.Logger:
    configure_logging()
    return logging.getLogger(name)
