from __future__ import annotations

import json
import logging

from shared.core.logs import JsonFormatter, redact


def _format(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("classcal.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return json.loads(JsonFormatter().format(record))


def test_lines_carry_severity_and_structured_fields() -> None:
    line = _format("scheduled %s", "b1", booking_id="b1", calls={"events.insert": 1})

    assert line["severity"] == "WARNING"
    assert line["message"] == "scheduled b1"
    assert line["booking_id"] == "b1"
    assert line["calls"] == {"events.insert": 1}


def test_credentials_are_masked_in_messages_and_fields() -> None:
    line = _format(
        "refresh with 1//0abcDEF-ghi and ya29.a0AfB_xyz, url ?code=4/0Ab12&state=s3cr3t",
        access_code="K7Q2M9XZ",
        refresh_token="1//0zzz",
        detail={"Authorization": "Bearer ya29.zzz"},
    )
    text = json.dumps(line)

    for secret in (
        "1//0abcDEF",
        "ya29.a0AfB",
        "4/0Ab12",
        "s3cr3t",
        "K7Q2M9XZ",
        "1//0zzz",
        "ya29.zzz",
    ):
        assert secret not in text


def test_redact_keeps_ordinary_text() -> None:
    assert redact("booking abc scheduled in 3 calls") == "booking abc scheduled in 3 calls"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [redacted]"
