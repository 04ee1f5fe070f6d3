"""The whole backend on one machine: emulators, the Google sandbox, every function, wired.

Topics and push subscriptions are created as Terraform creates them in Google Cloud,
so a message published to ``payments`` reaches ``create_event`` the same way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from localstack import processes

CLIENT_ID = "classcal-local.apps.googleusercontent.com"
# The sandbox's OAuth client for this local stack: not a secret of any real account.
CLIENT_SECRET = "classcal-local-sandbox-client"  # noqa: S105
ADMIN_EMAIL = "admin@school.test"

# Which Pub/Sub topic feeds which event function (as infra/ wires them).
EVENT_TOPICS = {
    "create_event": "payments",
    "calendar_maintenance": "calendar-maintenance",
}


@dataclass
class Stack:
    log_dir: Path
    firestore: processes.ManagedProcess | None = None
    pubsub: processes.ManagedProcess | None = None
    sandbox: processes.ManagedProcess | None = None
    functions: dict[str, processes.ManagedProcess] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pubsub_client(self) -> processes.PubSub:
        assert self.pubsub is not None
        return processes.PubSub(self.pubsub.url, processes.PROJECT)

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
        if "oauth_callback" in self.functions:
            urls["connect Google (admin)"] = f"{self.functions['oauth_callback'].url}/start"
        if "list_events" in self.functions:
            urls["busy slots"] = self.functions["list_events"].url
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


def start(
    log_dir: Path, base_port: int | None = None, extra_env: dict[str, str] | None = None
) -> Stack:
    """Start everything; on any failure stop what was started and re-raise."""
    ports = _ports(base_port)
    stack = Stack(log_dir=log_dir)
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

        stack.env = {
            "GOOGLE_CLOUD_PROJECT": processes.PROJECT,
            "FIRESTORE_EMULATOR_HOST": stack.firestore.url,
            "PUBSUB_EMULATOR_HOST": stack.pubsub.url,
            "GOOGLE_SANDBOX_URL": stack.sandbox.url,
            "AUTH_GOOGLE_ID": CLIENT_ID,
            "AUTH_GOOGLE_SECRET": CLIENT_SECRET,
            # A fresh random key per local stack: signs the console's cookies.
            "SESSION_SIGNING_KEY": secrets.token_urlsafe(32),
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "GOOGLE_REDIRECT_URI": redirect_uri,
            "CALENDAR_ID": "primary",
            "ALLOWED_ORIGINS": "*",
            "OAUTHLIB_INSECURE_TRANSPORT": "1",
            **(
                {"CALENDAR_WEBHOOK_URL": url["calendar_webhook"]}
                if "calendar_webhook" in url
                else {}
            ),
            **(extra_env or {}),
        }
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
def running(log_dir: Path, base_port: int | None = None) -> Iterator[Stack]:
    stack = start(log_dir, base_port)
    previous = dict(os.environ)
    os.environ.update(stack.env)
    try:
        yield stack
    finally:
        os.environ.clear()
        os.environ.update(previous)
        stack.stop()
