"""The layers of shared/ hold: no cycles, Firestore only in the stores, Google clients
only in the Google layer, no web framework below the web layer, no import upwards.

The checker reads every module's imports with ``ast`` (function-level and
``TYPE_CHECKING`` imports included: a cycle hidden behind a lazy import is still one).
The last tests plant each kind of violation in a copy of the tree and show that it is
reported, so this file can fail.
"""

from __future__ import annotations

import ast
import functools
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.imports import find_cycles

ROOT = Path(__file__).resolve().parent.parent

# Lower layers first: a module may import its own layer and the ones before it.
LAYERS = ("core", "google", "stores", "domain", "web")
# Clients of services outside Google, each a peer of the Google layer: the same rank, and
# neither imports the other.
PEER_LAYERS = {"mercadopago": "google"}
FUNCTIONS_RANK = len(LAYERS)

# Client libraries that reach Google; only shared/google/ may import them.
GOOGLE_CLIENT_LIBRARIES = (
    "googleapiclient",
    "google_auth_httplib2",
    "httplib2",
    "google_auth_oauthlib",
    "oauthlib",
    "requests_oauthlib",
    "google.auth",
    "google.oauth2",
    "google.cloud.secretmanager",
    "requests",
)
# The HTTP library MercadoPago's client uses: allowed there too.
MERCADOPAGO_LIBRARIES = ("requests",)
FIRESTORE_LIBRARIES = ("google.cloud.firestore", "google.cloud.firestore_v1")
FIRESTORE_CALLS = ("firestore_client", "firestore_errors", "firestore_read_retry")
WEB_FRAMEWORKS = ("flask", "functions_framework", "werkzeug")
# Functions anyone can call read Firestore or publish; the school's Google token (and
# the Calendar client that uses it) is for the private event functions. oauth_callback
# is public too, but connecting the account is its job.
PUBLIC_FUNCTIONS = ("list_events", "calendar_webhook", "join_class", "payment_webhook")
TOKEN_MODULES = ("shared.google.tokens", "shared.google.credentials", "shared.google.calendar")
MAX_LINES = 500


@dataclass(frozen=True)
class Module:
    name: str  # dotted: shared.stores.bookings, functions.create_event.main
    path: Path
    imports: frozenset[str]  # dotted names imported, with "from x import y" as x.y too
    calls: frozenset[str]  # names called: f(...) and x.f(...) give "f"


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _read(root: Path, path: Path) -> Module:
    try:
        imports, calls = _scan(path.read_text())
    except SyntaxError as error:
        raise SyntaxError(f"{path}: {error}") from None
    return Module(_module_name(root, path), path, imports, calls)


@functools.cache
def _scan(source: str) -> tuple[frozenset[str], frozenset[str]]:
    """What one file imports and calls. Cached by its text: the planted tests change a
    few files in a copy of the tree and re-read the rest unchanged."""
    tree = ast.parse(source)
    imports: set[str] = set()
    calls: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imports.add(node.module)
            imports.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                calls.add(func.id)
            elif isinstance(func, ast.Attribute):
                calls.add(func.attr)
    return frozenset(imports), frozenset(calls)


def read_modules(root: Path) -> dict[str, Module]:
    paths = [
        *sorted((root / "shared").rglob("*.py")),
        *sorted((root / "functions").glob("*/main.py")),
    ]
    modules = [_read(root, p) for p in paths if "__pycache__" not in p.parts]
    return {m.name: m for m in modules}


def _layer(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] == "shared" and len(parts) > 1 and (parts[1] in LAYERS or parts[1] in PEER_LAYERS):
        return parts[1]
    return None


def _rank(name: str) -> int | None:
    if name.startswith("functions."):
        return FUNCTIONS_RANK
    layer = _layer(name)
    return LAYERS.index(PEER_LAYERS.get(layer, layer)) if layer else None


