"""The table printed at the end of a run: a few fixed-width lines per section that ran.

The JSON file keeps every figure; this is what a reader compares at a glance. A
section whose figures do not have the expected shape is printed as JSON instead, so a
change in one section never costs the run its table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

LABEL = 46  # width of the label column of key/value rows


def render(results: Mapping[str, Any]) -> str:
    lines = [
        f"classcal benchmarks: {results.get('measured_at', '?')}, {results.get('cpus', '?')} CPUs, "
        f"Python {results.get('python', '?')}, {_num(results.get('total_seconds'))} s in all"
    ]
    renderers: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
        "burst": _burst,
        "revoked": _revoked,
        "busy": _busy,
        "cold": _cold,
        "create_event": _create_event,
        "list_events": _list_events,
        "payment_webhook": _payment_webhook,
    }
    for name, figures in (results.get("sections") or {}).items():
        lines.append("")
        try:
            lines.extend(renderers[name](figures))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            lines.append(f"{name}:")
            lines.extend("  " + line for line in json.dumps(figures, indent=2).splitlines())
    problems = results.get("problems")
    if problems is not None:
        lines.append("")
        lines.append("correctness: " + ("every promise kept" if not problems else "FAILED"))
        lines.extend(f"  {problem}" for problem in problems)
    return "\n".join(lines)


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:  # NaN: nothing was measured
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def _row(label: str, value: str) -> str:
    return f"  {label:<{LABEL}} {value}"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items()) or "none"


def _bookings(f: Mapping[str, Any]) -> list[str]:
    """The correctness rows burst and revoked share."""
    return [
        _row(
            "scheduled / complete / events in calendar",
            f"{f['bookings_scheduled']} / {f['bookings_complete']} / {f['events_in_calendar']}"
            f"  (of {f['bookings']})",
        ),
        _row(
            "duplicates / lost / half-written",
            f"{f['duplicates']} / {f['lost']} / {f['half_written']}",
        ),
    ]


def _burst(f: Mapping[str, Any]) -> list[str]:
    inserts = f["calendar_insert_requests"]
    return [
        f"burst: {f['bookings']} approved payments, each published 3 times, Calendar faults "
        f"fired {f['calendar_faults_fired']} times, SIGKILL at {_num(f['killed_at_seconds'])} s",
        *_bookings(f),
        _row(
            "Calendar inserts per booking",
            f"{_num(f['calendar_inserts_per_booking'], 3)}  ({inserts} insert requests, "
            f"{f['calendar_get_requests']} gets)",
        ),
        _row("token refreshes / secret reads", f"{f['token_refreshes']} / {f['secret_reads']}"),
        _row(
            "wall time / bookings per second",
            f"{_num(f['wall_seconds'])} s / {_num(f['bookings_per_second'])}"
            f"  (restart took {_num(f['restart_seconds'], 2)} s)",
        ),
        _row("deliveries handled", f"{f['deliveries_handled']}: {_counts(f['delivery_outcomes'])}"),
        _row("retries by reason", _counts(f["retry_reasons"])),
    ]


def _revoked(f: Mapping[str, Any]) -> list[str]:
    return [
        f"revoked: {f['bookings']} bookings, the admin's grant revoked for "
        f"{_num(f['revoked_for_seconds'])} s, then reconnected through oauth_callback",
        *_bookings(f),
        _row(
            "bookings caught by the revocation",
            f"{f['affected_bookings']}  ({f['bookings_waiting_for_admin_at_reconnect']} "
            "showed admin_reconnect_required at reconnection)",
        ),
        _row(
            "their wait: median / max",
            f"{_num(f['affected_wait_median_seconds'])} s"
            f" / {_num(f['affected_wait_max_seconds'])} s",
        ),
        _row(
            "all of them done after reconnecting in",
            f"{_num(f['all_affected_done_after_reconnect_seconds'])} s"
            f"  (reconnecting took {_num(f['reconnect_seconds'], 2)} s)",
        ),
        _row(
            "token refreshes / secret reads / inserts",
            f"{f['token_refreshes']} / {f['secret_reads']} / {f['calendar_insert_requests']}",
        ),
        _row("retries by reason", _counts(f["retry_reasons"])),
    ]


def _busy(f: Mapping[str, Any]) -> list[str]:
    servers = f["servers"]
    ttl = _num(f["cache_ttl_seconds"], 0)
    names = {
        "list_events": f"list_events, TTL {ttl} s",
        "list_events_uncached": "list_events, TTL 0",
        "bare": "bare function",
    }
    lines = [
        f"busy: {f['requests_per_server']} GETs per server from {f['clients']} clients "
        f"in {f['rounds']} rounds; {f['events']} events, {f['busy_slots']} busy slots",
        f"  {'server':<24}{'req/s':>8}{'x bare':>8}{'median ms':>11}{'x bare':>8}"
        f"{'p99 ms':>9}{'x bare':>8}{'list calls':>12}{'non-200':>9}",
    ]
    for key, data in servers.items():
        calls = (
            f"{data['calendar_list_calls']} (+{data['calendar_list_calls_at_start_and_warm_up']})"
        )
        lines.append(
            f"  {names.get(key, key):<24}{_num(data['requests_per_second']):>8}"
            f"{_num(data['throughput_ratio_to_bare'], 2):>8}{_num(data['median_ms'], 2):>11}"
            f"{_num(data['median_ratio_to_bare'], 2):>8}{_num(data['p99_ms'], 2):>9}"
            f"{_num(data['p99_ratio_to_bare'], 2):>8}"
            f"{calls:>12}"
            f"{data['non_200']:>9}"
        )
    lines.append(
        "  list calls: under load (+ at start-up and warm-up); with TTL 0 concurrent misses "
        "still share one read"
    )
    return lines


def _cold(f: Mapping[str, Any]) -> list[str]:
    lines = [
        f"cold start: median of {f['runs']} starts, spawn to first answer; then "
        f"{f['warm_requests']} warm requests",
        f"  {'function':<22}{'first ms':>10}{'x bare':>8}{'listen ms':>11}{'1st req ms':>12}"
        f"{'peak MB':>9}{'x bare':>8}{'warm ms':>9}{'status':>8}",
    ]
    for name, data in f["functions"].items():
        lines.append(
            f"  {name:<22}{_num(data['first_response_ms'], 0):>10}"
            f"{_num(data['first_response_ratio_to_bare'], 2):>8}"
            f"{_num(data['listening_ms'], 0):>11}{_num(data['first_request_ms'], 0):>12}"
            f"{_num(data['peak_rss_mb']):>9}{_num(data['peak_rss_ratio_to_bare'], 2):>8}"
            f"{_num(data['warm_median_ms'], 1):>9}{_num(data['first_status']):>8}"
        )
    lines.append(
        "  listen: the port accepts (imports done); 1st req: the first request's own work; "
        "peak MB: master + worker"
    )
    return lines


def _create_event(f: Mapping[str, Any]) -> list[str]:
    workers = f["workers"]
    rows = [
        ("bookings (sequential / concurrent)", f"{f['bookings']} / {f['bookings']}"),
        ("bookings/s, sequential", _num(f["sequential_bookings_per_second"])),
        (f"bookings/s, {workers} concurrent deliveries", _num(f["concurrent_bookings_per_second"])),
        ("median ms per booking (function)", _num(f["median_ms_per_booking"])),
        ("p90 ms per booking (function)", _num(f["p90_ms_per_booking"])),
        ("median ms per booking (bare minimum)", _num(f["bare_median_ms_per_booking"])),
        ("ratio function / bare", _num(f["ratio_to_bare"], 2)),
        ("Calendar calls per booking", _num(f["calendar_calls_per_booking"], 2)),
        ("Secret Manager calls per booking", _num(f["secret_manager_calls_per_booking"], 3)),
        ("Secret Manager calls in all", _num(f["secret_manager_calls_total"])),
        (
            f"Meet pending at insert ({f['pending_conference_bookings']}): median ms",
            _num(f["pending_conference_median_ms"]),
        ),
        (
            "Meet pending at insert: Calendar calls each",
            _num(f["pending_conference_calendar_calls_per_booking"], 2),
        ),
    ]
    given = 2 * f["bookings"] + f["pending_conference_bookings"]
    return [
        f"create_event: per booking, against the bare minimum made with the client libraries; "
        f"{f['scheduled']} of {given} scheduled",
        *(_row(label, value) for label, value in rows),
    ]


def _list_events(f: Mapping[str, Any]) -> list[str]:
    lines = [
        f"list_events: {f['busy_slots']} busy slots, {f['rounds']} interleaved requests per "
        "server from one client",
        f"  {'server':<24} {'median ms':>10} {'p90 ms':>10} {'x bare':>8}",
    ]
    for name, data in f["targets"].items():
        lines.append(
            f"  {name:<24} {_num(data['median_ms'], 2):>10} {_num(data['p90_ms'], 2):>10}"
            f" {_num(data['ratio_to_bare'], 2):>8}"
        )
    return lines


def _payment_webhook(f: Mapping[str, Any]) -> list[str]:
    return [
        f"payment_webhook: {f['notifications']} signed notifications, each beside the bare "
        "minimum (payment read, booking read, publish)",
        _row(
            "median ms, webhook / bare",
            f"{_num(f['webhook_median_ms'], 2)} / {_num(f['bare_median_ms'], 2)}"
            f"  (ratio {_num(f['ratio'], 2)})",
        ),
        _row("p95 ms, webhook", _num(f["webhook_p95_ms"], 2)),
        _row("first notification of the instance, ms", _num(f["first_notification_ms"], 1)),
        _row(
            "bad signature: ms / MercadoPago reads",
            f"{_num(f['bad_signature_ms'], 2)} / {f['mercadopago_reads_for_bad_signature']}",
        ),
    ]
