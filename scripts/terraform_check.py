"""What ``terraform validate`` would say about infra/, without the provider binary.

Every ``google_*`` resource, data source and ``provider "google"`` block of a folder and
of the local modules it calls is checked against the provider schema of
scripts/provider_schema.py: the type exists; every argument and block, at every depth
(``dynamic`` blocks' ``content`` included), exists; an attribute is not written as a
block nor a block as an attribute; a block of at most one is not repeated; every
required argument and block is there. Every module call passes only the module's
variables, and all its required ones. Every reference to a resource
(``google_x.y.attribute...``, ``data.google_x.y...``) or a module output
(``module.m.output``) names something declared, and attributes that exist (arguments
and computed attributes alike).

``python scripts/terraform_check.py [folder]`` prints the problems (``infra`` by default)
and exits 1 when there are any.
"""

from __future__ import annotations

import difflib
import functools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parent.parent
HCL = SerializationOptions(with_comments=False, explicit_blocks=True, strip_string_quotes=True)

# Arguments Terraform itself reads, in any resource or data source.
RESOURCE_META = {"count", "for_each", "depends_on", "provider", "lifecycle"}
RESOURCE_ONLY_META = {"provisioner", "connection"}
MODULE_META = {"source", "version", "count", "for_each", "depends_on", "providers"}
DYNAMIC_KEYS = {"for_each", "iterator", "labels", "content"}

INDEX = r"\[[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*\]"  # [..], one level of nesting inside
CHAIN = rf"(?P<chain>(?:\.\w+|{INDEX})*)"
RESOURCE_REF = re.compile(rf"(?<![\w.])(?P<data>data\.)?(?P<type>google_\w+)\.(?P<name>\w+){CHAIN}")
MODULE_REF = re.compile(
    rf"(?<![\w.])module\.(?P<name>\w+)(?P<index>{INDEX})?(?:\.(?P<output>\w+))?"
)
STEP = re.compile(rf"\.(\w+)|{INDEX}")


@dataclass(frozen=True)
class Problem:
    file: str  # relative to the repository (or to the folder checked, when outside it)
    path: str  # Terraform address of the bad key, e.g. google_x.y.block[0].argument
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


@dataclass
class Module:
    folder: Path
    resources: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    data: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    calls: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    providers: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)
    # Everything that may hold an expression: (file, address, value).
    expressions: list[tuple[str, str, Any]] = field(default_factory=list)


def _shown(path: Path, base: Path = ROOT) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _blocks(value: Any) -> list[dict[str, Any]]:
    return value if isinstance(value, list) else [value]


@functools.lru_cache(maxsize=128)
def _parse(text: str) -> dict[str, Any]:
    """A file's HCL as python-hcl2 reads it; the same text is parsed once (read it only)."""
    return hcl2.loads(text, serialization_options=HCL)


def parse_cache_clear() -> None:
    _parse.cache_clear()


def read_module(folder: Path, base: Path = ROOT) -> Module:
    module = Module(folder)
    for path in sorted(folder.glob("*.tf")):
        shown = _shown(path, base)
        parsed = _parse(path.read_text())
        for kind, store, prefix in (
            ("resource", module.resources, ""),
            ("data", module.data, "data."),
        ):
            for block in parsed.get(kind, []):
                for type_, named in block.items():
                    if type_.startswith("__"):
                        continue
                    for name, body in named.items():
                        if name.startswith("__"):
                            continue
                        store[(type_, name)] = (shown, body)
                        module.expressions.append((shown, f"{prefix}{type_}.{name}", body))
        for block in parsed.get("module", []):
            for name, body in block.items():
                if not name.startswith("__"):
                    module.calls[name] = (shown, body)
                    module.expressions.append((shown, f"module.{name}", body))
        for block in parsed.get("provider", []):
            for name, body in block.items():
                if not name.startswith("__"):
                    module.providers.append((shown, name, body))
                    module.expressions.append((shown, f"provider.{name}", body))
        for block in parsed.get("variable", []):
            for name, body in block.items():
                if not name.startswith("__"):
                    module.variables[name] = body
                    module.expressions.append((shown, f"variable.{name}", body))
        for block in parsed.get("output", []):
            for name, body in block.items():
                if not name.startswith("__"):
                    module.outputs.add(name)
                    module.expressions.append((shown, f"output.{name}", body))
        for block in parsed.get("locals", []):
            module.expressions.append((shown, "locals", block))
    return module


