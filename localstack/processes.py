"""Start, reset and stop the real local stack: emulators, the Google sandbox, functions.

Used by the tests, the benchmarks and ``./deploy.sh local``. Every process starts in
its own session (process group), so stopping it also stops what it forked (the
emulators' java processes, functions-framework's gunicorn workers). Every long-running
process is started by ``start_and_wait``: spawned, waited for until it answers HTTP,
and stopped again if it does not.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from localstack.constants import PROJECT

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"


class MissingComponent(RuntimeError):
    """A tool the local stack needs is not installed; the message says which package."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """A small HTTP call for control endpoints; returns (status, body) on any status."""
    data = None
    all_headers = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for_http(
    url: str, process: ManagedProcess | None = None, timeout: float = 60.0, method: str = "GET"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited early:\n{process.tail()}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered: it is up
        except OSError:
            time.sleep(0.02)
    tail = process.tail() if process else ""
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s\n{tail}")


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    _log: IO[bytes] | None = field(default=None, repr=False)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash, as the benchmarks inject)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        # The group may outlive its leader (java children of the emulator scripts).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace)
        if self._log is not None:
            self._log.close()
            self._log = None


def spawn(
    name: str,
    argv: list[str],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    popen = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(env if env is not None else os.environ),
        cwd=cwd or ROOT,
        start_new_session=True,
    )
    return ManagedProcess(name=name, popen=popen, log_path=log_path, _log=log)


def start_and_wait(
    name: str,
    argv: list[str],
    log_dir: Path,
    ready_url: str,
    *,
    url: str = "",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
    method: str = "GET",
) -> ManagedProcess:
    """Spawn ``argv`` and wait until ``ready_url`` answers (any HTTP status).

    If it exits first, does not answer within ``timeout`` or the wait is interrupted,
    the process group is stopped and the error re-raised with the log's tail.
    """
    process = spawn(name, argv, log_dir, env=env, cwd=cwd)
    process.url = url
    try:
        wait_for_http(ready_url, process, timeout=timeout, method=method)
    except BaseException:
        process.stop()
        raise
    return process


def _gcloud() -> str:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise MissingComponent(
            "the Google Cloud CLI is not installed: install Debian's 'google-cloud-cli' "
            "with 'google-cloud-cli-firestore-emulator' and 'google-cloud-cli-pubsub-emulator'"
        )
    return gcloud


def _emulator_launcher(folder: str, launcher: str, package: str) -> str:
    """The emulator's own launcher script in the Cloud CLI (what ``gcloud emulators ...
    start`` runs). Started directly, it saves the CLI's own Python start-up: about 1.5 s
    of CPU per emulator, which a test worker pays twice."""
    sdk_root = Path(os.path.realpath(_gcloud())).parent.parent
    path = sdk_root / "platform" / folder / launcher
    if not path.is_file():
        raise MissingComponent(
            f"the {folder} is not installed: install Debian's '{package}' "
            f"(or 'gcloud components install {folder}')"
        )
    if shutil.which("java") is None:
        raise MissingComponent("the emulators need Java: install Debian's 'default-jre-headless'")
    return str(path)


# For emulators that live a minute or two (a test session): the JVM's quick compiler
# only and one GC thread. Its optimising compiler pays off only in long runs, and on a
# small machine it competes with the tests for the CPU (the quick tier ran about 15%
# faster on 2 CPUs). The local stack and the benchmarks keep the JVM's defaults.
SHORT_RUN_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _java_env(java_options: str | None) -> dict[str, str] | None:
    if not java_options:
        return None
    return {**os.environ, "JAVA_TOOL_OPTIONS": java_options}


def start_firestore(
    log_dir: Path, port: int | None = None, java_options: str | None = None
) -> ManagedProcess:
    launcher = _emulator_launcher(
        "cloud-firestore-emulator",
        "cloud_firestore_emulator",
        "google-cloud-cli-firestore-emulator",
    )
    port = port or free_port()
    host = f"127.0.0.1:{port}"
    return start_and_wait(
        "firestore-emulator",
        # As gcloud starts it: Firestore in Native mode.
        [
            launcher,
            "start",
            "--host=127.0.0.1",
            f"--port={port}",
            "--database-mode=firestore-native",
        ],
        log_dir,
        f"http://{host}/",
        url=host,
        env=_java_env(java_options),
    )


def start_pubsub(
    log_dir: Path, port: int | None = None, java_options: str | None = None
) -> ManagedProcess:
    launcher = _emulator_launcher(
        "pubsub-emulator", "bin/cloud-pubsub-emulator", "google-cloud-cli-pubsub-emulator"
    )
    port = port or free_port()
    host = f"127.0.0.1:{port}"
    return start_and_wait(
        "pubsub-emulator",
        # Any project works on the emulator; classcal's is named in each request.
        [launcher, "--host=127.0.0.1", f"--port={port}"],
        log_dir,
        f"http://{host}/",
        url=host,
        env=_java_env(java_options),
    )


def start_sandbox(log_dir: Path, port: int | None = None) -> ManagedProcess:
    """The local Google sandbox (``python -m sandbox``), answering its health endpoint."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port)]
    return start_and_wait("sandbox", argv, log_dir, f"{url}/_sandbox/health", url=url)


