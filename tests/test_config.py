from __future__ import annotations

import pytest

from shared.core.config import ENVIRONMENT_VARIABLES, from_env, get_config
from shared.core.errors import ConfigError


def test_defaults_follow_the_seed() -> None:
    config = from_env({})

    assert config.calendar_id == "primary"
    assert config.calendar_timezone == "America/Argentina/Buenos_Aires"
    assert config.refresh_token_secret == "calendar-refresh-token"
    assert config.send_updates == "all"
    assert config.event_summary == "Clase de Inglés"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CALENDAR_TIMEZONE", "Mars/Olympus_Mons"),
        ("CALENDAR_TIMEZONE", "../../etc/passwd"),
        ("SEND_UPDATES", "everyone"),
        ("GOOGLE_API_RETRIES", "many"),
        ("GOOGLE_API_RETRIES", "99"),
        ("LIST_WINDOW_DAYS", "91"),
        ("BASE_URL", "not a url"),
        ("GOOGLE_SANDBOX_URL", "ftp://x"),
        ("ADMIN_EMAIL", "nobody"),
        ("ALLOWED_ORIGINS", "https://ok.example, javascript:alert(1)"),
        ("CONFERENCE_POLL_DELAYS", "1,two"),
        ("REFRESH_TOKEN_SECRET", "has spaces"),
    ],
)
def test_a_malformed_variable_is_named_in_the_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        from_env({name: value})


def test_a_missing_required_variable_is_named_when_needed() -> None:
    config = from_env({})

    with pytest.raises(ConfigError, match="AUTH_GOOGLE_SECRET"):
        config.require("AUTH_GOOGLE_SECRET")
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        _ = config.project


def test_allowed_origins_default_to_the_booking_site() -> None:
    assert from_env({"BASE_URL": "https://school.example/app/"}).allowed_origins == (
        "https://school.example",
    )
    assert from_env({"ALLOWED_ORIGINS": "*"}).allowed_origins == ("*",)
    assert from_env({}).allowed_origins == ()


def test_configuration_is_read_once_and_frozen(env: pytest.MonkeyPatch) -> None:
    env.setenv("CALENDAR_ID", "school@group.calendar.google.com")
    first = get_config()
    env.setenv("CALENDAR_ID", "other")

    assert get_config() is first
    with pytest.raises(AttributeError):
        first.calendar_id = "x"  # type: ignore[misc]


def test_every_variable_is_documented_in_the_configuration_table() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    table = doc.split("## The functions' variables", 1)[1].split("\n## ", 1)[0]
    rows = {
        line.split("|")[1].strip().strip("`")
        for line in table.splitlines()
        if line.startswith("| `")
    }
    missing = [name for name in ENVIRONMENT_VARIABLES if name not in rows]
    assert missing == []
