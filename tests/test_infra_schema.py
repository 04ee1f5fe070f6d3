"""infra/ against the hashicorp/google provider's own schema: what `terraform validate` says.

The schema comes from the pinned package of scripts/provider-schema-requirements.txt,
downloaded by the first run and cached (scripts/provider_schema.py); the check is
scripts/terraform_check.py. Without the package the tests skip, saying why, except in CI
(CI=true), where they fail: CI must not pass without the check.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any, NoReturn

import hcl2
import pytest

from scripts import provider_schema, terraform_check
from scripts.terraform_check import Problem

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MODULE_MAIN = "infra/modules/cloud_function/main.tf"
FUNCTIONS_TF = "infra/functions.tf"

# The first run downloads the package (49 MB) and builds the cache.
pytestmark = pytest.mark.timeout(600)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _stop(error: provider_schema.SchemaUnavailable) -> NoReturn:
    """Without the schema the test skips saying why, or in CI fails."""
    message = f"the provider schema ({provider_schema.requirement()}) is unavailable: {error}"
    if _in_ci():
        pytest.fail(f"{message}\nCI runs this check: it may not be skipped")
    pytest.skip(message)


@pytest.fixture(scope="session")
def schema() -> dict[str, Any]:
    try:
        return provider_schema.load()
    except provider_schema.SchemaUnavailable as error:
        _stop(error)


# --- infra/ as it is ---------------------------------------------------------------------


def test_infra_has_no_problem_against_the_provider_schema(schema: dict[str, Any]) -> None:
    # Timed as a warm run pays for it: the cached schema read, every file parsed, checked.
    terraform_check.parse_cache_clear()
    started = time.monotonic()
    checker = terraform_check.check(INFRA, provider_schema.load())
    elapsed = time.monotonic() - started

    assert checker.problems == [], "\n".join(map(str, checker.problems))
    assert elapsed < 15, f"the check took {elapsed:.1f} s"
    # Every google_* block of infra/ and of its module was checked, not skipped.
    declared = set()
    for path in INFRA.rglob("*.tf"):
        for kind, type_, name in re.findall(
            r'^(resource|data) "(google_\w+)" "(\w+)"', path.read_text(), re.M
        ):
            declared.add(f"{'data.' if kind == 'data' else ''}{type_}.{name}")
    assert declared
    assert declared | {"provider.google"} == set(checker.checked)


def test_infra_pins_the_provider_release_the_schema_describes(schema: dict[str, Any]) -> None:
    major, minor, _ = schema["provider_version"].split(".")
    assert schema["package"] == "@cdktf/provider-google@16.12.1"
    assert schema["provider_version"] == "6.50.0"
    pinned = sorted([INFRA / "versions.tf", *INFRA.glob("modules/*/versions.tf")])
    assert len(pinned) >= 2
    for path in pinned:
        parsed = hcl2.loads(path.read_text(), serialization_options=terraform_check.HCL)
        [terraform] = parsed["terraform"]
        [providers] = terraform["required_providers"]
        # "~> 6.50.0" admits 6.50.x only: a patch release keeps the schema, a minor one
        # may add or rename arguments, so it moves together with the package.
        assert providers["google"]["version"] == f"~> {major}.{minor}.0", path


# --- planted mistakes: the check can fail --------------------------------------------


def _planted(
    tmp_path: Path, schema: dict[str, Any], file: str, edits: list[tuple[str, str]]
) -> list[str]:
    """The problems of a copy of infra/ where each (old, new) of `edits` is made in `file`."""
    shutil.copytree(INFRA, tmp_path / "infra", ignore=shutil.ignore_patterns(".terraform"))
    path = tmp_path / file
    text = path.read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"{file} no longer holds the text this test edits: {old!r}"
        text = text.replace(old, new)
    path.write_text(text)
    problems = terraform_check.check(tmp_path / "infra", schema, base=tmp_path).problems
    return [str(p) for p in problems]


OIDC_TOKEN = """
    oidc_token {
      service_account_email = var.pubsub_trigger.invoker_service_email
      audience              = google_cloudfunctions2_function.this.service_config[0].uri
    }
