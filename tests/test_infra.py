"""Offline checks of the deployment: the Terraform in infra/ and the function bundles.

No Terraform provider can be downloaded here, so ``terraform init``/``validate`` cannot
run. What can be checked offline is: formatting (``terraform fmt``), the rules of the
issue read from the parsed configuration (python-hcl2), checkov's policies, and each
bundle that ``./deploy.sh package`` builds, served alone by functions-framework from a
fresh virtualenv.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from localstack import processes
from shared.core.config import ENVIRONMENT_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MODULE = INFRA / "modules" / "cloud_function"
FUNCTIONS = ROOT / "functions"
FUNCTION_NAMES = sorted(p.parent.name for p in FUNCTIONS.glob("*/main.py"))


def _load_packager() -> Any:
    """scripts/package.py, the packager ./deploy.sh package runs (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("package", ROOT / "scripts" / "package.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


package = _load_packager()


# --- what each function needs: the table ---------------------------------------


@dataclass(frozen=True)
class Needs:
    trigger: str  # "http", or "pubsub" for a CloudEvent function fed by `topic`
    topic: str | None
    public: bool
    firestore: str  # "none" | "read" | "readwrite"
    refresh_token: str  # "none" | "read" | "rotate"
    secrets: frozenset[str]  # environment variables read from Secret Manager
    publishes: frozenset[str] = frozenset()  # topics it may publish to


# Both functions that schedule may refund a slot-taken MercadoPago booking.
REFUNDER_SECRETS = frozenset({"AUTH_GOOGLE_SECRET", "MERCADOPAGO_ACCESS_TOKEN"})
NEEDS = {
    "create_event": Needs("pubsub", "payments", False, "readwrite", "read", REFUNDER_SECRETS),
    # Busy slots come from the Firestore mirror: read-only Firestore, no token, no secret.
    "list_events": Needs("http", None, True, "read", "none", frozenset()),
    # The console signs its session cookies with SESSION_SIGNING_KEY.
    "oauth_callback": Needs(
        "http",
        None,
        True,
        "readwrite",
        "rotate",
        frozenset({"AUTH_GOOGLE_SECRET", "SESSION_SIGNING_KEY"}),
    ),
    # Public, and so holding no Google token and no secret: it checks the channel in
    # Firestore and publishes the change for calendar_sync.
    "calendar_webhook": Needs(
        "http", None, True, "readwrite", "none", frozenset(), frozenset({"calendar-changes"})
    ),
    "calendar_sync": Needs(
        "pubsub", "calendar-changes", False, "readwrite", "read", frozenset({"AUTH_GOOGLE_SECRET"})
    ),
    # The platform's reschedules and cancellations patch or delete events as the admin.
    "booking_changes": Needs(
        "pubsub", "booking-changes", False, "readwrite", "read", frozenset({"AUTH_GOOGLE_SECRET"})
    ),
    "calendar_maintenance": Needs(
        "pubsub",
        "calendar-maintenance",
        False,
        "readwrite",
        "read",
        REFUNDER_SECRETS,
    ),
    # Public (MercadoPago calls it): reads bookings, no Google token; publishes payments.
    "payment_webhook": Needs(
        "http",
        None,
        True,
        "read",
        "none",
        frozenset({"MERCADOPAGO_WEBHOOK_SECRET", "MERCADOPAGO_ACCESS_TOKEN"}),
        frozenset({"payments"}),
    ),
    # Public, and so holding no Google token and no secret: Firestore, and one topic.
    "join_class": Needs(
        "http", None, True, "readwrite", "none", frozenset(), frozenset({"guest-changes"})
    ),
    "guest_invitations": Needs(
        "pubsub", "guest-changes", False, "readwrite", "read", frozenset({"AUTH_GOOGLE_SECRET"})
    ),
}

# The most a need may be granted. Anything beyond fails the test.
FIRESTORE_ROLES = {
    "none": set(),
    "read": {"roles/datastore.viewer"},
    "readwrite": {"roles/datastore.user"},
}
SECRET_READ_ROLE = "roles/secretmanager.secretAccessor"
# Storing a token: add a version, see the others, disable them. Never destroy or enable.
ROTATE_PERMISSIONS = {
    "secretmanager.versions.add",
    "secretmanager.versions.disable",
    "secretmanager.versions.list",
    "secretmanager.versions.get",
}
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
SECRET_LIKE = re.compile(r"SECRET|TOKEN|KEY|PASSWORD|CREDENTIAL")
# Plain variables whose names look secret but whose values are not.
NOT_SECRET = {"REFRESH_TOKEN_SECRET": "the id of the secret, not its value"}
# Set in plain environment without being a field of shared/config.py.
RUNTIME_VARIABLES = {"LOG_LEVEL", "LOG_EXECUTION_ID"}


# --- reading the Terraform ---------------------------------------------------------------

HCL = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


@dataclass
class Terraform:
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: list[dict[str, Any]] = field(default_factory=list)

    def resource(self, type_: str, name: str) -> dict[str, Any]:
        assert (type_, name) in self.resources, f"infra has no {type_}.{name}"
        return self.resources[(type_, name)]

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {name: body for (t, name), body in self.resources.items() if t == type_}


def load_terraform(folder: Path) -> Terraform:
    tf = Terraform()
    for path in sorted(folder.glob("*.tf")):
        parsed = hcl2.loads(path.read_text(), serialization_options=HCL)
        tf.raw.append(parsed)
        for block in parsed.get("resource", []):
            for type_, named in block.items():
                for name, body in named.items():
                    tf.resources[(type_, name)] = body
        for block in parsed.get("data", []):
            for type_, named in block.items():
                for name, body in named.items():
                    tf.data[(type_, name)] = body
        for block in parsed.get("locals", []):
            tf.locals.update(block)
        for block in parsed.get("variable", []):
            tf.variables.update(block)
        for block in parsed.get("module", []):
            tf.modules.update(block)
        for block in parsed.get("output", []):
            tf.outputs.update(block)
    return tf


def expr(value: Any) -> str:
    """An HCL expression as text, without the ${ } python-hcl2 wraps it in."""
    text = str(value)
    text = text[2:-1] if text.startswith("${") and text.endswith("}") else text
    return re.sub(r"\s+", " ", text)


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value


def object_keys(value: Any) -> set[str]:
    """Keys of an HCL object: a literal, or the literal objects inside an expression."""
    if isinstance(value, dict):
        return set(value)
    if value is None:
        return set()
    return set(re.findall(r"[{,\s]([A-Z][A-Z0-9_]*)\s*=(?!=)", expr(value)))


def spec_secrets(spec: dict[str, Any]) -> set[str]:
    """Every environment variable a function's row may read from Secret Manager."""
    secrets = spec["secrets"]
    if isinstance(secrets, list):
        return set(secrets)
    return set(re.findall(r'"([A-Z][A-Z0-9_]*)"', expr(secrets)))


@pytest.fixture(scope="module")
def tf() -> Terraform:
    return load_terraform(INFRA)


@pytest.fixture(scope="module")
def module_tf() -> Terraform:
    return load_terraform(MODULE)


@pytest.fixture(scope="module")
def specs(tf: Terraform) -> dict[str, dict[str, Any]]:
    return tf.locals["function_specs"]


# --- reading the functions -------------------------------------------------------------


def entry_point(name: str) -> tuple[str, str]:
    """(function, signature) functions-framework serves from functions/<name>/main.py.

    The function decorated with ``functions_framework.http``/``cloud_event``; without a
    decorator, the function named after the folder, served as HTTP.
    """
    tree = ast.parse((FUNCTIONS / name / "main.py").read_text())
    decorated: list[tuple[str, str]] = []
    top_level: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        top_level.add(node.name)
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "functions_framework"
                and target.attr in ("http", "cloud_event")
            ):
                decorated.append((node.name, target.attr))
    assert len(decorated) <= 1, f"functions/{name}/main.py decorates several entry points"
    if decorated:
        return decorated[0]
    assert name in top_level, f"functions/{name}/main.py has no entry point named {name}"
    return name, "http"


# --- terraform fmt -------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_files_are_formatted() -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", "infra"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, f"run `terraform fmt -recursive infra`:\n{result.stdout}"


# --- the rules, read from the configuration ---------------------------------------------


def test_every_function_folder_is_deployed_with_its_entry_point_and_trigger(
    tf: Terraform, specs: dict[str, dict[str, Any]]
) -> None:
    assert FUNCTION_NAMES, "functions/ has no folder with a main.py"
    for name in FUNCTION_NAMES:
        function, signature = entry_point(name)
        assert name in specs, f"functions/{name} has no row in function_specs (infra/functions.tf)"
        spec = specs[name]
        assert spec["entry_point"] == function, name
        # A CloudEvent function is fed by a topic; an HTTP function has none.
        assert spec["trigger"] == ("pubsub" if signature == "cloud_event" else "http"), name
        assert spec["trigger"] == NEEDS[name].trigger, name
        assert spec["topic"] == NEEDS[name].topic, name

    # Deployed = discovered: every functions/*/main.py, each through the one module.
    assert tf.locals["functions_root"] == "${path.module}/../functions"
    assert 'fileset(local.functions_root, "*/main.py")' in expr(tf.locals["discovered_functions"])
    assert "local.discovered_functions" in expr(tf.locals["functions"])
    [module] = [m for m in tf.modules.values() if m["source"] == "./modules/cloud_function"]
    assert expr(module["for_each"]) == "local.functions"
    assert expr(module["name"]) == "each.key"
    assert expr(module["entry_point"]) == "each.value.entry_point"
    trigger = expr(module["pubsub_trigger"])
    assert trigger.startswith('each.value.trigger != "pubsub" ? null :')
    assert "topic = local.topics[each.value.topic]" in trigger
    for topic, ref in tf.locals["topics"].items():
        pattern = r"projects/\$\{var.project_id\}/topics/\$\{(\w+)\.(\w+)\.name\}"
        resource = re.fullmatch(pattern, ref)
        assert resource, ref
        assert tf.resource(*resource.groups())["name"] == topic
    # A folder without a row stops the plan instead of being skipped.
    precondition = tf.resource("terraform_data", "function_specs_complete")["lifecycle"][0]
    assert "setsubtract(local.discovered_functions, keys(local.function_specs))" in expr(
        precondition["precondition"][0]["condition"]
    )


def test_the_module_deploys_python312_with_the_trigger_it_is_given(
    module_tf: Terraform,
) -> None:
    function = module_tf.resource("google_cloudfunctions2_function", "this")
    build = function["build_config"][0]
    assert module_tf.variables["runtime"]["default"] == "python312"
    assert expr(build["runtime"]) == "var.runtime"
    assert expr(build["entry_point"]) == "var.entry_point"
    service = function["service_config"][0]
    assert expr(service["service_account_email"]) == "var.service_account_email"
    assert expr(service["ingress_settings"]) == "var.ingress"
    assert {"max_instance_count", "timeout_seconds", "available_memory"} <= set(service)

    push = module_tf.resource("google_pubsub_subscription", "push")
    assert expr(push["count"]) == "var.pubsub_trigger == null ? 0 : 1"
    oidc = push["push_config"][0]["oidc_token"][0]
    assert expr(oidc["service_account_email"]) == "var.pubsub_trigger.invoker_service_email"
    # functions-framework reads the topic of a raw push from the path.
    assert push["push_config"][0]["push_endpoint"].endswith("/topics/${local.topic_name}")


def test_min_instances_keeps_only_the_public_functions_warm_and_defaults_to_zero(
    tf: Terraform, module_tf: Terraform
) -> None:
    # Scale to zero unless asked: a warm instance removes the cold start and is billed idle.
    assert tf.variables["min_instances"]["default"] == 0
    assert module_tf.variables["min_instances"]["default"] == 0
    for variables in (tf.variables, module_tf.variables):
        [validation] = variables["min_instances"]["validation"]
        assert "var.min_instances >= 0" in expr(validation["condition"])
    [module] = [m for m in tf.modules.values() if m["source"] == "./modules/cloud_function"]
    assert expr(module["min_instances"]) == "each.value.public ? var.min_instances : 0"
    function = module_tf.resource("google_cloudfunctions2_function", "this")
    assert expr(function["service_config"][0]["min_instance_count"]) == "var.min_instances"
    # More warm instances than may run at once stops the plan.
    [precondition] = function["lifecycle"][0]["precondition"]
    assert expr(precondition["condition"]) == "var.min_instances <= var.max_instances"


def test_only_the_http_endpoints_are_public(
    tf: Terraform, module_tf: Terraform, specs: dict[str, dict[str, Any]]
) -> None:
    for name, need in NEEDS.items():
        assert specs[name]["public"] is need.public, name

    # allUsers appears in exactly one binding, and that one covers the public functions.
    holders = [
        (type_, name)
        for (type_, name), body in tf.resources.items()
        if any(member in text for text in strings_in(body) for member in PUBLIC_MEMBERS)
    ]
    assert holders == [("google_cloud_run_v2_service_iam_member", "public")]
    for parsed in [*tf.raw, *module_tf.raw]:
        other = [s for s in strings_in(parsed.get("module", [])) if "allUsers" in s]
        assert not other
    public = tf.resource("google_cloud_run_v2_service_iam_member", "public")
    assert expr(public["for_each"]) == "local.public_functions"
    assert expr(tf.locals["public_functions"]).endswith("if f.public}")
    assert (public["role"], public["member"]) == ("roles/run.invoker", "allUsers")

    # Event functions are reachable only from inside Google, and invoked only by their push.
    [module] = list(tf.modules.values())
    assert expr(module["ingress"]) == 'each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"'
    invoker = tf.resource("google_cloud_run_v2_service_iam_member", "invoker")
    assert expr(invoker["for_each"]) == "local.event_functions"
    assert expr(invoker["member"]) == "google_service_account.invoker[each.key].member"
    assert expr(tf.locals["event_functions"]).endswith('if f.trigger == "pubsub"}')


def test_no_secret_is_a_plain_environment_variable(
    tf: Terraform, module_tf: Terraform, specs: dict[str, dict[str, Any]]
) -> None:
    [module] = list(tf.modules.values())
    assert expr(module["environment"]) == (
        "merge(var.extra_environment, local.common_environment, each.value.environment, "
        "contains(keys(local.calendar_functions), each.key) ? local.delegation_environment : {})"
    )
    plain = set(tf.locals["common_environment"])
    # service_account mode adds the delegation's variables to the Calendar-using functions.
    plain |= object_keys(tf.locals["delegation_environment"])
    assert {"GOOGLE_AUTH_MODE", "GOOGLE_SERVICE_ACCOUNT_EMAIL"} <= plain
    for name, spec in specs.items():
        plain |= object_keys(spec["environment"])
        # Every secret a function gets comes from Secret Manager, and only those it needs.
        secrets = spec_secrets(spec)
        assert secrets <= NEEDS[name].secrets, name
        if NEEDS[name].refresh_token != "none":  # it calls Google with the OAuth client
            assert "AUTH_GOOGLE_SECRET" in secrets, name
    assert {"GOOGLE_REDIRECT_URI", "CALENDAR_WEBHOOK_URL", "ALLOWED_ORIGINS"} <= plain

    for variable in sorted(plain):
        if SECRET_LIKE.search(variable):
            assert variable in NOT_SECRET, f"{variable} is a plain environment variable"
        assert variable in ENVIRONMENT_VARIABLES or variable in RUNTIME_VARIABLES, (
            f"{variable} is set by Terraform but read by nothing in shared/config.py"
        )
    extra_rules = " ".join(
        expr(v["condition"]) for v in tf.variables["extra_environment"]["validation"]
    )
    assert "SECRET|TOKEN|KEY" in extra_rules

    sources = expr(tf.locals["secret_environment_sources"])
    assert "AUTH_GOOGLE_SECRET = google_secret_manager_secret.oauth_client.secret_id" in sources
    assert "SESSION_SIGNING_KEY = google_secret_manager_secret.session_key.secret_id" in sources
    # MercadoPago's two secrets exist only with var.mercadopago_enabled.
    for env_name, resource in (
        ("MERCADOPAGO_ACCESS_TOKEN", "mercadopago_access_token"),
        ("MERCADOPAGO_WEBHOOK_SECRET", "mercadopago_webhook"),
    ):
        assert f"{env_name} = one(google_secret_manager_secret.{resource}[*].secret_id)" in sources
        assert expr(tf.resource("google_secret_manager_secret", resource)["count"]) == (
            "var.mercadopago_enabled ? 1 : 0"
        )
    assert set(re.findall(r"\b([A-Z][A-Z0-9_]+) =", sources)) == {
        "AUTH_GOOGLE_SECRET",
        "SESSION_SIGNING_KEY",
        "MERCADOPAGO_ACCESS_TOKEN",
        "MERCADOPAGO_WEBHOOK_SECRET",
    }
    assert "CALENDAR_API_KEY" not in sources  # busy slots never read Google any more
    function = module_tf.resource("google_cloudfunctions2_function", "this")
    service = function["service_config"][0]
    assert expr(service["environment_variables"]) == "var.environment"
    secret_block = service["dynamic"][0]["secret_environment_variables"]
    assert expr(secret_block["for_each"]) == "var.secret_environment"

    # No secret value anywhere in Terraform: no version resource or data source (those
    # put the payload in state), no variable that would hold one.
    for parsed in [*tf.raw, *module_tf.raw]:
        text = json.dumps(parsed)
        assert "google_secret_manager_secret_version" not in text
    for variable in tf.variables:
        if SECRET_LIKE.search(variable.upper()):
            assert variable.endswith("_secret_id"), f"{variable} would put a secret in state"


def _functions_of(for_each: str, specs: dict[str, dict[str, Any]]) -> list[str]:
    """The functions a for_each over local.functions, filtered by one attribute, covers.

    ``local.oauth_functions`` is ``local.functions`` in oauth mode, the default read here
    (test_service_account_mode_... checks that it is empty in the other mode).
    """
    if for_each == "local.functions":
        return list(specs)
    match = re.fullmatch(
        r'\{for name, f in local\.(?:oauth_)?functions : name => f if f\.(\w+) (==|!=) "(\w+)"\}',
        for_each,
    )
    assert match, f"the test cannot read this for_each: {for_each}"
    attribute, operator, wanted = match.groups()
    return [
        name for name, spec in specs.items() if (spec[attribute] == wanted) == (operator == "==")
    ]


def test_each_service_account_holds_only_what_its_function_needs(
    tf: Terraform, specs: dict[str, dict[str, Any]]
) -> None:
    granted: dict[str, set[str]] = {name: set() for name in specs}

    def grant(function: str, what: str) -> None:
        granted[function].add(what)

    custom_roles = {
        f"google_project_iam_custom_role.{name}[0].name": set(body["permissions"])
        for name, body in tf.of_type("google_project_iam_custom_role").items()
    }
    seen = set()
    for (type_, name), body in tf.resources.items():
        if not re.search(r"_iam_(member|binding|policy)$", type_):
            continue
        member = expr(body.get("member", body.get("members", "")))
        if (
            "google_service_account.function" not in member
            and "local.runtime_members" not in member
        ):
            continue
        seen.add((type_, name))
        assert type_ in (
            "google_project_iam_member",
            "google_secret_manager_secret_iam_member",
            "google_pubsub_topic_iam_member",
        ), f"{type_}.{name} grants a function's account something this test does not know"
        for_each = expr(body["for_each"])
        role = expr(body["role"])
        if type_ == "google_pubsub_topic_iam_member":
            # Publishing comes only from the publishes column, on exactly those topics.
            assert for_each == "local.function_publishers"
            assert "for topic in f.publishes" in expr(tf.locals["function_publishers"])
            assert role == "roles/pubsub.publisher"
            assert expr(body["topic"]) == "local.topics[each.value.topic]"
            for function, spec in specs.items():
                for topic in spec["publishes"]:
                    grant(function, f"publish {topic}")
        elif type_ == "google_project_iam_member":
            # Project roles come only from the Firestore column of the table.
            assert for_each == "local.function_project_roles"
            assert "local.firestore_roles[f.firestore]" in expr(tf.locals["function_project_roles"])
            assert role == "each.value.role"
            for function, spec in specs.items():
                for project_role in tf.locals["firestore_roles"][spec["firestore"]]:
                    grant(function, f"project {project_role}")
        elif for_each == "local.function_secret_environment":
            assert role == SECRET_READ_ROLE
            for function, spec in specs.items():
                for secret in spec_secrets(spec):
                    grant(function, f"read {secret}")
        else:
            assert "google_secret_manager_secret.refresh_token" in expr(body["secret_id"])
            for function in _functions_of(for_each, specs):
                if role == SECRET_READ_ROLE:
                    grant(function, "read token")
                else:
                    permissions = custom_roles[role]
                    assert permissions <= ROTATE_PERMISSIONS, permissions
                    grant(function, "rotate token")
    assert len(seen) == 5, seen

    for function, need in NEEDS.items():
        allowed = {f"project {role}" for role in FIRESTORE_ROLES[need.firestore]}
        allowed |= {f"read {secret}" for secret in need.secrets}
        allowed |= {f"publish {topic}" for topic in need.publishes}
        if need.refresh_token != "none":
            allowed.add("read token")
        if need.refresh_token == "rotate":
            allowed.add("rotate token")
        assert granted[function] <= allowed, function
        # ... and what it needs to work at all.
        if need.refresh_token != "none":
            assert "read token" in granted[function], function
            assert "read AUTH_GOOGLE_SECRET" in granted[function], function
    # The public join_class holds nothing of Google's: Firestore and its one topic only.
    assert granted["join_class"] == {"project roles/datastore.user", "publish guest-changes"}
    assert [f for f, g in granted.items() if "rotate token" in g] == ["oauth_callback"]
    assert {f for f, g in granted.items() if any(x.startswith("publish") for x in g)} == {
        "payment_webhook",
        "join_class",
        "calendar_webhook",
    }
    assert "publish payments" in granted["payment_webhook"]
    # The public calendar_webhook: Firestore and its one topic, no token, no secret.
    assert granted["calendar_webhook"] == {
        "project roles/datastore.user",
        "publish calendar-changes",
    }
    # Of the public functions, only the one that connects the account touches its token.
    public = {name for name, need in NEEDS.items() if need.public}
    assert {f for f in public if any("token" in x for x in granted[f])} == {"oauth_callback"}
    # The public busy-slots function: Firestore read-only, and no secret of any kind.
    assert granted["list_events"] == {"project roles/datastore.viewer"}

    # The accounts themselves: one per function, one invoker per event function.
    # (In oauth mode local.own_account_functions is local.functions; in service_account
    # mode the Calendar-using functions share delegation.tf's account instead.)
    assert (
        expr(tf.resource("google_service_account", "function")["for_each"])
        == "local.own_account_functions"
    )
    assert expr(tf.locals["own_account_functions"]).endswith(": local.functions")
    [module] = list(tf.modules.values())
    assert expr(module["service_account_email"]) == "local.runtime_emails[each.key]"
    emails = expr(tf.locals["runtime_emails"])
    assert "local.own_account_functions : name => google_service_account.function[name].email" in (
        emails
    )


def test_service_account_mode_shares_one_account_that_may_only_sign_as_itself(
    tf: Terraform, specs: dict[str, dict[str, Any]]
) -> None:
    mode = tf.variables["google_auth_mode"]
    assert mode["default"] == "oauth"
    assert expr(tf.locals["delegated"]) == 'var.google_auth_mode == "service_account"'
    calendar = tf.resource("google_service_account", "calendar")
    assert expr(calendar["count"]) == "local.delegated ? 1 : 0"
    # The Calendar-using functions are the ones that read the refresh token in oauth mode.
    assert expr(tf.locals["calendar_functions"]) == (
        '{for name, f in local.functions : name => f if f.refresh_token != "none"}'
    )
    own = expr(tf.locals["own_account_functions"])
    assert own.startswith("local.delegated ? {for name, f in local.functions : name => f if")
    assert 'f.refresh_token == "none"' in own
    assert "google_service_account.calendar[0].email if local.delegated" in expr(
        tf.locals["runtime_emails"]
    )
    assert "google_service_account.calendar[0].member if local.delegated" in expr(
        tf.locals["runtime_members"]
    )

    # Its one grant on an account: roles/iam.serviceAccountTokenCreator on itself.
    on_accounts = {
        name: body
        for name, body in tf.of_type("google_service_account_iam_member").items()
        if "google_service_account.calendar" in expr(body["member"])
    }
    assert list(on_accounts) == ["calendar_signs_as_itself"]
    signs = on_accounts["calendar_signs_as_itself"]
    assert expr(signs["role"]) == "roles/iam.serviceAccountTokenCreator"
    assert expr(signs["service_account_id"]) == "google_service_account.calendar[0].name"
    assert expr(signs["member"]) == "google_service_account.calendar[0].member"
    assert expr(signs["count"]) == "local.delegated ? 1 : 0"
    # Project roles: only the Firestore roles of the functions it runs.
    project = tf.resource("google_project_iam_member", "calendar")
    assert expr(project["for_each"]) == "local.calendar_project_roles"
    assert "local.firestore_roles[f.firestore]" in expr(tf.locals["calendar_project_roles"])
    # No secret at all: no refresh token, and no OAuth client secret for those functions.
    for (type_, name), body in tf.resources.items():
        if type_.startswith("google_secret_manager") and "member" in body:
            assert "google_service_account.calendar" not in expr(body["member"]), name
    assert expr(tf.locals["function_secrets"]) == (
        '{for name, f in local.functions : name => local.delegated && f.refresh_token != "none" '
        "? [] : f.secrets}"
    )

    # Nothing of the refresh-token machinery exists in this mode.
    secret = tf.resource("google_secret_manager_secret", "refresh_token")
    assert expr(secret["count"]) == 'var.google_auth_mode == "oauth" ? 1 : 0'
    rotator = tf.resource("google_project_iam_custom_role", "token_rotator")
    assert expr(rotator["count"]) == "local.delegated ? 0 : 1"
    assert expr(tf.locals["oauth_functions"]) == "local.delegated ? {} : local.functions"
    for name in ("refresh_token_reader", "refresh_token_rotator"):
        body = tf.resource("google_secret_manager_secret_iam_member", name)
        assert expr(body["for_each"]).startswith("{for name, f in local.oauth_functions :"), name

    # The functions learn the mode and the account; the operator learns the client id.
    environment = object_keys(tf.locals["delegation_environment"])
    assert environment == {
        "GOOGLE_AUTH_MODE",
        "GOOGLE_SERVICE_ACCOUNT_EMAIL",
        "GOOGLE_SERVICE_ACCOUNT_CLIENT_ID",
    }
    assert "google_service_account.calendar[0].unique_id" in expr(
        tf.locals["delegation_environment"]
    )
    client_id = expr(tf.outputs["delegation_client_id"]["value"])
    assert client_id == "local.delegated ? google_service_account.calendar[0].unique_id : null"
    assert "calendar.events" in expr(tf.locals["delegation_scope"])


def test_payments_are_retried_then_dead_lettered(
    tf: Terraform, module_tf: Terraform, specs: dict[str, dict[str, Any]]
) -> None:
    delivery = specs["create_event"]["delivery"]
    assert delivery["dead_letter_topic"] == "payments-dead-letter"
    dead_letter_id = tf.locals["topics"]["payments-dead-letter"]
    assert dead_letter_id.endswith("${google_pubsub_topic.payments_dead_letter.name}")
    assert expr(delivery["max_attempts"]) == "var.payments_max_delivery_attempts"
    attempts = tf.variables["payments_max_delivery_attempts"]
    assert 5 <= attempts["default"] <= 20  # bounded, and well under Pub/Sub's 100
    assert attempts["validation"]
    min_backoff = tf.variables["payments_min_backoff_seconds"]["default"]
    max_backoff = tf.variables["payments_max_backoff_seconds"]["default"]
    assert 0 < min_backoff < max_backoff <= 600
    assert expr(delivery["min_backoff"]) == "var.payments_min_backoff_seconds"
    assert expr(delivery["max_backoff"]) == "var.payments_max_backoff_seconds"

    [module] = list(tf.modules.values())
    trigger = expr(module["pubsub_trigger"])
    assert (
        "dead_letter_topic = each.value.delivery.dead_letter_topic == null ? null :"
        " local.topics[each.value.delivery.dead_letter_topic]"
    ) in trigger
    assert "max_delivery_attempts = each.value.delivery.max_attempts" in trigger
    assert 'minimum_backoff = "${each.value.delivery.min_backoff}s"' in trigger

    push = module_tf.resource("google_pubsub_subscription", "push")
    retry = push["retry_policy"][0]
    assert expr(retry["minimum_backoff"]) == "var.pubsub_trigger.minimum_backoff"
    assert expr(retry["maximum_backoff"]) == "var.pubsub_trigger.maximum_backoff"
    dead_letter = push["dynamic"][0]["dead_letter_policy"]
    assert expr(dead_letter["content"][0]["max_delivery_attempts"]).endswith(
        "max_delivery_attempts"
    )
    # The ack deadline covers a whole delivery: no redelivery while one is running.
    assert "var.timeout_seconds" in expr(push["ack_deadline_seconds"])

    # Dead-lettered payments are kept, and Pub/Sub may move them there.
    assert tf.resource("google_pubsub_topic", "payments_dead_letter")["name"]
    hold = tf.resource("google_pubsub_subscription", "payments_dead_letter_hold")
    assert expr(hold["topic"]) == "google_pubsub_topic.payments_dead_letter.id"
    assert hold["message_retention_duration"] == "604800s"
    publisher = tf.resource("google_pubsub_topic_iam_member", "dead_letter_publisher")
    assert publisher["role"] == "roles/pubsub.publisher"
    assert expr(publisher["member"]) == "local.pubsub_service_agent"
    source = tf.resource("google_pubsub_subscription_iam_member", "dead_letter_source")
    assert source["role"] == "roles/pubsub.subscriber"
    assert "try(f.delivery.dead_letter_topic, null) != null" in expr(source["for_each"])


def test_booking_changes_are_retried_dead_lettered_and_published_only_by_the_platform(
    tf: Terraform, specs: dict[str, dict[str, Any]]
) -> None:
    delivery = specs["booking_changes"]["delivery"]
    assert delivery["dead_letter_topic"] == "booking-changes-dead-letter"
    assert tf.locals["topics"]["booking-changes-dead-letter"].endswith(
        "${google_pubsub_topic.booking_changes_dead_letter.name}"
    )
    assert expr(delivery["max_attempts"]) == "var.booking_changes_max_delivery_attempts"
    attempts = tf.variables["booking_changes_max_delivery_attempts"]
    assert 5 <= attempts["default"] <= 20
    assert attempts["validation"]
    assert 0 < delivery["min_backoff"] < delivery["max_backoff"] <= 600
    assert tf.resource("google_pubsub_topic", "booking_changes")["name"] == "booking-changes"

    # What is dead-lettered is kept, and Pub/Sub's agent may move it there.
    hold = tf.resource("google_pubsub_subscription", "booking_changes_dead_letter_hold")
    assert expr(hold["topic"]) == "google_pubsub_topic.booking_changes_dead_letter.id"
    assert hold["message_retention_duration"] == "604800s"
    publisher = tf.resource(
        "google_pubsub_topic_iam_member", "booking_changes_dead_letter_publisher"
    )
    assert expr(publisher["topic"]) == "google_pubsub_topic.booking_changes_dead_letter.name"
    assert publisher["role"] == "roles/pubsub.publisher"
    assert expr(publisher["member"]) == "local.pubsub_service_agent"

    # Only the members of booking_changes_publishers may publish, and never the public.
    grant = tf.resource("google_pubsub_topic_iam_member", "booking_changes_publishers")
    assert expr(grant["for_each"]) == "toset(var.booking_changes_publishers)"
    assert expr(grant["topic"]) == "google_pubsub_topic.booking_changes.name"
    assert grant["role"] == "roles/pubsub.publisher"
    assert expr(grant["member"]) == "each.value"
    validation = expr(tf.variables["booking_changes_publishers"]["validation"][0]["condition"])
    assert "^(serviceAccount|user|group):" in validation
    topic_grants = [
        r
        for (kind, _), r in tf.resources.items()
        if kind == "google_pubsub_topic_iam_member" and "booking_changes." in expr(r["topic"])
    ]
    assert topic_grants == [grant]


def test_bundle_objects_are_named_by_their_content_hash(
    tf: Terraform, module_tf: Terraform
) -> None:
    assert expr(module_tf.locals["bundle_sha256"]) == "filesha256(var.bundle_path)"
    bundle = module_tf.resource("google_storage_bucket_object", "bundle")
    assert "${local.bundle_sha256}" in bundle["name"]
    assert expr(bundle["source"]) == "var.bundle_path"
    source = module_tf.resource("google_cloudfunctions2_function", "this")["build_config"][0]
    storage = source["source"][0]["storage_source"][0]
    assert expr(storage["object"]) == "google_storage_bucket_object.bundle.name"

    # Terraform uploads what ./deploy.sh package writes.
    [module] = list(tf.modules.values())
    assert module["bundle_path"] == "${local.build_root}/${each.key}.zip"
    assert tf.locals["build_root"] == "${path.module}/../build"
    assert (INFRA / "../build").resolve() == package.ROOT / "build"


@functools.cache
def _shared_constants() -> dict[str, Any]:
    """Module-level string constants of every module in shared/, by name."""
    found: dict[str, Any] = {}
    for path in sorted((ROOT / "shared").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        found.setdefault(target.id, node.value.value)
    return found


def _queries(path: Path) -> list[tuple[str, list[tuple[str, str]], list[tuple[str, str]]]]:
    """(collection, filters, orderings) of every Firestore query chain in a module."""
    tree = ast.parse(path.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    chains: dict[int, tuple[str, list[Any], list[Any]]] = {}
    for node in ast.walk(tree):
        calls = []
        current: Any = node
        while isinstance(current, ast.Call) and isinstance(current.func, ast.Attribute):
            calls.append(current)
            current = current.func.value
        collection = next((c for c in calls if c.func.attr == "collection"), None)
        if collection is None or not any(c.func.attr in ("where", "order_by") for c in calls):
            continue
        argument = collection.args[0]
        if isinstance(argument, ast.Name):
            name = constants.get(argument.id)
        elif isinstance(argument, ast.Attribute):  # bookings.BOOKINGS, from another store
            name = _shared_constants().get(argument.attr)
        else:
            name = argument.value
        filters, orderings = [], []
        for call in reversed(calls):
            if call.func.attr == "where":
                [keyword] = [k for k in call.keywords if k.arg == "filter"] or [None]
                args = keyword.value.args if keyword else call.args
                filters.append((args[0].value, args[1].value))
            elif call.func.attr == "order_by":
                direction = "ASCENDING"
                for k in call.keywords:
                    if k.arg == "direction" and "DESC" in ast.unparse(k.value):
                        direction = "DESCENDING"
                orderings.append((call.args[0].value, direction))
        key = id(collection)
        if key not in chains or len(filters) + len(orderings) > sum(map(len, chains[key][1:])):
            chains[key] = (str(name), filters, orderings)
    return list(chains.values())


def test_firestore_has_the_indexes_every_query_needs(tf: Terraform) -> None:
    indexes = [
        (body["collection"], [(f["field_path"], f["order"]) for f in body["fields"]])
        for body in tf.of_type("google_firestore_index").values()
    ]
    queries = [q for path in sorted((ROOT / "shared").rglob("*.py")) for q in _queries(path)]
    assert queries, "found no Firestore query in shared/: the reader is broken"

    for collection, filters, orderings in queries:
        equal = {f for f, op in filters if op in ("==", "in", "array_contains")}
        ordered = [(f, d) for f, d in orderings if f != "__name__"]
        # Firestore orders by every inequality field: those the query does not order by
        # come after its own orderings, by field name, in the last ordering's direction
        # (StructuredQuery.order_by), and the index must list them in that order.
        direction = ordered[-1][1] if ordered else "ASCENDING"
        unordered = sorted({f for f, _ in filters} - equal - {f for f, _ in ordered})
        ranged = ordered + [(f, direction) for f in unordered]
        # Equality filters alone are served by merging single-field indexes, as is a
        # range or an order on one field alone.
        if not ranged or (not equal and len({f for f, _ in ranged}) == 1):
            continue
        wanted = f"{collection}: {sorted(equal)} then {ranged}"
        assert any(
            c == collection
            and {f for f, _ in fields[: len(equal)]} == equal
            and [f for f in fields[len(equal) :] if f[0] != "__name__"] == ranged
            for c, fields in indexes
        ), f"no composite index for the query on {wanted}"


def test_expired_oauth_states_are_deleted_by_a_ttl_policy(tf: Terraform) -> None:
    ttl = tf.resource("google_firestore_field", "oauth_state_ttl")

    assert (ttl["collection"], ttl["field"]) == ("oauthStates", "expiresAt")
    assert "ttl_config" in ttl
    database = tf.resource("google_firestore_database", "main")
    assert database["type"] == "FIRESTORE_NATIVE"
    assert database["deletion_policy"] == "ABANDON"


# --- checkov -----------------------------------------------------------------------------


@pytest.mark.slow
def test_checkov_finds_nothing_and_every_skip_has_a_reason() -> None:
    config = (INFRA / "checkov.yaml").read_text().splitlines()
    skips, reason = [], []
    for line in config:
        stripped = line.strip()
        if stripped.startswith("#"):
            reason.append(stripped.lstrip("# "))
        elif match := re.fullmatch(r"- (CKV\w+)", stripped):
            assert len(" ".join(reason)) >= 40, f"{match[1]} is skipped without a reason"
            skips.append(match[1])
            reason = []
        else:
            reason = []
    assert skips, "the skip list was not read"

    result = subprocess.run(
        ["bash", "scripts/checkov.sh", "--output", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert summary["failed"] == 0
    assert summary["passed"] >= 20, summary
    assert summary["parsing_errors"] == 0, summary


# --- the bundles ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What `./deploy.sh package` builds (here into a temporary build folder)."""
    build = tmp_path_factory.mktemp("build")
    result = subprocess.run(
        ["bash", "deploy.sh", "package", "--build-dir", str(build)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return {p.stem: p for p in sorted(build.glob("*.zip"))}


def test_packaging_copies_each_function_with_shared_and_requirements(
    bundles: dict[str, Path],
) -> None:
    assert sorted(bundles) == FUNCTION_NAMES
    shared = sorted(
        f"shared/{p.relative_to(ROOT / 'shared').as_posix()}"
        for p in (ROOT / "shared").rglob("*.py")
        if "__pycache__" not in p.parts
    )
    for name, archive in bundles.items():
        folder = archive.with_suffix("")
        with zipfile.ZipFile(archive) as bundle:
            entries = bundle.infolist()
            names = [e.filename for e in entries]
            assert names == sorted(names)
            assert {"main.py", "requirements.txt", *shared} <= set(names), name
            assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
            assert {e.date_time for e in entries} == {package.FIXED_TIMESTAMP}
            assert bundle.read("main.py") == (FUNCTIONS / name / "main.py").read_bytes()
            assert bundle.read("requirements.txt") == (ROOT / "requirements.txt").read_bytes()
            for entry in names:
                copy = folder / entry
                # The build folder holds copies, never links (Cloud Functions follows none).
                assert copy.is_file(), copy
                assert not copy.is_symlink(), copy
                assert copy.read_bytes() == bundle.read(entry)
        assert not any(p.is_symlink() for p in folder.rglob("*"))


def _mini_repository(root: Path) -> None:
    (root / "functions" / "hello").mkdir(parents=True)
    (root / "functions" / "hello" / "main.py").write_text("from shared import greeting\n")
    (root / "functions" / "not_yet").mkdir()  # no main.py: not a function yet
    (root / "shared" / "__pycache__").mkdir(parents=True)
    (root / "shared" / "greeting.py").write_text("WORD = 'hello'\n")
    (root / "shared" / "__pycache__" / "greeting.cpython-312.pyc").write_bytes(b"\0")
    (root / "requirements.txt").write_text("functions-framework==3.10.2\n")


def test_the_same_code_gives_the_same_zip_and_changed_code_another(tmp_path: Path) -> None:
    _mini_repository(tmp_path)

    first = package.package_all(tmp_path, tmp_path / "build-a")
    os.utime(tmp_path / "shared" / "greeting.py", (1_000_000_000, 1_000_000_000))
    second = package.package_all(tmp_path, tmp_path / "build-b")
    (tmp_path / "shared" / "greeting.py").write_text("WORD = 'hola'\n")
    changed = package.package_all(tmp_path, tmp_path / "build-c")

    assert [b.name for b in first] == ["hello"]
    assert first[0].files == ("main.py", "requirements.txt", "shared/greeting.py")
    assert first[0].sha256 == second[0].sha256  # a new mtime is not a new bundle
    assert (tmp_path / "build-a" / "hello.zip").read_bytes() == (
        tmp_path / "build-b" / "hello.zip"
    ).read_bytes()
    assert changed[0].sha256 != first[0].sha256
    assert changed[0].sha256 == hashlib.sha256(changed[0].archive.read_bytes()).hexdigest()


def test_a_file_removed_from_the_code_leaves_the_bundle(tmp_path: Path) -> None:
    _mini_repository(tmp_path)
    (tmp_path / "shared" / "old.py").write_text("")
    package.package_all(tmp_path, tmp_path / "build")
    (tmp_path / "shared" / "old.py").unlink()

    [bundle] = package.package_all(tmp_path, tmp_path / "build")

    assert "shared/old.py" not in bundle.files
    assert not (tmp_path / "build" / "hello" / "shared" / "old.py").exists()


# Imports every module the bundle names (lazy imports in functions too, not those under
# TYPE_CHECKING) from the bundle folder alone; prints what failed and where shared/ is.
IMPORT_CHECK = r"""
import ast, importlib, json, os, pathlib, sys
sys.path.insert(0, os.getcwd())

class Imports(ast.NodeVisitor):
    def __init__(self, package):
        self.package, self.names = package, set()
    def visit_If(self, node):
        if "TYPE_CHECKING" not in ast.unparse(node.test):
            self.generic_visit(node)
        else:
            for child in node.orelse:
                self.visit(child)
    def visit_Import(self, node):
        self.names.update((a.name, None) for a in node.names)
    def visit_ImportFrom(self, node):
        module = node.module or ""
        if node.level:
            base = self.package.rsplit(".", node.level - 1)[0] if self.package else ""
            module = f"{base}.{module}".strip(".")
        if module != "__future__":
            self.names.update((module, a.name) for a in node.names)

names = set()
for path in sorted(pathlib.Path(".").rglob("*.py")):
    visitor = Imports(".".join(path.parent.parts))
    visitor.visit(ast.parse(path.read_text()))
    names |= visitor.names
failures = {}
for module, attribute in sorted(names, key=str):
    try:
        loaded = importlib.import_module(module)
        if attribute not in (None, "*") and not hasattr(loaded, attribute):
            importlib.import_module(f"{module}.{attribute}")
    except Exception as error:
        failures[f"{module}:{attribute}"] = f"{type(error).__name__}: {error}"
import shared
print(json.dumps({"failures": failures, "shared": list(shared.__path__), "count": len(names)}))
"""


@pytest.fixture(scope="module")
def bundle_venv(tmp_path_factory: pytest.TempPathFactory, bundles: dict[str, Path]) -> Path:
    """One fresh virtualenv with the bundles' requirements.txt (all five are the same)."""
    requirements = {zipfile.ZipFile(p).read("requirements.txt") for p in bundles.values()}
    assert len(requirements) == 1, "the bundles' requirements differ: one venv cannot serve all"
    folder = tmp_path_factory.mktemp("bundle-venv")
    (folder / "requirements.txt").write_bytes(requirements.pop())
    venv = folder / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    # This venv's pip installs into the new one: no pip of its own, nothing of .venv in it.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--no-compile",
            "--disable-pip-version-check",
            "-r",
            str(folder / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return venv


def _bundle_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What the platform gives a function, and nothing of this repository."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
        "GOOGLE_CLOUD_PROJECT": "classcal-probe",
        # Should anything try to reach Google, it reaches a closed port, not the internet.
        "GOOGLE_SANDBOX_URL": "http://127.0.0.1:9",
        **(extra or {}),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_each_bundle_runs_alone_in_a_fresh_virtualenv(
    name: str, bundles: dict[str, Path], bundle_venv: Path, tmp_path: Path
) -> None:
    folder = tmp_path / name
    folder.mkdir()
    with zipfile.ZipFile(bundles[name]) as bundle:
        bundle.extractall(folder)
    python = bundle_venv / "bin" / "python"
    function, signature = entry_point(name)

    imports = subprocess.run(
        [str(python), "-I", "-c", IMPORT_CHECK],
        cwd=folder,
        env=_bundle_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imports.returncode == 0, imports.stderr[-3000:]
    checked = json.loads(imports.stdout.strip().splitlines()[-1])
    assert checked["failures"] == {}
    assert checked["count"] > 10
    assert [Path(p).resolve() for p in checked["shared"]] == [(folder / "shared").resolve()]

    # Served the way Cloud Functions serves it: functions-framework, from the folder,
    # with the HTTP signature type the platform passes (a decorator overrides it).
    port = processes.free_port()
    url = f"http://127.0.0.1:{port}"
    server = processes.start_and_wait(
        f"bundle-{name}",
        [
            str(bundle_venv / "bin" / "functions-framework"),
            f"--target={function}",
            "--source=main.py",
            "--signature-type=http",
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        tmp_path / "logs",
        # The framework answers /robots.txt itself (HTTP) or refuses GET (CloudEvent).
        f"{url}/robots.txt",
        env=_bundle_env(),
        cwd=folder,
    )
    try:
        if signature == "cloud_event":
            # What the push subscription in infra/ delivers: the raw Pub/Sub push body at
            # the topic's path. Undecodable data is acknowledged (200), not retried.
            status, _ = processes.http(
                "POST",
                f"{url}/projects/classcal-probe/topics/{NEEDS[name].topic}",
                {
                    "message": {"data": "!not base64!", "messageId": "probe-1"},
                    "subscription": "projects/classcal-probe/subscriptions/probe",
                },
            )
            assert status == 200, server.tail()
            assert processes.http("GET", url)[0] == 405  # only POSTs reach a CloudEvent function
        else:
            # Nobody serves DELETE (join_class does: PUT then): the entry point answers 405.
            method = "PUT" if name == "join_class" else "DELETE"
            status, _ = processes.http(method, f"{url}/")
            assert status == 405, server.tail()
    finally:
        server.stop()
    if signature == "cloud_event":
        assert "invalid_message" in server.log_path.read_text()


# --- deploy.sh ---------------------------------------------------------------------------

DEPLOY_ENV = {
    "GOOGLE_CLOUD_PROJECT": "classcal-probe",
    "ADMIN_EMAIL": "admin@school.test",
    "AUTH_GOOGLE_ID": "probe.apps.googleusercontent.com",
    "BASE_URL": "https://school.test",
}


def _deploy(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", "deploy.sh", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _bin_with(tmp_path: Path, tools: dict[str, str | None]) -> str:
    """A PATH holding only these tools: each a link to the real one, or a stand-in."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool, real in tools.items():
        if real:
            (folder / tool).symlink_to(real)
        else:
            (folder / tool).write_text("#!/bin/sh\nexit 0\n")
            (folder / tool).chmod(0o755)
    return str(folder)


def test_deploy_names_every_missing_variable(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}

    result = _deploy(["plan"], env)

    assert result.returncode == 1
    assert "GOOGLE_CLOUD_PROJECT" in result.stderr
    if not (INFRA / "terraform.tfvars").exists():  # the others may be set there instead
        for variable in DEPLOY_ENV:
            assert variable in result.stderr


def test_deploy_in_service_account_mode_needs_no_oauth_client(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GOOGLE_AUTH_MODE": "service_account"}

    result = _deploy(["plan"], env)
    wrong = _deploy(["plan"], {**env, "GOOGLE_AUTH_MODE": "keyless"})

    assert result.returncode == 1
    assert "GOOGLE_CLOUD_PROJECT" in result.stderr
    assert "AUTH_GOOGLE_ID" not in result.stderr
    assert wrong.returncode == 1
    assert "GOOGLE_AUTH_MODE must be oauth or service_account" in wrong.stderr


def test_deploy_says_when_gcloud_is_missing(tmp_path: Path) -> None:
    path = _bin_with(tmp_path, {"dirname": shutil.which("dirname"), "terraform": None})
    env = {"PATH": path, "HOME": str(tmp_path), **DEPLOY_ENV}

    result = _deploy(["apply"], env)

    assert result.returncode == 1
    assert "gcloud is not installed" in result.stderr


def test_deploy_says_when_terraform_is_missing(tmp_path: Path) -> None:
    path = _bin_with(tmp_path, {"dirname": shutil.which("dirname"), "gcloud": None})
    env = {"PATH": path, "HOME": str(tmp_path), **DEPLOY_ENV}

    result = _deploy(["plan"], env)

    assert result.returncode == 1
    assert "terraform is not installed" in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud is not installed")
def test_deploy_says_when_gcloud_is_not_logged_in(tmp_path: Path) -> None:
    # An empty gcloud configuration: logged in as nobody, whatever this machine's user is.
    tools = _bin_with(tmp_path, {"terraform": shutil.which("terraform")})
    env = {
        "PATH": f"{tools}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        **DEPLOY_ENV,
    }

    result = _deploy(["plan"], env)

    assert result.returncode == 1
    assert "gcloud is not logged in" in result.stderr
    assert "gcloud auth login" in result.stderr


def test_guest_changes_are_retried_then_dead_lettered_and_kept(
    tf: Terraform, specs: dict[str, dict[str, Any]]
) -> None:
    delivery = specs["guest_invitations"]["delivery"]
    assert delivery["dead_letter_topic"] == "guest-changes-dead-letter"
    assert 5 <= delivery["max_attempts"] <= 100
    assert 0 < delivery["min_backoff"] < delivery["max_backoff"] <= 600
    assert tf.locals["topics"]["guest-changes-dead-letter"].endswith(
        "${google_pubsub_topic.guest_changes_dead_letter.name}"
    )
    hold = tf.resource("google_pubsub_subscription", "guest_changes_dead_letter_hold")
    assert expr(hold["topic"]) == "google_pubsub_topic.guest_changes_dead_letter.id"
    publisher = tf.resource("google_pubsub_topic_iam_member", "guest_changes_dead_letter_publisher")
    assert (publisher["role"], expr(publisher["member"])) == (
        "roles/pubsub.publisher",
        "local.pubsub_service_agent",
    )
    # join_class is told the topic it publishes to, and it is the one it may publish to.
    environment = expr(specs["join_class"]["environment"])
    assert "GUEST_CHANGES_TOPIC = google_pubsub_topic.guest_changes.name" in environment
    assert specs["join_class"]["publishes"] == ["guest-changes"]
    assert tf.resource("google_pubsub_topic", "guest_changes")["name"] == "guest-changes"
    # Wrong-code counters expire on their own.
    ttl = tf.resource("google_firestore_field", "join_attempts_ttl")
    assert (ttl["collection"], ttl["field"]) == ("joinAttempts", "expiresAt")
