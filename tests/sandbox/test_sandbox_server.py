"""The sandbox as a process and as an in-process server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.control import SandboxControl
from sandbox.server import SandboxServer, make_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def in_process() -> Iterator[SandboxServer]:
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)


def test_process_prints_its_url_and_stops_cleanly_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        start_new_session=True,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"sandbox listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match is not None, line
        SandboxControl(match.group(1)).wait_until_ready(5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert process.stdout.read() == ""
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_in_process_server_serves_and_stops(in_process):
    control = SandboxControl(in_process.url)

    control.wait_until_ready(5)

    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", in_process.url)
    assert control.health() == {"status": "ok"}


def test_schema_violations_are_listed_in_stats(in_process):
    control = SandboxControl(in_process.url)

    in_process.app._check_schema("calendar.events.get", {"id": 1, "meetLink": "x"})

    assert control.stats()["schema_violations"] == [
        {"method": "calendar.events.get", "path": "id", "problem": "expected string, got number"},
        {
            "method": "calendar.events.get",
            "path": "meetLink",
            "problem": "field not defined by the schema",
        },
    ]
    control.reset()
    assert control.stats()["schema_violations"] == []


def test_concurrent_requests_are_served(sandbox):
    results: list[int] = []

    def fetch() -> None:
        results.append(requests.get(f"{sandbox.url}/oauth2/v3/certs", timeout=5).status_code)

    # Each answer waits 0.4 s: served one at a time, 8 would take 3.2 s.
    sandbox.fault(None, r"^/oauth2/v3/certs$", 0, delay=0.4, count=8)
    threads = [threading.Thread(target=fetch) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [200] * 8
    assert time.monotonic() - started < 2.0
    assert sandbox.stats()["faults_fired"] == 8


def test_control_rejects_bad_input(sandbox):
    bad_fault = requests.post(f"{sandbox.url}/_sandbox/faults", json={"path": "("}, timeout=5)
    bad_knob = requests.post(f"{sandbox.url}/_sandbox/oauth", json={"nope": 1}, timeout=5)
    bad_outcome = requests.post(
        f"{sandbox.url}/_sandbox/conference", json={"outcome": "maybe"}, timeout=5
    )

    assert bad_fault.status_code == 400
    assert bad_knob.status_code == 400
    assert bad_outcome.status_code == 400
