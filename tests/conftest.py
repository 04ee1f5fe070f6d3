"""Fixtures: the real emulators and the Google sandbox, started once per session.

Each is started only when a test first asks for it, wiped before every test that uses
it, and its whole process group is stopped at the end of the session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localstack import processes
from localstack.processes import cloud_event_headers, pubsub_envelope
from shared.core.config import reset_config
from shared.google import clients, tokens
from shared.stores import db

PROJECT = processes.PROJECT
__all__ = ["cloud_event_headers", "pubsub_envelope"]  # tests import them from here
CLIENT_ID = "classcal-test.apps.googleusercontent.com"
CLIENT_SECRET = "sandbox-client-secret"  # the sandbox's client, not a real secret
ADMIN_EMAIL = "admin@school.test"
REDIRECT_URI = "http://127.0.0.1:8080/callback"


@pytest.fixture(scope="session")
def stack_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack-logs")


@pytest.fixture(scope="session")
def firestore_emulator(stack_logs: Path) -> Iterator[processes.ManagedProcess]:
    process = processes.start_firestore(stack_logs)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def pubsub_emulator(stack_logs: Path) -> Iterator[processes.ManagedProcess]:
    process = processes.start_pubsub(stack_logs)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def sandbox_server(stack_logs: Path) -> Iterator[processes.ManagedProcess]:
    process = processes.start_sandbox(stack_logs)
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A known environment per test; cached configuration and clients are forgotten."""
    for name in (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "CALENDAR_API_KEY",
        "ALLOWED_ORIGINS",
        "BASE_URL",
        "CALENDAR_WEBHOOK_URL",
        "FIRESTORE_EMULATOR_HOST",
        "PUBSUB_EMULATOR_HOST",
        "GOOGLE_SANDBOX_URL",
        # MercadoPago is off unless a test turns it on (tests/mercadopago_support.py).
        "MERCADOPAGO_API_URL",
        "MERCADOPAGO_ACCESS_TOKEN",
        "MERCADOPAGO_WEBHOOK_SECRET",
        "AUTO_REFUND_ON_SLOT_TAKEN",
        # functions-framework writes this into os.environ when it loads a function:
        # left behind, it changes how the next undecorated function is served.
        "FUNCTION_SIGNATURE_TYPE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("AUTH_GOOGLE_ID", CLIENT_ID)
    monkeypatch.setenv("AUTH_GOOGLE_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("ADMIN_EMAIL", ADMIN_EMAIL)
    monkeypatch.setenv("GOOGLE_REDIRECT_URI", REDIRECT_URI)
    monkeypatch.setenv("CALENDAR_ID", "primary")
    # Retries are real, their sleeps short: the library's backoff is random() * 2**n s.
    monkeypatch.setenv("GOOGLE_API_RETRIES", "3")
    monkeypatch.setenv("CONFERENCE_POLL_DELAYS", "0.05,0.05,0.05,0.05")
    _forget_caches()
    yield monkeypatch
    _forget_caches()


def _forget_caches() -> None:
    reset_config()
    clients.reset_clients()
    tokens.forget_admin_credentials()


@pytest.fixture
def firestore(firestore_emulator: processes.ManagedProcess, env: pytest.MonkeyPatch) -> Any:
    """A Firestore client on a freshly wiped emulator."""
    env.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.url)
    processes.reset_firestore(firestore_emulator.url, PROJECT)
    _forget_caches()
    return db.firestore_client()


@pytest.fixture
def pubsub(pubsub_emulator: processes.ManagedProcess, env: pytest.MonkeyPatch) -> processes.PubSub:
    env.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.url)
    processes.reset_pubsub(pubsub_emulator.url, PROJECT)
    return processes.PubSub(pubsub_emulator.url, PROJECT)


@pytest.fixture
def sandbox(sandbox_server: processes.ManagedProcess, env: pytest.MonkeyPatch) -> Iterator[Any]:
    """The sandbox, reset, with classcal's OAuth client registered; checks its schemas after."""
    from sandbox.control import SandboxControl

    control = SandboxControl(sandbox_server.url)
    control.reset()
    control.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
    env.setenv("GOOGLE_SANDBOX_URL", sandbox_server.url)
    _forget_caches()
    yield control
    assert control.stats()["schema_violations"] == []


@pytest.fixture
def connected(sandbox: Any, firestore: Any) -> dict[str, Any]:
    """The school's Google account connected: a refresh token stored in Secret Manager."""
    granted = sandbox.issue_token(ADMIN_EMAIL, CLIENT_ID, clients.CALENDAR_SCOPE)
    tokens.store_refresh_token(granted["refresh_token"])
    tokens.forget_admin_credentials()
    return granted


def payment_message(**fields: Any) -> bytes:
    return json.dumps(fields).encode()
