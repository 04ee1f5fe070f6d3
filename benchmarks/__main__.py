"""``python -m benchmarks [SECTION ...]``: run the sections, print the table, write the JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import common

SECTIONS = (
    "burst",
    "revoked",
    "busy",
    "cold",
    "create_event",
    "list_events",
    "guard",
    "payment_webhook",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Load, faults, cold starts and per-call costs against the emulators "
        "and the sandbox.",
    )
    parser.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help=f"sections to run (default: all of {', '.join(SECTIONS)})",
    )
    parser.add_argument("--only", default="", help="the same, comma-separated")
    parser.add_argument("--bookings", type=int, default=1000, help="burst: bookings (1000)")
    parser.add_argument(
        "--burst-deadline", type=float, default=1500.0, help="burst: seconds to wait (1500)"
    )
    parser.add_argument("--revoked-bookings", type=int, default=200, help="revoked: bookings (200)")
    parser.add_argument(
        "--revoked-seconds",
        type=float,
        default=15.0,
        help="revoked: how long the grant stays revoked (15)",
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="busy: requests per server (2000)"
    )
    parser.add_argument("--clients", type=int, default=16, help="busy: concurrent clients (16)")
    parser.add_argument(
        "--events", type=int, default=200, help="busy, list_events: events in the calendar (200)"
    )
    parser.add_argument("--cold-runs", type=int, default=5, help="cold: starts per function (5)")
    parser.add_argument(
        "--warm", type=int, default=10, help="cold: warm requests after each start (10)"
    )
    parser.add_argument(
        "--create-bookings", type=int, default=200, help="create_event: bookings (200)"
    )
    parser.add_argument(
        "--create-workers", type=int, default=4, help="create_event: concurrent deliveries (4)"
    )
    parser.add_argument(
        "--list-rounds", type=int, default=300, help="list_events: timed requests per server (300)"
    )
    parser.add_argument(
        "--list-warmup", type=int, default=20, help="list_events: untimed requests per server (20)"
    )
    parser.add_argument(
        "--guard-bookings", type=int, default=100, help="guard: bookings with and without (100)"
    )
    parser.add_argument("--guard-pairs", type=int, default=10, help="guard: clashing pairs (10)")
    parser.add_argument(
        "--guard-changes", type=int, default=20, help="guard: calendar changes followed (20)"
    )
    parser.add_argument(
        "--notifications",
        type=int,
        default=100,
        help="payment_webhook: signed notifications (100)",
    )
    parser.add_argument("--logs", type=Path, default=None, help="folder for every process's log")
    parser.add_argument("--output", type=Path, default=common.RESULTS, help="JSON results file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    only = [s.strip() for s in [*args.sections, *args.only.split(",")] if s.strip()]
    only = list(dict.fromkeys(only)) or list(SECTIONS)
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
        return 2
    log_dir = args.logs or Path(tempfile.mkdtemp(prefix="classcal-benchmarks-"))
    common.say(f"starting the emulators and the sandbox (logs in {log_dir}) ...")
    began = time.monotonic()
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sections": {},
    }
    problems: list[str] = []
    previous = dict(os.environ)
    _quiet_logs()
    lab = common.Lab.start(log_dir)
    try:
        for section in only:
            common.say(f"section {section} ...")
            section_began = time.monotonic()
            figures, failed = _run(section, lab, args)
            figures["section_seconds"] = round(time.monotonic() - section_began, 1)
            results["sections"][section] = figures
            problems.extend(failed)
            common.say(f"section {section} done in {figures['section_seconds']} s")
    finally:
        lab.stop()
        os.environ.clear()
        os.environ.update(previous)
    results["total_seconds"] = round(time.monotonic() - began, 1)
    results["problems"] = problems
    print(render(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(_merged(args.output, results), indent=2, default=str) + "\n")
    print(f"\nwritten to {args.output}")
    if problems:
        print("\nFAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


def _merged(path: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Sections this run did not measure keep their last figures, each with its own date."""
    for figures in results["sections"].values():
        figures.setdefault("measured_at", results["measured_at"])
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return results
    kept = {
        name: figures
        for name, figures in (earlier.get("sections") or {}).items()
        if name not in results["sections"] and isinstance(figures, dict)
    }
    for figures in kept.values():
        figures.setdefault("measured_at", earlier.get("measured_at"))
    return {**results, "sections": {**kept, **results["sections"]}}


def _quiet_logs() -> None:
    """shared/'s log lines from this process go to stderr, warnings only: stdout is the table."""
    import logging

    os.environ["LOG_LEVEL"] = "WARNING"
    from shared.core.logs import configure_logging

    configure_logging()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


def _run(
    section: str, lab: common.Lab, args: argparse.Namespace
) -> tuple[dict[str, Any], list[str]]:
    if section == "burst":
        from benchmarks import burst

        figures = burst.run(lab, args.bookings, args.burst_deadline)
        return figures, common.assert_correct(figures, "burst")
    if section == "revoked":
        from benchmarks import revoked

        figures = revoked.run(lab, args.revoked_bookings, args.revoked_seconds)
        return figures, common.assert_correct(figures, "revoked")
    if section == "busy":
        from benchmarks import busy

        figures = busy.run(lab, args.requests, args.clients, args.events)
        return figures, busy.problems(figures)
    if section == "create_event":
        from benchmarks import create_event

        figures = create_event.run(lab, args.create_bookings, args.create_workers)
        return figures, create_event.problems(figures)
    if section == "guard":
        from benchmarks import guard

        figures = guard.run(lab, args.guard_bookings, args.guard_pairs, args.guard_changes)
        return figures, guard.problems(figures)
    if section == "list_events":
        from benchmarks import list_events

        figures = list_events.run(lab, args.events, args.list_rounds, args.list_warmup)
        return figures, list_events.problems(figures)
    if section == "payment_webhook":
        from benchmarks import payment_webhook

        figures = payment_webhook.run(lab, args.notifications)
        return figures, payment_webhook.problems(figures)
    from benchmarks import cold

    figures = cold.run(lab, args.cold_runs, args.warm)
    return figures, cold.problems(figures)


def render(results: dict[str, Any]) -> str:
    """The human-readable table of every section that ran."""
    from benchmarks import table

    return table.render(results)


if __name__ == "__main__":
    raise SystemExit(main())
