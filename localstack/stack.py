"""The whole backend on one machine: emulators, the Google sandbox, every function, wired.

Topics and push subscriptions are created as Terraform creates them in Google Cloud,
so a message published to ``payments`` reaches ``create_event`` the same way.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from localstack import processes
from localstack.constants import (
    ADMIN_EMAIL,
    CALENDAR_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    EVENT_TOPICS,
    PROJECT,
    REDIRECT_URI,
)

# Service-account mode: the functions' one runtime service account, delegated by the
# sandbox's Workspace domain to act as ADMIN_EMAIL on the calendar.
SERVICE_ACCOUNT = "classcal-calendar@classcal-local.iam.gserviceaccount.com"
SERVICE_ACCOUNT_KEY_SECRET = "classcal-calendar-key"  # noqa: S105 (a secret id)
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"
AUTH_MODES = ("oauth", "service_account")
# The sandbox's MercadoPago application for this local stack: not a real account's.
MERCADOPAGO_ACCESS_TOKEN = "APP_USR-classcal-local-sandbox"  # noqa: S105
MERCADOPAGO_WEBHOOK_SECRET = "classcal-local-sandbox-webhook"  # noqa: S105


def environment(
    *,
    firestore: str | None = None,
    pubsub: str | None = None,
    sandbox: str | None = None,
    redirect_uri: str = REDIRECT_URI,
    webhook_url: str | None = None,
    allowed_origins: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment every function of the local stack runs with (the one place it is built).

    ``firestore`` and ``pubsub`` are the emulators' host:port, ``sandbox`` the Google
    sandbox's URL; a part left out is not set. ``extra`` variables go on top.
    """
    env = {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "AUTH_GOOGLE_ID": CLIENT_ID,
        "AUTH_GOOGLE_SECRET": CLIENT_SECRET,
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "GOOGLE_REDIRECT_URI": redirect_uri,
        "CALENDAR_ID": CALENDAR_ID,
    }
    for name, value in (
        ("FIRESTORE_EMULATOR_HOST", firestore),
        ("PUBSUB_EMULATOR_HOST", pubsub),
        ("GOOGLE_SANDBOX_URL", sandbox),
        ("CALENDAR_WEBHOOK_URL", webhook_url),
        ("ALLOWED_ORIGINS", allowed_origins),
    ):
        if value is not None:
            env[name] = value
    return {**env, **extra}


@dataclass
class Stack:
    log_dir: Path
    firestore: processes.ManagedProcess | None = None
    pubsub: processes.ManagedProcess | None = None
    sandbox: processes.ManagedProcess | None = None
    functions: dict[str, processes.ManagedProcess] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    auth_mode: str = "oauth"
    service_account_client_id: str | None = None

    @property
    def pubsub_client(self) -> processes.PubSub:
        assert self.pubsub is not None
        return processes.PubSub(self.pubsub.url, PROJECT)

    def urls(self) -> dict[str, str]:
        assert self.firestore
        assert self.pubsub
        assert self.sandbox
        urls = {
            "Firestore emulator": f"http://{self.firestore.url}",
            "Pub/Sub emulator": f"http://{self.pubsub.url}",
            "Google sandbox": self.sandbox.url,
        }
        for name, process in sorted(self.functions.items()):
            urls[f"function {name}"] = process.url
        if "oauth_callback" in self.functions and self.auth_mode == "oauth":
            urls["connect Google (admin)"] = f"{self.functions['oauth_callback'].url}/start"
        elif "oauth_callback" in self.functions:
            urls["delegation status"] = f"{self.functions['oauth_callback'].url}/"
        if "list_events" in self.functions:
            urls["busy slots"] = self.functions["list_events"].url
        if "join_class" in self.functions:
            urls["join a group class"] = self.functions["join_class"].url
        if "payment_webhook" in self.functions:
            urls["MercadoPago webhook"] = self.functions["payment_webhook"].url
        return urls

    def stop(self) -> None:
        for process in [*self.functions.values(), self.sandbox, self.pubsub, self.firestore]:
            if process is not None:
                process.stop()


def _ports(base_port: int | None) -> Iterator[int]:
    if base_port is None:
        while True:
            yield processes.free_port()
    port = base_port
    while True:
        yield port
        port += 1