def _is_block(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
    )


def _hint(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


class Checker:
    def __init__(self, schema: dict[str, Any], base: Path = ROOT) -> None:
        self.schema = schema
        self.base = base
        self.problems: list[Problem] = []
        self.checked: list[str] = []  # the address of every block checked against the schema
        self.modules: dict[Path, Module] = {}

    def problem(self, file: str, path: str, message: str) -> None:
        self.problems.append(Problem(file, path, message))

    # --- blocks against the schema -------------------------------------------------

    def body(self, file: str, path: str, body: dict[str, Any], sid: str, meta: set[str]) -> None:
        args: dict[str, list[Any]] = self.schema["structs"][sid]
        present: set[str] = set()
        for key, value in body.items():
            if key.startswith("__") or key in meta:
                continue
            if key == "dynamic":
                for entry in _blocks(value):
                    for name, dynamic in entry.items():
                        if not name.startswith("__"):
                            present.add(name)
                            self.dynamic(file, f"{path}.dynamic.{name}", name, dynamic, args)
                continue
            present.add(key)
            where = f"{path}.{key}"
            block = _is_block(value)
            if key not in args:
                what = "block" if block else "argument"
                self.problem(file, where, f"unknown {what}{_hint(key, args)}")
                continue
            _, nested, nesting = args[key]
            if nested is None and block:
                self.problem(file, where, f"is an argument, not a block: write `{key} = ...`")
            elif nested is not None and not block:
                self.problem(file, where, f"is a block, not an argument: write `{key} {{ ... }}`")
            elif nested is not None:
                if nesting == "single" and len(value) > 1:
                    self.problem(file, where, f"is a block of at most one, given {len(value)}")
                for i, item in enumerate(value):
                    self.body(file, f"{where}[{i}]", item, nested, set())
        for name, (required, nested, _) in sorted(args.items()):
            if required and name not in present:
                what = "block" if nested else "argument"
                self.problem(file, f"{path}.{name}", f"missing required {what}")

    def dynamic(
        self, file: str, path: str, name: str, dynamic: dict[str, Any], args: dict[str, Any]
    ) -> None:
        if name not in args:
            self.problem(file, path, f"unknown block{_hint(name, args)}")
            return
        nested = args[name][1]
        if nested is None:
            self.problem(file, path, f"{name} is an argument: `dynamic` makes blocks only")
            return
        for key in dynamic:
            if not key.startswith("__") and key not in DYNAMIC_KEYS:
                self.problem(file, f"{path}.{key}", "unknown argument of a dynamic block")
        contents = dynamic.get("content")
        if not _is_block(contents):
            self.problem(file, f"{path}.content", "missing the content block")
            return
        for item in contents:
            self.body(file, f"{path}.content", item, nested, set())

    # --- a folder and the modules it calls -----------------------------------------

    def module(self, folder: Path) -> Module:
        folder = folder.resolve()
        if folder in self.modules:
            return self.modules[folder]
        mod = self.modules[folder] = read_module(folder, self.base)
        for (type_, name), (file, body) in sorted(mod.resources.items()):
            self.typed(file, type_, name, body, self.schema["resources"], "resource", "")
        for (type_, name), (file, body) in sorted(mod.data.items()):
            self.typed(file, type_, name, body, self.schema["data_sources"], "data source", "data.")
        for file, name, body in mod.providers:
            if name == "google":
                self.checked.append("provider.google")
                self.body(file, "provider.google", body, self.schema["provider"]["args"], set())
        called: dict[str, Module] = {}
        for name, (file, body) in sorted(mod.calls.items()):
            target = self.call(file, folder, name, body)
            if target is not None:
                called[name] = target
        self.references(mod, called)
        return mod

    def typed(
        self,
        file: str,
        type_: str,
        name: str,
        body: dict[str, Any],
        known: dict[str, Any],
        what: str,
        prefix: str,
    ) -> None:
        if not type_.startswith("google_"):
            return
        address = f"{prefix}{type_}.{name}"
        if str(body.get("provider", "")).startswith("${google-beta"):
            return  # the beta provider has a schema of its own, not pinned here
        if type_ not in known:
            self.problem(file, address, f"unknown {what} type {type_}{_hint(type_, known)}")
            return
        meta = RESOURCE_META | (RESOURCE_ONLY_META if not prefix else set())
        self.checked.append(address)
        self.body(file, address, body, known[type_]["args"], meta)

    def call(self, file: str, folder: Path, name: str, body: dict[str, Any]) -> Module | None:
        source = body.get("source")
        if not isinstance(source, str) or not source.startswith(("./", "../")):
            return None  # a registry or remote module: its variables are not here
        target = (folder / source).resolve()
        if not target.is_dir():
            self.problem(file, f"module.{name}.source", f"no folder {source}")
            return None
        callee = self.module(target)
        for key in body:
            if key.startswith("__") or key in MODULE_META:
                continue
            if key not in callee.variables:
                self.problem(
                    file,
                    f"module.{name}.{key}",
                    f"{source} has no variable {key}{_hint(key, callee.variables)}",
                )
        for variable, spec in sorted(callee.variables.items()):
            if "default" not in spec and variable not in body:
                self.problem(file, f"module.{name}.{variable}", "missing required variable")
        return callee

    # --- references ----------------------------------------------------------------

    def references(self, mod: Module, called: dict[str, Module]) -> None:
        for file, address, value in mod.expressions:
            for path, expression in _expressions(address, value):
                for ref in RESOURCE_REF.finditer(expression):
                    self.resource_ref(mod, file, path, ref)
                for ref in MODULE_REF.finditer(expression):
                    self.module_ref(mod, called, file, path, ref)

    def resource_ref(self, mod: Module, file: str, path: str, ref: re.Match[str]) -> None:
        type_, name, data = ref["type"], ref["name"], bool(ref["data"])
        declared, kinds = (mod.data, "data_sources") if data else (mod.resources, "resources")
        shown = ref[0]
        if type_ not in self.schema[kinds]:
            return  # reported where it is declared, or not a reference at all
        if (type_, name) not in declared:
            self.problem(file, path, f"{shown} refers to {type_}.{name}, declared nowhere here")
            return
        obj: str | None = self.schema[kinds][type_]["attrs"]
        steps = STEP.finditer(ref["chain"])
        first = True
        for step in steps:
            attribute = step[1]
            if attribute is None:  # an index: an instance, an element or a splat
                continue
            if obj is None:
                return  # inside a primitive, a map or a list of strings
            attrs = self.schema["objects"][obj]
            if attribute not in attrs:
                on = f"{ref['data'] or ''}{type_}.{name}" if first else "the block"
                self.problem(
                    file,
                    path,
                    f"{shown}: {on} has no attribute {attribute}{_hint(attribute, attrs)}",
                )
                return
            obj = attrs[attribute]
            first = False

    def module_ref(
        self, mod: Module, called: dict[str, Module], file: str, path: str, ref: re.Match[str]
    ) -> None:
        name, output = ref["name"], ref["output"]
        if name not in mod.calls:
            self.problem(file, path, f"{ref[0]} refers to module {name}, called nowhere here")
            return
        callee = called.get(name)
        if callee is None or output is None:
            return
        if output not in callee.outputs:
            self.problem(
                file,
                path,
                f"{ref[0]}: module {name} has no output {output}{_hint(output, callee.outputs)}",
            )


def _interpolations(text: str) -> Iterator[str]:
    """The ``${...}`` parts of a string, where references live (not its literal text)."""
    start = text.find("${")
    while start != -1:
        depth, i = 0, start + 1
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        yield text[start + 2 : i]
        start = text.find("${", i)


def _expressions(path: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if not str(key).startswith("__"):
                yield from _expressions(f"{path}.{key}", item)
                yield from ((f"{path}.{key}", e) for e in _interpolations(str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _expressions(f"{path}[{i}]", item)
    elif isinstance(value, str):
        for expression in _interpolations(value):
            yield path, expression


def check(folder: Path, schema: dict[str, Any], base: Path = ROOT) -> Checker:
    """The problems of ``folder`` and of the local modules it calls (files shown from base)."""
    checker = Checker(schema, base)
    checker.module(folder)
    return checker


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT / "scripts"))
    import provider_schema  # the script beside this one

    folder = Path(argv[0]) if argv else ROOT / "infra"
    try:
        schema = provider_schema.load()
    except provider_schema.SchemaUnavailable as error:
        print(error, file=sys.stderr)
        return 2
    problems = check(folder, schema).problems
    for problem in problems:
        print(problem)
    print(
        f"{len(problems)} problem(s) in {_shown(folder)}, against hashicorp/google"
        f" {schema['provider_version']} ({schema['package']})",
        file=sys.stderr,
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
