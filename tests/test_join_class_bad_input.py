"""join_class and guest_invitations swept with hostile input (hypothesis), through
functions-framework's real apps against the emulators and the sandbox: every answer is
a clear 4xx (never a 5xx or a traceback), nothing of a class changes, and a malformed
guest-change message is acknowledged, not retried."""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from localstack.constants import PROJECT
from localstack.processes import cloud_event_headers
from shared.stores import bookings
from tests.support.group_classes import guests_app, join_app, stored_group_class, student

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "classcal-hypothesis")
SWEEP = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcnow:DeprecationWarning")

ODD = ["", " ", "null", "%00", "\\", '"', "' OR '1'='1", "../..", "__name__", "ÿ" * 10]
text = st.one_of(st.text(max_size=40), st.sampled_from(ODD), st.text(min_size=500, max_size=600))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"accessCode": json_values}).map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda code: f'{{"accessCode": {code}}}'.encode(), st.sampled_from(["1e999", "[" * 3000])
    ),
    st.just(b"{" * 5000),
    st.just(b'{"accessCode": "' + b"A" * 5000 + b'"}'),
)
HEADER_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
authorizations = st.one_of(
    st.none(),
    st.text(HEADER_CHARS, max_size=60),
    st.sampled_from(["Bearer", "Bearer ", "bearer a.b.c", "Bearer eyJ.eyJ.x", "Basic Zm9v"]),
    st.text(HEADER_CHARS, min_size=1, max_size=40).map(lambda t: f"Bearer {t}.{t}.{t}"),
    st.just("VALID"),  # replaced by a real student's token
)
methods = st.sampled_from(["POST", "DELETE", "GET", "PUT", "PATCH", "OPTIONS", "FOO"])


def _classes(db: Any) -> dict[str, Any]:
    found = {}
    for collection in (bookings.BOOKINGS, bookings.ACTIVITIES, bookings.USERS):
        for snapshot in db.collection(collection).stream():
            found[f"{collection}/{snapshot.id}"] = snapshot.to_dict()
    return found


@pytest.fixture
def seeded(connected: Any, firestore: Any, sandbox: Any) -> Any:
    group = stored_group_class(firestore)
    ana = student(firestore, sandbox, "ana")
    return join_app(), firestore, ana, group


@SWEEP
@given(method=methods, body=bodies, authorization=authorizations, origin=st.one_of(st.none(), text))
@pytest.mark.slow
def test_join_class_answers_any_request_with_a_clear_4xx_and_changes_no_class(
    seeded: Any, method: str, body: bytes, authorization: str | None, origin: str | None
) -> None:
    client, firestore, ana, _group = seeded
    before = _classes(firestore)
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = (
            f"Bearer {ana.token}" if authorization == "VALID" else authorization
        )
    if origin is not None and origin.isprintable() and "\n" not in origin:
        headers["Origin"] = origin.encode("latin-1", "ignore").decode("latin-1")

    response = client.open("/", method=method, data=body, headers=headers)

    assert response.status_code < 500, (response.status_code, response.get_data()[:300])
    assert b"Traceback" not in response.get_data()
    if method != "OPTIONS" and response.status_code != 405:
        assert response.is_json
        assert "reason" in response.get_json()
    assert _classes(firestore) == before


@SWEEP
@given(data=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
@pytest.mark.slow
def test_a_malformed_guest_change_is_acknowledged_without_effect(
    connected: Any, firestore: Any, data: bytes
) -> None:
    client = guests_app()
    envelope = {
        "message": {"data": base64.b64encode(data).decode(), "messageId": "probe"},
        "subscription": f"projects/{PROJECT}/subscriptions/probe",
    }

    response = client.post("/", json=envelope, headers=cloud_event_headers("guest-changes"))

    # Unknown bookings and malformed nudges alike: nothing pending, nothing to retry.
    assert response.status_code == 200
    assert list(firestore.collection(bookings.BOOKINGS).stream()) == []