def _matches(imported: str, prefixes: tuple[str, ...]) -> bool:
    return any(imported == p or imported.startswith(p + ".") for p in prefixes)


def internal_edges(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package import counts as its __init__)."""
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for module in modules.values():
        for imported in module.imports:
            if imported in modules and imported != module.name:
                edges[module.name].add(imported)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Modules that import each other, directly or around a loop."""
    return find_cycles(edges)


def violations(root: Path) -> list[str]:
    modules = read_modules(root)
    problems: list[str] = []
    for group in cycles(internal_edges(modules)):
        problems.append(f"import cycle: {' <-> '.join(group)}")
    edges = internal_edges(modules)
    for function in PUBLIC_FUNCTIONS:
        start = f"functions.{function}.main"
        if start not in modules:
            continue
        reached, todo = set(), [start]
        while todo:
            for imported in edges[todo.pop()] - reached:
                reached.add(imported)
                todo.append(imported)
        for token_module in sorted(reached & set(TOKEN_MODULES)):
            problems.append(
                f"functions/{function}: public, yet reaches {token_module} (the school's token)"
            )
    for module in modules.values():
        layer = _layer(module.name)
        rank = _rank(module.name)
        where = module.path.relative_to(root)
        for imported in sorted(module.imports):
            if (
                _matches(imported, FIRESTORE_LIBRARIES)
                and layer != "stores"
                and (module.name != "shared.google.clients")
            ):
                problems.append(f"{where}: imports {imported}: Firestore belongs to shared/stores")
            if imported == "shared.stores.db" and layer != "stores":
                problems.append(f"{where}: imports shared.stores.db outside shared/stores")
            if (
                _matches(imported, GOOGLE_CLIENT_LIBRARIES)
                and layer != "google"
                and not (layer == "mercadopago" and _matches(imported, MERCADOPAGO_LIBRARIES))
            ):
                problems.append(
                    f"{where}: imports {imported}: Google clients belong to shared/google"
                )
            if (
                _matches(imported, WEB_FRAMEWORKS)
                and rank is not None
                and rank < LAYERS.index("web")
            ):
                problems.append(f"{where}: imports {imported} below shared/web")
            target_rank = _rank(imported)
            target_layer = _layer(imported)
            if (
                rank is not None
                and rank == target_rank
                and layer != target_layer
                and (layer in PEER_LAYERS or target_layer in PEER_LAYERS)
            ):
                problems.append(f"{where}: imports {imported}, a peer layer of its own ({layer})")
            if rank is not None and target_rank is not None and target_rank > rank:
                problems.append(
                    f"{where}: imports {imported}, a layer above its own ({layer or 'functions'})"
                )
        for call in sorted(module.calls & set(FIRESTORE_CALLS)):
            if layer != "stores":
                problems.append(f"{where}: calls {call}(): only shared/stores call Firestore")
        if module.name.startswith("shared.") and layer is None and module.name != "shared":
            problems.append(f"{where}: a module of shared/ outside every layer")
    for path in [*(root / "shared").rglob("*.py"), *(root / "sandbox").rglob("*.py")]:
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and "__pycache__" not in path.parts:
            problems.append(f"{path.relative_to(root)}: {lines} lines, over {MAX_LINES}")
    return problems


# ---------------------------------------------------------------------------------------


def test_the_layers_hold() -> None:
    assert violations(ROOT) == []


