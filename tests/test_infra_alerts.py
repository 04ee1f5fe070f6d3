"""Terraform for telling the admin (infra/monitoring.tf) and for the console's session key.

Read like tests/test_infra.py reads the rest of infra/: the HCL parsed with python-hcl2,
each rule checked against what the functions really log.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from shared.core.errors import AdminReconnectRequired
from tests.test_infra import (
    DEPLOY_ENV,
    INFRA,
    ROOT,
    Terraform,
    _bin_with,
    _deploy,
    expr,
    load_terraform,
)

MONITORING = INFRA / "monitoring.tf"


@pytest.fixture(scope="module")
def tf() -> Terraform:
    return load_terraform(INFRA)


def one(block: object) -> dict:  # type: ignore[type-arg]
    """A nested block: python-hcl2 gives a list of one."""
    if isinstance(block, list):
        [block] = block
    assert isinstance(block, dict)
    return block


def _source(path: str) -> str:
    return (ROOT / path).read_text()


def test_the_alerts_have_their_own_file_and_email_the_admin(tf: Terraform) -> None:
    text = MONITORING.read_text()
    assert "google_monitoring_alert_policy" in text
    for other in INFRA.glob("*.tf"):
        if other != MONITORING:
            assert "google_monitoring_alert_policy" not in other.read_text(), other.name
    channel = tf.resource("google_monitoring_notification_channel", "admin_email")
    assert channel["type"] == "email"
    assert expr(channel["labels"]["email_address"]) == "var.admin_email"
    assert "monitoring.googleapis.com" in expr(tf.locals["apis"])


def test_each_log_metric_matches_what_the_functions_log(tf: Terraform) -> None:
    filters = tf.locals["log_metric_filters"]
    assert set(filters) == {"google_connection_refused", "bookings_failed", "channel_not_renewed"}
    # The connection refused: the error code every function logs as its reason.
    assert f'jsonPayload.reason="{AdminReconnectRequired.code}"' in filters[
        "google_connection_refused"
    ].replace('\\"', '"')
    # A booking failed for good: scheduling logs outcome=failed with the booking id.
    failed = filters["bookings_failed"].replace('\\"', '"')
    assert 'jsonPayload.outcome="failed"' in failed
    assert "jsonPayload.booking_id:*" in failed
    assert "severity>=ERROR" in failed
    assert '"outcome": "failed"' in _source("shared/domain/scheduling.py")
    # The watch channel not renewed: maintenance's channel step failing.
    assert 'jsonPayload.step="channel"' in filters["channel_not_renewed"].replace('\\"', '"')
    assert '_step(result, "channel"' in _source("shared/domain/maintenance.py")
    assert '"step": name' in _source("shared/domain/maintenance.py")
    metric = tf.resource("google_logging_metric", "classcal")
    assert expr(metric["for_each"]) == "local.log_metric_filters"
    assert 'resource.type="cloud_run_revision"' in metric["filter"].replace('\\"', '"')
    assert "local.classcal_services" in metric["filter"]
    assert one(metric["metric_descriptor"])["metric_kind"] == "DELTA"


def test_every_alert_notifies_the_admin_and_says_what_to_do(tf: Terraform) -> None:
    log_based = tf.resource("google_monitoring_alert_policy", "log_based")
    dead = tf.resource("google_monitoring_alert_policy", "payments_dead_lettered")
    assert expr(log_based["for_each"]) == "local.log_metric_filters"
    thresholds = {}
    for name, policy in (("log_based", log_based), ("dead", dead)):
        assert expr(policy["notification_channels"][0]).endswith(
            "google_monitoring_notification_channel.admin_email.id"
        )
        threshold = one(one(policy["conditions"])["condition_threshold"])
        assert threshold["comparison"] == "COMPARISON_GT"
        assert threshold["threshold_value"] == 0
        thresholds[name] = threshold["filter"].replace('\\"', '"')
    assert (
        "logging.googleapis.com/user/${google_logging_metric.classcal[each.key].name}"
        in (thresholds["log_based"])
    )
    assert "pubsub.googleapis.com/subscription/num_undelivered_messages" in thresholds["dead"]
    assert "google_pubsub_subscription.payments_dead_letter_hold.name" in thresholds["dead"]
    docs = tf.locals["alert_documentation"]
    assert set(docs) == set(tf.locals["log_metric_filters"])
    for name, text in docs.items():
        assert "${local.console_url}" in text, name
        assert "Open the console" in text, name
    assert "Reconnect Google" in docs["google_connection_refused"]
    assert "Retry now" in docs["bookings_failed"]
    documentation = one(dead["documentation"])
    assert "${local.console_url}" in documentation["content"]
    assert tf.locals["console_url"] == "${local.functions_base_url}/oauth_callback/"


def test_the_session_key_lives_in_secret_manager_never_in_terraform_state(tf: Terraform) -> None:
    secret = tf.resource("google_secret_manager_secret", "session_key")
    assert expr(secret["secret_id"]) == "var.session_key_secret_id"
    # The sources are a merge (MercadoPago's secrets join when enabled); the key is in
    # the part that is always there.
    assert "SESSION_SIGNING_KEY = google_secret_manager_secret.session_key.secret_id" in expr(
        tf.locals["secret_environment_sources"]
    )
    specs = tf.locals["function_specs"]
    for name, spec in specs.items():
        wanted = "SESSION_SIGNING_KEY" in expr(spec["secrets"])
        assert wanted == (name == "oauth_callback"), name
    for path in INFRA.rglob("*.tf"):
        assert "google_secret_manager_secret_version" not in path.read_text(), path.name


def test_deploy_creates_a_random_session_key_with_gcloud_only(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    gcloud = tmp_path / "gcloud"
    gcloud.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}/gcloud\n'
        'case "$*" in\n'
        f'  *"versions add"*) cat > {calls}/stdin-$(echo "$*" | cut -d" " -f4);;\n'
        "esac\n"
        "exit 0\n"
    )
    gcloud.chmod(0o755)
    terraform = tmp_path / "terraform"
    terraform.write_text(f'#!/bin/sh\necho "$*" >> {calls}/terraform\nexit 0\n')
    terraform.chmod(0o755)
    tools = _bin_with(tmp_path, {})
    for fake in (gcloud, terraform):
        (Path(tools) / fake.name).symlink_to(fake)
    env = {
        "PATH": f"{tools}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "GOOGLE_OAUTH_ACCESS_TOKEN": "probe",
        "AUTH_GOOGLE_SECRET": "probe-client-secret",
        **DEPLOY_ENV,
    }
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")

    result = _deploy(["apply"], env)

    assert result.returncode == 0, result.stderr
    gcloud_calls = (calls / "gcloud").read_text()
    assert "secrets versions add classcal-session-signing-key" in gcloud_calls
    key = (calls / "stdin-classcal-session-signing-key").read_text()
    assert len(key) >= 32
    terraform_calls = (calls / "terraform").read_text()
    assert key not in terraform_calls
    assert "-target=google_secret_manager_secret.session_key" in terraform_calls
    assert key not in result.stdout + result.stderr