def _delegate(stack: Stack, control: object, *, with_key: bool) -> dict[str, str]:
    """Service-account mode as Terraform and the Workspace admin set it up: one service
    account, delegated the calendar scope for ADMIN_EMAIL; keyless unless ``with_key``
    (then its key file goes to Secret Manager, as an operator would store it)."""
    from sandbox.control import SandboxControl

    assert isinstance(control, SandboxControl)
    account = control.add_service_account(SERVICE_ACCOUNT, key=with_key)
    control.grant_delegation(account["client_id"], [CALENDAR_SCOPE])
    stack.service_account_client_id = account["client_id"]
    env = {"GOOGLE_AUTH_MODE": "service_account"}
    if not with_key:
        env["GOOGLE_SERVICE_ACCOUNT_EMAIL"] = SERVICE_ACCOUNT
        env["GOOGLE_SERVICE_ACCOUNT_CLIENT_ID"] = account["client_id"]
        return env
    assert stack.sandbox is not None
    base = f"{stack.sandbox.url}/v1/projects/{processes.PROJECT}/secrets"
    processes.http(
        "POST",
        f"{base}?secretId={SERVICE_ACCOUNT_KEY_SECRET}",
        body=json.dumps({"replication": {"automatic": {}}}).encode(),
    )
    data = base64.b64encode(json.dumps(account["key"]).encode()).decode()
    status, _ = processes.http(
        "POST",
        f"{base}/{SERVICE_ACCOUNT_KEY_SECRET}:addVersion",
        body=json.dumps({"payload": {"data": data}}).encode(),
    )
    if status != 200:
        raise RuntimeError(f"storing the service-account key answered HTTP {status}")
    env["GOOGLE_SERVICE_ACCOUNT_JSON"] = SERVICE_ACCOUNT_KEY_SECRET
    return env


def start(
    log_dir: Path,
    base_port: int | None = None,
    extra_env: dict[str, str] | None = None,
    *,
    auth_mode: str = "oauth",
    with_key: bool = False,
) -> Stack:
    """Start everything; on any failure stop what was started and re-raise."""
    if auth_mode not in AUTH_MODES:
        raise ValueError(f"auth_mode must be one of {', '.join(AUTH_MODES)}, got {auth_mode!r}")
    ports = _ports(base_port)
    stack = Stack(log_dir=log_dir, auth_mode=auth_mode)
    try:
        stack.sandbox = processes.start_sandbox(log_dir, next(ports))
        stack.firestore = processes.start_firestore(log_dir, next(ports))
        stack.pubsub = processes.start_pubsub(log_dir, next(ports))
        names = processes.function_names()
        function_ports = {name: next(ports) for name in names}
        url = {name: f"http://127.0.0.1:{port}" for name, port in function_ports.items()}

        from sandbox.control import SandboxControl

        control = SandboxControl(stack.sandbox.url)
        redirect_uri = f"{url.get('oauth_callback', 'http://127.0.0.1')}/callback"
        control.register_client(CLIENT_ID, CLIENT_SECRET, [redirect_uri])
        from sandbox.mercadopago.client import MercadoPagoControl

        # MercadoPago notifies the webhook of every payment change, as the application's
        # Webhooks URL makes the real one do.
        MercadoPagoControl(stack.sandbox.url).configure(
            access_token=MERCADOPAGO_ACCESS_TOKEN,
            webhook_secret=MERCADOPAGO_WEBHOOK_SECRET,
            notification_url=url.get("payment_webhook", ""),
        )

        delegated = (
            _delegate(stack, control, with_key=with_key) if auth_mode == "service_account" else {}
        )

        stack.env = environment(
            firestore=stack.firestore.url,
            pubsub=stack.pubsub.url,
            sandbox=stack.sandbox.url,
            redirect_uri=redirect_uri,
            webhook_url=url.get("calendar_webhook"),
            allowed_origins="*",
            GUEST_CHANGES_TOPIC=EVENT_TOPICS["guest_invitations"],
            # Short, so that the demo's page shows a change within seconds.
            LIST_CACHE_TTL_SECONDS="3",
            MERCADOPAGO_API_URL=stack.sandbox.url,
            MERCADOPAGO_ACCESS_TOKEN=MERCADOPAGO_ACCESS_TOKEN,
            MERCADOPAGO_WEBHOOK_SECRET=MERCADOPAGO_WEBHOOK_SECRET,
            # A fresh random key per local stack: signs the console's cookies.
            SESSION_SIGNING_KEY=secrets.token_urlsafe(32),
            **delegated,
            **(extra_env or {}),
        )
        for name in names:
            stack.functions[name] = processes.start_function(
                name, stack.env, log_dir, port=function_ports[name]
            )

        pubsub = stack.pubsub_client
        for name, topic in EVENT_TOPICS.items():
            pubsub.create_topic(topic)
            if name in stack.functions:
                pubsub.create_push_subscription(
                    f"{topic}-{name.replace('_', '-')}",
                    topic,
                    processes.push_url(stack.functions[name].url, topic),
                    ack_deadline=60,
                )
    except BaseException:
        stack.stop()
        raise
    return stack


@contextlib.contextmanager
def running(
    log_dir: Path, base_port: int | None = None, *, auth_mode: str = "oauth", with_key: bool = False
) -> Iterator[Stack]:
    stack = start(log_dir, base_port, auth_mode=auth_mode, with_key=with_key)
    previous = dict(os.environ)
    os.environ.update(stack.env)
    try:
        yield stack
    finally:
        os.environ.clear()
        os.environ.update(previous)
        stack.stop()