def test_every_layer_says_what_it_may_touch() -> None:
    for layer in (*LAYERS, *PEER_LAYERS):
        init = ROOT / "shared" / layer / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"shared/{layer}/__init__.py needs its docstring"
        assert len(doc) > 80, f"shared/{layer}/__init__.py: say what it may import and touch"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of shared/, functions/ and sandbox/ to plant mistakes in."""
    for folder in ("shared", "functions", "sandbox"):
        shutil.copytree(
            ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


def _plant(tree: Path, relative: str, text: str) -> None:
    path = tree / relative
    path.write_text(path.read_text() + "\n" + text + "\n")


def test_a_cycle_is_reported(tree: Path) -> None:
    # shared.domain.cancellation is imported by scheduling; importing scheduling back closes a loop.
    _plant(tree, "shared/domain/cancellation.py", "from shared.domain import scheduling  # noqa")
    found = violations(tree)
    assert any(
        p.startswith("import cycle:")
        and "shared.domain.cancellation" in p
        and "shared.domain.scheduling" in p
        for p in found
    ), found


def test_a_public_function_reaching_the_token_is_reported(tree: Path) -> None:
    # Two steps away: the webhook's rules importing the Calendar client.
    _plant(tree, "shared/domain/notifications.py", "from shared.google import calendar  # noqa")
    found = violations(tree)
    assert (
        "functions/calendar_webhook: public, yet reaches shared.google.calendar "
        "(the school's token)" in found
    ), found


def test_a_firestore_call_outside_the_stores_is_reported(tree: Path) -> None:
    _plant(
        tree,
        "shared/domain/maintenance.py",
        "def _peek():\n    from shared.google import clients\n"
        "    return clients.firestore_client().collection('virtualClasses').get()",
    )
    found = violations(tree)
    assert (
        "shared/domain/maintenance.py: calls firestore_client(): only shared/stores call Firestore"
        in found
    )


def test_importing_firestore_outside_the_stores_is_reported(tree: Path) -> None:
    _plant(tree, "shared/web/pages.py", "from google.cloud import firestore  # noqa")
    assert any("shared/web/pages.py: imports google.cloud" in p for p in violations(tree))


def test_a_google_client_built_outside_the_google_layer_is_reported(tree: Path) -> None:
    _plant(tree, "shared/domain/sync.py", "from googleapiclient.discovery import build  # noqa")
    assert any("shared/domain/sync.py: imports googleapiclient" in p for p in violations(tree))


def test_a_google_client_in_the_mercadopago_layer_is_reported(tree: Path) -> None:
    _plant(tree, "shared/mercadopago/api.py", "from google.cloud import secretmanager  # noqa")
    assert any("shared/mercadopago/api.py: imports google.cloud" in p for p in violations(tree))


def test_requests_outside_the_client_layers_is_reported(tree: Path) -> None:
    _plant(tree, "shared/domain/refunds.py", "import requests  # noqa")
    assert any("shared/domain/refunds.py: imports requests" in p for p in violations(tree))


def test_peer_layers_importing_each_other_is_reported(tree: Path) -> None:
    _plant(tree, "shared/google/pubsub.py", "from shared.mercadopago import api  # noqa")
    found = violations(tree)
    assert any(
        "shared/google/pubsub.py: imports shared.mercadopago" in p and "peer" in p for p in found
    ), found


def test_the_mercadopago_layer_importing_the_stores_is_reported(tree: Path) -> None:
    _plant(tree, "shared/mercadopago/api.py", "from shared.stores import bookings  # noqa")
    found = violations(tree)
    assert any("shared/mercadopago/api.py: imports shared.stores" in p for p in found), found


def test_flask_in_the_domain_is_reported(tree: Path) -> None:
    _plant(tree, "shared/domain/scheduling.py", "import flask  # noqa")
    assert "shared/domain/scheduling.py: imports flask below shared/web" in violations(tree)


def test_an_import_upwards_is_reported(tree: Path) -> None:
    _plant(tree, "shared/stores/bookings.py", "from shared.domain import event_shape  # noqa")
    found = violations(tree)
    assert any("shared/stores/bookings.py: imports shared.domain" in p for p in found), found


def test_a_long_file_is_reported(tree: Path) -> None:
    _plant(tree, "shared/core/ids.py", "\n".join(f"X{n} = {n}" for n in range(MAX_LINES)))
    assert any(p.startswith("shared/core/ids.py:") and "over 500" in p for p in violations(tree))


def test_the_cycle_finder_sees_an_indirect_loop() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