"""

PLANTED = {
    "unknown argument": (
        MODULE_MAIN,
        [
            (
                "ingress_settings               = var.ingress",
                "ingress_setting                = var.ingress",
            )
        ],
        [
            f"{MODULE_MAIN}: google_cloudfunctions2_function.this.service_config[0]"
            ".ingress_setting: unknown argument (did you mean ingress_settings?)"
        ],
    ),
    "unknown argument in a dynamic block's content": (
        MODULE_MAIN,
        [
            (
                'version = "latest"',
                'version = "latest"\n        versions = ["latest"]',
            )
        ],
        [
            f"{MODULE_MAIN}: google_cloudfunctions2_function.this.service_config[0]"
            ".dynamic.secret_environment_variables.content.versions:"
            " unknown argument (did you mean version?)"
        ],
    ),
    "misplaced block": (
        MODULE_MAIN,
        [
            (OIDC_TOKEN, ""),
            ("  push_config {", OIDC_TOKEN.replace("\n    ", "\n  ") + "\n  push_config {"),
        ],
        [f"{MODULE_MAIN}: google_pubsub_subscription.push.oidc_token: unknown block"],
    ),
    "argument written as a block": (
        MODULE_MAIN,
        [
            (
                'ttl = "" # never expires while idle',
                "ttl {\n    }",
            )
        ],
        [
            f"{MODULE_MAIN}: google_pubsub_subscription.push.expiration_policy[0].ttl:"
            " is an argument, not a block: write `ttl = ...`"
        ],
    ),
    "block written as an argument": (
        MODULE_MAIN,
        [
            (
                "retry_policy {",
                "retry_policy = {",
            )
        ],
        [
            f"{MODULE_MAIN}: google_pubsub_subscription.push.retry_policy:"
            " is a block, not an argument: write `retry_policy { ... }`"
        ],
    ),
    "missing required argument": (
        MODULE_MAIN,
        [
            (
                "  topic   = var.pubsub_trigger.topic\n",
                "",
            )
        ],
        [f"{MODULE_MAIN}: google_pubsub_subscription.push.topic: missing required argument"],
    ),
    "missing required argument of a nested block": (
        MODULE_MAIN,
        [
            (
                '    push_endpoint = "${google_cloudfunctions2_function.this.service_config[0].uri}'
                '/projects/${var.project_id}/topics/${local.topic_name}"\n',
                "",
            )
        ],
        [
            f"{MODULE_MAIN}: google_pubsub_subscription.push.push_config[0].push_endpoint:"
            " missing required argument"
        ],
    ),
    "unknown resource type": (
        "infra/iam.tf",
        [
            (
                'resource "google_cloud_run_v2_service_iam_member" "invoker" {',
                'resource "google_cloud_run_v2_service_iam_members" "invoker" {',
            )
        ],
        [
            "infra/iam.tf: google_cloud_run_v2_service_iam_members.invoker: unknown resource"
            " type google_cloud_run_v2_service_iam_members"
            " (did you mean google_cloud_run_v2_service_iam_member?)"
        ],
    ),
    "unknown provider argument": (
        "infra/versions.tf",
        [("  default_labels = var.labels", "  default_label = var.labels")],
        [
            "infra/versions.tf: provider.google.default_label: unknown argument"
            " (did you mean default_labels?)"
        ],
    ),
    "unknown data source argument and attribute": (
        "infra/pubsub.tf",
        [
            ("  project_id = var.project_id\n}", "  project = var.project_id\n}"),
            ("data.google_project.this.number", "data.google_project.this.numbr"),
        ],
        [
            "infra/pubsub.tf: data.google_project.this.project: unknown argument"
            " (did you mean project_id?)",
            "infra/pubsub.tf: locals.pubsub_service_agent: data.google_project.this.numbr:"
            " data.google_project.this has no attribute numbr (did you mean number?)",
        ],
    ),
    "unknown module argument": (
        FUNCTIONS_TF,
        [
            (
                "  memory          = each.value.memory\n",
                "  memory          = each.value.memory\n  min_instance    = 1\n",
            )
        ],
        [
            f"{FUNCTIONS_TF}: module.function.min_instance:"
            " ./modules/cloud_function has no variable min_instance"
            " (did you mean min_instances?)"
        ],
    ),
    "missing required module variable": (
        FUNCTIONS_TF,
        [
            (
                "  entry_point           = each.value.entry_point\n",
                "",
            )
        ],
        [f"{FUNCTIONS_TF}: module.function.entry_point: missing required variable"],
    ),
    "unknown attribute referenced": (
        "infra/modules/cloud_function/outputs.tf",
        [
            (
                "google_cloudfunctions2_function.this.url\n",
                "google_cloudfunctions2_function.this.uri\n",
            )
        ],
        [
            "infra/modules/cloud_function/outputs.tf: output.url.value:"
            " google_cloudfunctions2_function.this.uri:"
            " google_cloudfunctions2_function.this has no attribute uri (did you mean url?)"
        ],
    ),
    "unknown nested attribute referenced": (
        "infra/modules/cloud_function/outputs.tf",
        [
            (
                "google_cloudfunctions2_function.this.service_config[0].uri\n",
                "google_cloudfunctions2_function.this.service_config[0].url\n",
            )
        ],
        [
            "infra/modules/cloud_function/outputs.tf: output.service_uri.value:"
            " google_cloudfunctions2_function.this.service_config[0].url:"
            " the block has no attribute url (did you mean uri?)"
        ],
    ),
    "undeclared resource referenced": (
        FUNCTIONS_TF,
        [
            (
                "google_storage_bucket.sources.name\n",
                "google_storage_bucket.source.name\n",
            )
        ],
        [
            f"{FUNCTIONS_TF}: module.function.source_bucket: google_storage_bucket.source.name"
            " refers to google_storage_bucket.source, declared nowhere here"
        ],
    ),
    "unknown module output referenced": (
        "infra/pubsub.tf",
        [
            (
                "module.function[each.key].subscription_name",
                "module.function[each.key].subscription",
            )
        ],
        [
            "infra/pubsub.tf: google_pubsub_subscription_iam_member.dead_letter_source"
            ".subscription: module.function[each.key].subscription: module function has no"
            " output subscription (did you mean subscription_name?)"
        ],
    ),
}


@pytest.mark.parametrize("mistake", list(PLANTED))
def test_a_planted_mistake_is_reported_with_its_file_and_path(
    mistake: str, schema: dict[str, Any], tmp_path: Path
) -> None:
    file, edits, expected = PLANTED[mistake]

    assert _planted(tmp_path, schema, file, edits) == expected


def test_a_repeated_block_of_at_most_one_is_reported(
    schema: dict[str, Any], tmp_path: Path
) -> None:
    twice = '  expiration_policy {\n    ttl = ""\n  }\n\n  expiration_policy {'
    problems = _planted(tmp_path, schema, MODULE_MAIN, [("  expiration_policy {", twice)])

    assert problems == [
        f"{MODULE_MAIN}: google_pubsub_subscription.push.expiration_policy:"
        " is a block of at most one, given 2"
    ]


def test_the_problem_reads_as_file_path_and_message() -> None:
    problem = Problem("infra/x.tf", "google_x.y.z", "unknown argument")

    assert str(problem) == "infra/x.tf: google_x.y.z: unknown argument"


# --- without the package ---------------------------------------------------------------


def test_without_the_package_ci_fails_and_a_laptop_skips_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip with no configuration, and an index where nothing listens.
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    (tmp_path / "pip.conf").write_text("")
    (tmp_path / "no-wheels").mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "pip.conf"))
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{_free_port()}/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels"))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PROVIDER_SCHEMA_CACHE", str(tmp_path / "cache"))

    with pytest.raises(provider_schema.SchemaUnavailable) as unavailable:
        provider_schema.load()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as in_ci:
        _stop(unavailable.value)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception) as laptop:
        _stop(unavailable.value)

    for stopped in (in_ci, laptop):
        message = str(stopped.value)
        assert "the provider schema (cdktf-cdktf-provider-google==16.12.1) is unavailable" in (
            message
        )
        assert "pip download cdktf-cdktf-provider-google==16.12.1 failed" in message
    assert "CI runs this check: it may not be skipped" in str(in_ci.value)
    assert not (tmp_path / "cache").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
