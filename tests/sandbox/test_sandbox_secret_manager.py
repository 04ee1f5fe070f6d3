"""Secret Manager through the real SecretManagerServiceClient over REST."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as core_exceptions
from google.api_core.retry import Retry, if_exception_type
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

PROJECT = "classcal-sandbox"
PARENT = f"projects/{PROJECT}"
NAME = f"{PARENT}/secrets/admin-refresh-token"
# Short retries: the default one waits up to a minute.
QUICK = Retry(
    initial=0.01,
    maximum=0.05,
    multiplier=2,
    timeout=3,
    predicate=if_exception_type(core_exceptions.ServiceUnavailable),
)
NO_RETRY = Retry(initial=0.01, maximum=0.01, timeout=0.1, predicate=lambda _exc: False)


@pytest.fixture
def client(sandbox) -> secretmanager.SecretManagerServiceClient:
    return secretmanager.SecretManagerServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": sandbox.url},
    )


def create(client, secret_id: str = "admin-refresh-token") -> secretmanager.Secret:
    return client.create_secret(
        request={
            "parent": PARENT,
            "secret_id": secret_id,
            "secret": {"replication": {"automatic": {}}},
        }
    )


def add(client, data: bytes, name: str = NAME) -> secretmanager.SecretVersion:
    return client.add_secret_version(request={"parent": name, "payload": {"data": data}})


def access(client, version: str = "latest") -> secretmanager.AccessSecretVersionResponse:
    return client.access_secret_version(request={"name": f"{NAME}/versions/{version}"}, retry=QUICK)


def test_create_add_and_access_latest(sandbox, client):
    secret = create(client)
    first = add(client, b"1//0first")
    second = add(client, b"1//0second")

    latest = access(client)
    pinned = access(client, "1")

    assert secret.name == NAME
    assert first.name == f"{NAME}/versions/1"
    assert second.name == f"{NAME}/versions/2"
    assert second.state == secretmanager.SecretVersion.State.ENABLED
    assert latest.name == f"{NAME}/versions/2"
    assert latest.payload.data == b"1//0second"
    assert pinned.payload.data == b"1//0first"
    stats = sandbox.stats()["requests"]
    assert stats["secretmanager.projects.secrets.create"] == 1
    assert stats["secretmanager.projects.secrets.addVersion"] == 2
    assert stats["secretmanager.projects.secrets.versions.access"] == 2


def test_crc32c_is_the_castagnoli_checksum(client):
    create(client)
    add(client, b"123456789")

    assert access(client).payload.data_crc32c == 0xE3069283


def test_create_twice_is_already_exists(client):
    create(client)

    with pytest.raises(core_exceptions.Conflict) as raised:
        create(client)

    assert raised.value.response.json()["error"]["status"] == "ALREADY_EXISTS"


def test_bad_secret_id_is_invalid_argument(client):
    with pytest.raises(core_exceptions.BadRequest):
        create(client, "has spaces!")


def test_missing_secret_is_not_found(client):
    with pytest.raises(core_exceptions.NotFound):
        access(client)


def test_payload_over_64_kib_is_rejected(client):
    create(client)
    add(client, b"x" * 65536)

    with pytest.raises(core_exceptions.BadRequest) as raised:
        add(client, b"x" * 65537)

    assert raised.value.response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_disabled_latest_fails_precondition_then_enable(client):
    create(client)
    add(client, b"old")
    add(client, b"new")

    disabled = client.disable_secret_version(request={"name": f"{NAME}/versions/2"})
    with pytest.raises(core_exceptions.BadRequest) as raised:
        access(client)
    older = access(client, "1")
    client.enable_secret_version(request={"name": f"{NAME}/versions/2"})
    again = access(client)

    assert disabled.state == secretmanager.SecretVersion.State.DISABLED
    error = raised.value.response.json()["error"]
    assert error == {
        "code": 400,
        "message": f"Secret Version [{NAME}/versions/2] is in DISABLED state.",
        "status": "FAILED_PRECONDITION",
    }
    assert older.payload.data == b"old"
    assert again.payload.data == b"new"


def test_destroy_drops_the_data_for_good(client):
    create(client)
    add(client, b"secret")

    destroyed = client.destroy_secret_version(request={"name": f"{NAME}/versions/1"})
    with pytest.raises(core_exceptions.BadRequest) as access_error:
        access(client, "1")
    with pytest.raises(core_exceptions.BadRequest) as enable_error:
        client.enable_secret_version(request={"name": f"{NAME}/versions/1"})

    assert destroyed.state == secretmanager.SecretVersion.State.DESTROYED
    assert destroyed.destroy_time is not None
    assert "DESTROYED state" in access_error.value.response.json()["error"]["message"]
    assert enable_error.value.response.json()["error"]["status"] == "FAILED_PRECONDITION"


def test_list_versions_newest_first_with_state_filter(client):
    create(client)
    for data in (b"a", b"b", b"c"):
        add(client, data)
    client.disable_secret_version(request={"name": f"{NAME}/versions/2"})

    every = [
        v.name.rsplit("/", 1)[1] for v in client.list_secret_versions(request={"parent": NAME})
    ]
    enabled = [
        v.name.rsplit("/", 1)[1]
        for v in client.list_secret_versions(request={"parent": NAME, "filter": "state:ENABLED"})
    ]

    assert every == ["3", "2", "1"]
    assert enabled == ["3", "1"]


def test_get_version_latest_and_get_secret_and_list_and_delete(client):
    create(client)
    create(client, "other")
    add(client, b"v1")

    version = client.get_secret_version(request={"name": f"{NAME}/versions/latest"})
    secret = client.get_secret(request={"name": NAME})
    names = [s.name for s in client.list_secrets(request={"parent": PARENT})]
    client.delete_secret(request={"name": f"{PARENT}/secrets/other"})
    after = [s.name for s in client.list_secrets(request={"parent": PARENT})]

    assert version.name == f"{NAME}/versions/1"
    assert secret.replication.automatic is not None
    assert names == [NAME, f"{PARENT}/secrets/other"]
    assert after == [NAME]


def test_unavailable_is_retried_by_the_client(sandbox, client):
    create(client)
    add(client, b"value")
    sandbox.fault("GET", r":access$", 503, "UNAVAILABLE", count=2)

    result = access(client)

    assert result.payload.data == b"value"
    assert sandbox.stats()["requests"]["secretmanager.projects.secrets.versions.access"] == 3


def test_fault_body_uses_cloud_shape(sandbox, client):
    create(client)
    sandbox.fault("POST", r":addVersion$", 429, None, message="Quota exceeded")

    with pytest.raises(core_exceptions.TooManyRequests) as raised:
        client.add_secret_version(
            request={"parent": NAME, "payload": {"data": b"x"}}, retry=NO_RETRY
        )

    assert raised.value.response.json() == {
        "error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}
    }
