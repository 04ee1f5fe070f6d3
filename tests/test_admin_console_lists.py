"""The console's other two lists, reached the way the bookings really get there: refunds
made (a refund in MercadoPago, and classcal's own refund of a taken slot) and group
classes whose guests are not yet invited, with "Invite now".

oauth_callback, create_event and join_class run in functions-framework's real apps; the
payments and refunds go through the sandbox's MercadoPago; bookings live in the
Firestore emulator.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.group_classes import (
    attendee_emails,
    call,
    event,
    join_app,
    scheduled_group_class,
    student,
)
from tests.support.mercadopago import configure_mercadopago
from tests.support.scheduling import (
    app_client,
    deliver,
    next_class_start,
    payment,
    read_booking,
    write_booking,
)
from tests.test_admin_console import _key  # noqa: F401 (its session key, autouse)
from tests.test_oauth_callback import csrf_of, sign_in, text


@pytest.fixture
def console(connected: Any, firestore: Any) -> Any:
    import functions_framework

    from tests.test_oauth_callback import SOURCE

    client = functions_framework.create_app("oauth_callback", str(SOURCE)).test_client()
    assert sign_in(client).status_code == 303
    return client


def _section(page: str, anchor: str) -> str:
    found = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert found, f"no {anchor} section"
    return found.group(1)


def _ids(section: str, kind: str) -> list[str]:
    return re.findall(rf'id="{kind}-([^"]+)"', section)


def test_refunds_made_are_listed_newest_first_with_what_was_paid(
    console: Any, firestore: Any, sandbox: Any, env: pytest.MonkeyPatch
) -> None:
    from shared.domain import console as console_rules

    mp = configure_mercadopago(env, sandbox.url)
    # 1. A scheduled class the school refunds in MercadoPago.
    refunded = write_booking(firestore)
    paid = mp.create_payment(
        amount=16500,
        currency="ARS",
        external_reference=refunded.booking_id,
        preference_id=refunded.preference_id,
    )
    approved = payment(
        refunded.preference_id, paymentId=str(paid["id"]), amount=16500, currency="ARS"
    )
    assert deliver(app_client(), approved) == 200
    mp.set_status(paid["id"], "refunded")
    refund = payment(refunded.preference_id, "refunded", **_ids_of(paid))
    assert deliver(app_client(), refund) == 200
    # 2. A second student paid for that same time: classcal refunds them.
    start = next_class_start(days=5)
    first = write_booking(firestore, start=start)
    taken = write_booking(firestore, start=start)
    assert deliver(app_client(), payment(first.preference_id)) == 200
    second_paid = mp.create_payment(
        amount=15000,
        currency="ARS",
        external_reference=taken.booking_id,
        preference_id=taken.preference_id,
    )
    assert (
        deliver(
            app_client(),
            payment(taken.preference_id, **_ids_of(second_paid), amount=15000, currency="ARS"),
        )
        == 200
    )
    # 3. Cancelled, but not by a refund: not listed.
    other = write_booking(firestore)
    assert deliver(app_client(), payment(other.preference_id)) == 200
    assert deliver(app_client(), payment(other.preference_id, "cancelled")) == 200

    assert read_booking(firestore, refunded.booking_id)["cancellationReason"] == "refunded"
    assert read_booking(firestore, taken.booking_id)["schedulingReason"] == "slot_taken_refunded"
    page = text(console.get("/"))
    refunds = _section(page, "refunds")
    assert _ids(refunds, "refund") == [taken.booking_id, refunded.booking_id]
    assert f"MercadoPago payment {paid['id']}" in refunds
    assert "16,500.00 ARS" in refunds
    assert console_rules.REFUNDS["slot_taken_refunded"] in refunds
    assert "refunded in full automatically" in refunds
    assert other.booking_id not in page
    # Neither is a booking that needs a person.
    assert _ids(_section(page, "problems"), "booking") == []

    # Paged like the other lists.
    env.setattr(console_rules, "PAGE_SIZE", 1)
    first_page = text(console.get("/"))
    cursor = re.search(r'href="[^"]*\?refunds_after=([^"#]+)#refunds"', first_page)
    assert cursor
    assert _ids(_section(first_page, "refunds"), "refund") == [taken.booking_id]
    second_page = text(console.get(f"/?refunds_after={cursor.group(1)}"))
    assert _ids(_section(second_page, "refunds"), "refund") == [refunded.booking_id]


def _ids_of(paid: dict[str, Any]) -> dict[str, str]:
    return {"paymentId": str(paid["id"])}


def test_guests_not_yet_invited_are_listed_and_invite_now_invites_each_once(
    console: Any, firestore: Any, sandbox: Any
) -> None:
    group = scheduled_group_class(firestore, seats=4)
    ana = student(firestore, sandbox, "ana")
    # The join is recorded; its nudge to guest_invitations never arrives (no topic here).
    assert call(join_app(), ana.token, {"accessCode": group.code}).status_code == 200
    sandbox.fault("calendar.events.patch", "", status=503, reason="backendError", count=None)
    csrf = csrf_of(console)

    listed = _section(text(console.get("/")), "guests")
    assert _ids(listed, "guests") == [group.booking_id]
    assert "1 guest to invite" in listed
    assert ana.email not in listed  # the console says how many, not who

    failed = console.post("/invite", data={"csrf": csrf, "booking": group.booking_id})
    assert failed.status_code == 303
    assert "invited=waiting" in failed.headers["Location"]
    still = _section(text(console.get("/?invited=waiting")), "guests")
    assert _ids(still, "guests") == [group.booking_id]
    assert "google_unavailable" in still
    assert ana.email not in attendee_emails(sandbox, group.event_id)

    sandbox.clear_faults()
    invited = console.post("/invite", data={"csrf": csrf, "booking": group.booking_id})
    again = console.post("/invite", data={"csrf": csrf, "booking": group.booking_id})

    assert "invited=invited" in invited.headers["Location"]
    assert "invited=idle" in again.headers["Location"]
    assert attendee_emails(sandbox, group.event_id).count(ana.email) == 1
    patches = [
        e
        for e in event(sandbox, group.event_id)["sandbox"]["sendUpdates"]
        if e["method"] == "calendar.events.patch"
    ]
    assert len(patches) == 1
    after = text(console.get("/?invited=invited"))
    assert "in step with its Calendar event" in after
    assert _ids(_section(after, "guests"), "guests") == []
    assert read_booking(firestore, group.booking_id)["guestSyncPending"] is False


@pytest.mark.parametrize("csrf", ["", "forged-token"])
def test_invite_now_with_a_forged_csrf_token_invites_nobody(
    console: Any, firestore: Any, sandbox: Any, csrf: str
) -> None:
    group = scheduled_group_class(firestore, seats=4)
    ana = student(firestore, sandbox, "ana")
    assert call(join_app(), ana.token, {"accessCode": group.code}).status_code == 200

    answer = console.post("/invite", data={"csrf": csrf, "booking": group.booking_id})

    assert answer.status_code == 403
    assert ana.email not in attendee_emails(sandbox, group.event_id)
    assert read_booking(firestore, group.booking_id)["guestSyncPending"] is True


@pytest.mark.parametrize("booking", ["", "no-such-class", "../virtualClasses", "x" * 2000])
def test_invite_now_for_no_class_is_told_so_and_touches_nothing(
    console: Any, firestore: Any, sandbox: Any, booking: str
) -> None:
    answer = console.post("/invite", data={"csrf": csrf_of(console), "booking": booking})

    assert answer.status_code == 303
    assert "invited=gone" in answer.headers["Location"]
    assert sandbox.stats()["requests"].get("calendar.events.patch", 0) == 0
