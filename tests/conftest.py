"""Fixtures: the real emulators and the Google sandbox, started once per session.

Each is started only when a test first asks for it, wiped before every test that uses
it, and its whole process group is stopped at the end of the session. Nothing imports
this file: shared helpers live in ``tests/support``, shared names in
``localstack.constants``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localstack import processes, stack
from localstack.constants import ADMIN_EMAIL, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI
from shared.core.config import reset_config
from shared.google import clients, credentials, tokens
from shared.stores import db


@pytest.fixture(scope="session")
def stack_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack-logs")


@pytest.fixture(scope="session")
def firestore_emulator(stack_logs: Path) -> Iterator[processes.ManagedProcess]:
    process = processes.start_firestore(stack_logs, java_options=processes.SHORT_RUN_JAVA_OPTIONS)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def pubsub_emulator(stack_logs: Path) -> Iterator[processes.ManagedProcess]:
    process = processes.start_pubsub(stack_logs, java_options=processes.SHORT_RUN_JAVA_OPTIONS)
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
        # MercadoPago is off unless a test turns it on (tests/support/mercadopago.py).
        "MERCADOPAGO_API_URL",
        "MERCADOPAGO_ACCESS_TOKEN",
        "MERCADOPAGO_WEBHOOK_SECRET",
        "AUTO_REFUND_ON_SLOT_TAKEN",
        # functions-framework writes this into os.environ when it loads a function:
        # left behind, it changes how the next undecorated function is served.
        "FUNCTION_SIGNATURE_TYPE",
    ):
        monkeypatch.delenv(name, raising=False)
    # The stack's environment without its servers: the fixtures below add each one.
    # No retries by default: a failure injected at Google answers at once. The tests
    # of the client's retries ask for the `google_retries` fixture.
    for name, value in stack.environment(
        GOOGLE_API_RETRIES="0", CONFERENCE_POLL_DELAYS="0.005,0.005,0.005,0.005"
    ).items():
        monkeypatch.setenv(name, value)
    _forget_caches()
    # functions_framework.create_app appends the function's folder to sys.path on every
    # call. Left there, a session's hundreds of apps make every later failed import
    # lookup (Flask asks for one per app) walk hundreds of folders.
    path = list(sys.path)
    yield monkeypatch
    sys.path[:] = path
    _forget_caches()


def _forget_caches() -> None:
    reset_config()
    clients.reset_clients()
    credentials.forget()  # the refresh-token and the service-account credentials


@pytest.fixture
def firestore(firestore_emulator: processes.ManagedProcess, env: pytest.MonkeyPatch) -> Any:
    """A Firestore client on a freshly wiped emulator."""
    env.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.url)
    processes.reset_firestore(firestore_emulator.url)
    _forget_caches()
    return db.firestore_client()


@pytest.fixture
def pubsub(pubsub_emulator: processes.ManagedProcess, env: pytest.MonkeyPatch) -> processes.PubSub:
    env.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator.url)
    processes.reset_pubsub(pubsub_emulator.url)
    return processes.PubSub(pubsub_emulator.url)


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


@pytest.fixture
def google_retries(env: pytest.MonkeyPatch) -> int:
    """For the tests of the Google client's own retries: three, each backoff short."""
    from tests.support import retries

    return retries.quick(env, 3)


@pytest.fixture
def webhook_server(
    request: pytest.FixtureRequest,
    stack_logs: Path,
    firestore_emulator: processes.ManagedProcess,
    pubsub: processes.PubSub,
    sandbox_server: processes.ManagedProcess,
    connected: Any,
) -> Iterator[Any]:
    """calendar_webhook and calendar_sync running, joined by the ``calendar-changes`` push
    subscription; new servers per test, since calendar_sync caches the admin's
    credentials and each test connects a new grant to a freshly reset sandbox."""
    from tests.support.calendar_sync import start_calendar_link

    log_dir = stack_logs / f"calendar-link-{request.module.__name__.rsplit('.', 1)[-1]}"
    link = start_calendar_link(log_dir, firestore_emulator, pubsub, sandbox_server)
    yield link
    link.stop()


@pytest.fixture(scope="module")
def lone_webhook(
    tmp_path_factory: pytest.TempPathFactory,
    firestore_emulator: processes.ManagedProcess,
    pubsub_emulator: processes.ManagedProcess,
) -> Iterator[processes.ManagedProcess]:
    """calendar_webhook alone, for the notifications it refuses or only acknowledges: it
    holds no credential, so one server serves a whole module."""
    from tests.support.calendar_sync import start_webhook_only

    log_dir = tmp_path_factory.mktemp("lone-webhook")
    server = start_webhook_only(log_dir, firestore_emulator, pubsub_emulator.url)
    yield server
    server.stop()
