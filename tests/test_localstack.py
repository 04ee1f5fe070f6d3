"""The harness itself: emulators answer, are wiped between tests, and stop cleanly."""

from __future__ import annotations

import ast
import importlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from localstack import processes


def test_the_firestore_wipe_empties_every_collection(firestore, env) -> None:
    # One test, not two that rely on running one after the other (they may run on
    # different pytest-xdist workers): write, wipe as the fixture does, look again.
    firestore.collection("probe").document("a").set({"n": 1})
    firestore.collection("probe").document("a").collection("nested").document("b").set({})
    assert firestore.collection("probe").document("a").get().exists

    processes.reset_firestore(os.environ["FIRESTORE_EMULATOR_HOST"])

    assert list(firestore.collection("probe").stream()) == []
    assert (
        not firestore.collection("probe")
        .document("a")
        .collection("nested")
        .document("b")
        .get()
        .exists
    )


def test_the_pubsub_wipe_deletes_topics_and_subscriptions(pubsub: processes.PubSub) -> None:
    base = f"http://{pubsub.host}/v1/projects/{pubsub.project}"
    pubsub.create_topic("payments")
    pubsub.create_push_subscription("probe", "payments", "http://127.0.0.1:9/")
    assert pubsub.publish("payments", [b"{}"])

    processes.reset_pubsub(pubsub.host)

    for kind in ("topics", "subscriptions"):
        status, body = processes.http("GET", f"{base}/{kind}")
        assert status == 200
        assert b"payments" not in body
        assert b"probe" not in body


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


@pytest.mark.parametrize(
    ("start", "package"),
    [
        (processes.start_firestore, "google-cloud-cli-firestore-emulator"),
        (processes.start_pubsub, "google-cloud-cli-pubsub-emulator"),
    ],
    ids=["firestore", "pubsub"],
)
def test_a_cloud_cli_without_the_emulator_names_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: Any, package: str
) -> None:
    gcloud = tmp_path / "google-cloud-sdk" / "bin" / "gcloud"
    gcloud.parent.mkdir(parents=True)
    gcloud.write_text("#!/bin/sh\n")
    gcloud.chmod(0o755)
    (tmp_path / "google-cloud-sdk" / "platform").mkdir()
    monkeypatch.setattr(processes.shutil, "which", lambda name: str(gcloud))

    with pytest.raises(processes.MissingComponent, match=package):
        start(tmp_path / "logs")


def test_every_name_the_benchmarks_and_the_stack_import_exists() -> None:
    """The benchmarks are not run by CI; their imports (many inside functions, which a
    plain import of the module does not reach) must still name what exists."""
    root = Path(__file__).resolve().parents[1]
    ours = ("shared", "localstack", "sandbox", "benchmarks")
    missing, seen = [], 0
    for folder in ("benchmarks", "localstack"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
                    continue
                if node.module.split(".")[0] not in ours:
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    seen += 1
                    if hasattr(module, alias.name):
                        continue
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        missing.append(f"{path.relative_to(root)}: {node.module}.{alias.name}")
    assert seen > 20, "found almost no imports: the reader is broken"
    assert missing == []