def function_names() -> list[str]:
    """Every Cloud Function in functions/ (a folder with a main.py)."""
    return sorted(p.parent.name for p in FUNCTIONS.glob("*/main.py"))


def function_argv(
    target: str, source: Path, port: int, signature_type: str | None = None
) -> list[str]:
    """The functions-framework command line that serves ``target`` from ``source``."""
    argv = [
        sys.executable,
        "-m",
        "functions_framework",
        f"--target={target}",
        f"--source={source}",
        "--host=127.0.0.1",
        f"--port={port}",
    ]
    if signature_type:
        argv.append(f"--signature-type={signature_type}")
    return argv


def function_env(env: Mapping[str, str]) -> dict[str, str]:
    """A function's process environment: this one's, ``env`` on top, this repository importable."""
    return {**os.environ, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def start_function(
    name: str,
    env: Mapping[str, str],
    log_dir: Path,
    port: int | None = None,
    signature_type: str | None = None,
    source: Path | None = None,
) -> ManagedProcess:
    """Serve functions/<name>/main.py (or ``source``) under functions-framework, as Cloud
    Functions does."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    return start_and_wait(
        f"function-{name}",
        function_argv(name, source or FUNCTIONS / name / "main.py", port, signature_type),
        log_dir,
        # OPTIONS: any answer means the server is up, and no function does work for it
        # (a GET would make list_events read the calendar and cache the result).
        f"{url}/_health_probe_",
        url=url,
        env=function_env(env),
        timeout=30,
        method="OPTIONS",
    )


def reset_firestore(host: str, project: str = PROJECT) -> None:
    status, body = http(
        "DELETE", f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents"
    )
    if status != 200:
        raise RuntimeError(f"could not wipe the Firestore emulator: {status} {body[:200]!r}")


def reset_pubsub(host: str, project: str = PROJECT) -> None:
    base = f"http://{host}/v1/projects/{project}"
    for kind, key in (("subscriptions", "subscriptions"), ("topics", "topics")):
        status, body = http("GET", f"{base}/{kind}")
        if status != 200:
            raise RuntimeError(f"could not list Pub/Sub {kind}: {status}")
        for item in json.loads(body or b"{}").get(key, []):
            name = item["name"] if isinstance(item, dict) else item
            http("DELETE", f"http://{host}/v1/{name}")


@dataclass
class PubSub:
    """The Pub/Sub emulator through its REST API (the payments system's side)."""

    host: str
    project: str = PROJECT

    def create_topic(self, topic: str) -> None:
        status, body = http(
            "PUT", f"http://{self.host}/v1/projects/{self.project}/topics/{topic}", {}
        )
        if status not in (200, 409):
            raise RuntimeError(f"create topic {topic}: {status} {body[:200]!r}")

    def create_push_subscription(
        self, name: str, topic: str, push_endpoint: str, ack_deadline: int = 10
    ) -> None:
        status, body = http(
            "PUT",
            f"http://{self.host}/v1/projects/{self.project}/subscriptions/{name}",
            {
                "topic": f"projects/{self.project}/topics/{topic}",
                "pushConfig": {"pushEndpoint": push_endpoint},
                "ackDeadlineSeconds": ack_deadline,
            },
        )
        if status not in (200, 409):
            raise RuntimeError(f"create subscription {name}: {status} {body[:200]!r}")

    def publish(self, topic: str, payloads: list[bytes]) -> list[str]:
        status, body = http(
            "POST",
            f"http://{self.host}/v1/projects/{self.project}/topics/{topic}:publish",
            {"messages": [{"data": base64.b64encode(p).decode()} for p in payloads]},
        )
        if status != 200:
            raise RuntimeError(f"publish to {topic}: {status} {body[:200]!r}")
        return list(json.loads(body)["messageIds"])


def push_url(function_url: str, topic: str, project: str = PROJECT) -> str:
    """A push endpoint whose path names the topic, as functions-framework expects."""
    return f"{function_url}/projects/{project}/topics/{topic}"


def pubsub_envelope(
    data: bytes, message_id: str | None = None, subscription: str = "payments-create-event"
) -> dict[str, Any]:
    """The body a Pub/Sub push subscription posts (functions-framework converts it)."""
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": message_id or uuid.uuid4().hex,
            "publishTime": datetime.now(UTC).isoformat(),
        },
        "subscription": f"projects/{PROJECT}/subscriptions/{subscription}",
    }


def cloud_event_headers(topic: str = "payments", event_id: str | None = None) -> dict[str, str]:
    """Binary-mode CloudEvent headers of a Pub/Sub messagePublished event."""
    return {
        "ce-id": event_id or uuid.uuid4().hex,
        "ce-source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/{topic}",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-specversion": "1.0",
        "Content-Type": "application/json",
    }
