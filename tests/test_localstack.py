"""The harness itself: emulators answer, are wiped between tests, and stop cleanly."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from localstack import processes


def test_firestore_is_wiped_between_tests_part_one(firestore) -> None:
    firestore.collection("probe").document("a").set({"n": 1})
    assert firestore.collection("probe").document("a").get().exists


def test_firestore_is_wiped_between_tests_part_two(firestore) -> None:
    assert list(firestore.collection("probe").stream()) == []


def test_pubsub_topics_are_wiped_between_tests(pubsub: processes.PubSub) -> None:
    status, body = processes.http(
        "GET", f"http://{pubsub.host}/v1/projects/{pubsub.project}/topics"
    )
    assert status == 200
    assert b"payments" not in body
    pubsub.create_topic("payments")
    assert pubsub.publish("payments", [b"{}"])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    process = processes.start_pubsub(tmp_path)
    pgid = process.popen.pid
    assert _group_alive(pgid)

    process.stop()

    deadline = time.monotonic() + 5
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(pgid)


def test_a_missing_emulator_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes.shutil, "which", lambda _name: None)

    with pytest.raises(processes.MissingComponent, match="google-cloud-cli"):
        processes.start_firestore(Path("/tmp"))
