"""Section ``revoked``: the admin's grant revoked mid-run, then reconnected for real.

A third of the payments are published, the admin's grant is revoked at the sandbox
(as "Remove access" in the Google account would), another third is published while
it stays revoked, then the admin reconnects through the real oauth_callback function
and the sandbox's consent page (``/start``, Allow, ``/callback``), which stores a new
secret version; the last third follows. Every booking must end scheduled, exactly once,
and the figures say how long the ones caught by the revocation waited.
"""

from __future__ import annotations

import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from benchmarks import common
from localstack import processes
from localstack.constants import PAYMENTS

LEASE_SECONDS = 10
ACK_DEADLINE = 60


def run(lab: common.Lab, bookings_count: int, revoked_seconds: float) -> dict[str, Any]:
    from localstack import demo
    from localstack.stack import Stack

    oauth_port = processes.free_port()
    oauth_url = f"http://127.0.0.1:{oauth_port}"
    redirect_uri = f"{oauth_url}/callback"
    lab.reset(redirect_uris=[redirect_uri])
    granted = lab.connect_admin()
    control = lab.control
    db = lab.db()
    bookings = common.write_bookings(db, bookings_count, "revoked")

    env = lab.env(SCHEDULING_LEASE_SECONDS=str(LEASE_SECONDS), GOOGLE_REDIRECT_URI=redirect_uri)
    create_event = lab.start_function("create_event", env, tag="revoked-create-event")
    oauth = lab.start_function("oauth_callback", env, port=oauth_port, tag="revoked-oauth")
    running = [create_event, oauth]
    try:
        pubsub = lab.pubsub_client
        pubsub.create_topic(PAYMENTS)
        pubsub.create_push_subscription(
            "payments-create-event",
            PAYMENTS,
            processes.push_url(create_event.url, PAYMENTS),
            ack_deadline=ACK_DEADLINE,
        )
        before = control.stats()
        third = max(1, bookings_count // 3)
        stretches = [bookings[:third], bookings[third : 2 * third], bookings[2 * third :]]
        published: dict[str, datetime] = {}

        def publish(group: list[common.Booking], seconds: float) -> None:
            """Publish ``group`` spread over ``seconds``, ten messages at a time."""
            slices = [group[i : i + 10] for i in range(0, len(group), 10)]
            pause = seconds / max(1, len(slices))
            for piece in slices:
                pubsub.publish(PAYMENTS, [common.approved(b) for b in piece])
                now = datetime.now(UTC)
                for booking in piece:
                    published[booking.booking_id] = now
                time.sleep(pause)

        started_at = datetime.now(UTC)
        publish(stretches[0], 3.0)
        revoked_at = datetime.now(UTC)
        status, _ = processes.http(
            "POST",
            f"{lab.sandbox.url}/revoke?"
            + urllib.parse.urlencode({"token": granted["refresh_token"]}),
        )
        if status != 200:
            raise RuntimeError(f"the sandbox did not revoke the grant: HTTP {status}")
        common.say(f"  revoked: grant revoked; publishing for {revoked_seconds:.0f} s")
        publish(stretches[1], revoked_seconds)
        waiting = _waiting_for_admin(db)
        reconnect_began = time.monotonic()
        demo.connect_admin(Stack(log_dir=lab.log_dir, functions={"oauth_callback": oauth}))
        reconnected_at = datetime.now(UTC)
        reconnect_seconds = time.monotonic() - reconnect_began
        common.say("  revoked: reconnected through oauth_callback")
        publish(stretches[2], 3.0)
        met, _ = common.wait_until(
            lambda: common.count_scheduled(db, "revoked-") >= bookings_count or "waiting",
            timeout=180.0,
            poll=0.5,
        )
        after = control.stats()
    finally:
        for process in running:
            process.stop()

    from shared.google import tokens

    versions = tokens.list_versions()
    figures = common.check_bookings(db, control, "revoked-", bookings)
    stored = common.bookings_by_id(db, "revoked-")
    affected: list[float] = []
    after_reconnect: list[float] = []
    for booking_id, data in stored.items():
        done = data.get("scheduledAt")
        sent = published.get(booking_id)
        if not isinstance(done, datetime) or sent is None:
            continue
        if done > revoked_at and sent < reconnected_at:
            affected.append((done - sent).total_seconds())
            after_reconnect.append((done - reconnected_at).total_seconds())
    outcomes = common.delivery_outcomes([p.log_path for p in running], "create_event")["retries"]
    figures.update(
        {
            "all_scheduled_before_deadline": met,
            "revoked_for_seconds": round((reconnected_at - revoked_at).total_seconds(), 1),
            "reconnect_seconds": round(reconnect_seconds, 2),
            "bookings_waiting_for_admin_at_reconnect": waiting,
            "affected_bookings": len(affected),
            "affected_wait_median_seconds": round(common.median(affected), 1),
            "affected_wait_max_seconds": round(max(affected, default=float("nan")), 1),
            "all_affected_done_after_reconnect_seconds": round(
                max(after_reconnect, default=float("nan")), 1
            ),
            "retries_admin_reconnect_required": outcomes.get("admin_reconnect_required", 0),
            "retry_reasons": outcomes,
            "secret_versions": len(versions),
            "secret_versions_enabled": sum(1 for v in versions if v.state == "ENABLED"),
            "token_refreshes": common.delta(after, before, common.TOKEN),
            "secret_reads": common.delta(after, before, common.SECRET_READ),
            "calendar_insert_requests": common.delta(after, before, common.INSERT),
            "wall_seconds": round(_last_done(stored, started_at), 1),
        }
    )
    return figures


def _waiting_for_admin(db: Any) -> int:
    """Bookings that show, right now, that they wait for the admin to reconnect."""
    return sum(
        1
        for s in db.collection("virtualClasses").stream()
        if s.id.startswith("revoked-")
        and (s.to_dict() or {}).get("schedulingReason") == "admin_reconnect_required"
        and (s.to_dict() or {}).get("status") != "scheduled"
    )


def _last_done(stored: dict[str, dict[str, Any]], started_at: datetime) -> float:
    times = [
        d["scheduledAt"] for d in stored.values() if isinstance(d.get("scheduledAt"), datetime)
    ]
    return (max(times) - started_at).total_seconds() if times else float("nan")
