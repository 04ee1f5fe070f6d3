"""The hashicorp/google provider schema, offline, from the CDKTF bindings' jsii assembly.

``terraform validate`` needs the provider binary, which cannot be downloaded here. The
package pinned in scripts/provider-schema-requirements.txt (``cdktf-cdktf-provider-google``,
generated from one hashicorp/google release) carries that release's whole schema in its
jsii assembly, ``package/.jsii`` inside ``_jsii/provider-google@<version>.jsii.tgz``:

* each resource and data source is a class whose docs link to
  ``.../docs/resources/<type>`` (or ``data-sources``); its initializer takes a
  ``<Class>Config`` struct whose properties are the arguments;
* each property of a config struct is an argument, required unless ``optional``; its
  Terraform name is the anchor of its docs link (``...#<argument>``), which camelCase
  cannot be turned back into (``source_md5hash`` is ``sourceMd5Hash``);
* a property whose type is another struct of the assembly (alone: a block of at most one;
  in an array: a list or set block) is a nested block, every other property (primitives
  and collections of primitives) an attribute: in this provider no attribute holds an
  object, so that mapping is exact;
* what can be referenced (``google_x.y.<attribute>``) are the getters of the resource's
  class and, below a block or a computed list, of its ``...OutputReference`` class:
  arguments and computed-only attributes alike. Getters carry no docs link, so their
  Terraform names are read from the getter bodies in the same package
  (``get md5Hash() { return this.getStringAttribute('md5hash'); }``).

``load()`` downloads the pinned wheel with pip (only from the package index; ``--no-deps``,
hash-checked, never installed), turns it into a small JSON schema and caches that under
.venv-tools/provider-schema/ (or $PROVIDER_SCHEMA_CACHE), keyed by the requirements file
and this file's format; later runs read only the cache. ``python scripts/provider_schema.py``
builds the cache and says where it is.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "scripts" / "provider-schema-requirements.txt"
CACHE = ROOT / ".venv-tools" / "provider-schema"
# Bump when the shape of the cached JSON changes: the cache key includes it.
FORMAT = 1

PREFIX = "@cdktf/provider-google."
LINK = re.compile(
    r"registry\.terraform\.io/providers/hashicorp/google/(?P<version>[\d.]+)/docs"
    r"(?:/(?P<kind>resources|data-sources)/(?P<type>\w+))?(?:#(?P<anchor>\w+))?"
)
JS_CLASS = re.compile(r"^class (\w+) extends ", re.M)
JS_GETTER = re.compile(r"get (\w+)\(\) \{\s*return this\.get\w*Attribute\('([^']+)'\)")
JS_COMPLEX = re.compile(r"this\._(\w+) = new [\w.]+\(this, \"([^\"]+)\"")


class SchemaUnavailable(RuntimeError):
    """The pinned package could not be downloaded or read: says why."""


def requirement() -> str:
    """The pinned requirement, e.g. ``cdktf-cdktf-provider-google==16.12.1``."""
    text = REQUIREMENTS.read_text()
    match = re.search(r"^(cdktf-cdktf-provider-google==[\w.]+)", text, re.M)
    if match is None:
        raise SchemaUnavailable(f"{REQUIREMENTS.name} pins no cdktf-cdktf-provider-google")
    return match[1]


def cache_path() -> Path:
    """Where the schema of this pin and format is cached (PROVIDER_SCHEMA_CACHE: elsewhere)."""
    folder = Path(os.environ.get("PROVIDER_SCHEMA_CACHE") or CACHE)
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + f"format {FORMAT}".encode()).hexdigest()
    return folder / f"google-{key[:16]}.json"


def load() -> dict[str, Any]:
    """The cached schema, built first when the cache is missing or stale."""
    path = cache_path()
    if not path.exists():
        schema = build(download())
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob("google-*.json"):
            if stale != path:  # another pin's or format's schema
                stale.unlink(missing_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as out:
            json.dump(schema, out, separators=(",", ":"), sort_keys=True)
        os.chmod(out.name, 0o644)
        os.replace(out.name, path)
    return json.loads(path.read_text())


def download() -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """(the jsii assembly, the getter names of its classes) of the pinned wheel."""
    with tempfile.TemporaryDirectory(prefix="provider-schema-") as folder:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--dest",
            folder,
            "-r",
            str(REQUIREMENTS),
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=600)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SchemaUnavailable(f"pip download {requirement()} failed: {error}") from error
        wheels = list(Path(folder).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            detail = (result.stderr or result.stdout).strip()[-2000:]
            raise SchemaUnavailable(f"pip download {requirement()} failed:\n{detail}")
        return read_wheel(wheels[0])


def read_wheel(wheel: Path) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    with zipfile.ZipFile(wheel) as archive:
        [member] = [n for n in archive.namelist() if n.endswith(".jsii.tgz")]
        tgz = archive.read(member)
    assembly: dict[str, Any] | None = None
    getters: dict[str, dict[str, str]] = {}
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        for entry in tar:
            if entry.name == "package/.jsii" or (
                entry.name.startswith("package/lib/") and entry.name.endswith(".js")
            ):
                handle = tar.extractfile(entry)
                if handle is None:
                    continue
                data = handle.read()
                if entry.name == "package/.jsii":
                    assembly = json.loads(data)
                else:
                    # Read as it streams by: its 300 MB are never held at once.
                    _add_getter_names(getters, data.decode())
    if assembly is None:
        raise SchemaUnavailable(f"{wheel.name} has no package/.jsii")
    return assembly, getters


# --- the assembly -> the schema -----------------------------------------------------


def snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), name)


def _link(docs: dict[str, Any]) -> re.Match[str] | None:
    # The link is in the summary or the remarks, or, when the text holds an @-word,
    # in a custom tag: search the whole docs object.
    return LINK.search(json.dumps(docs))


def _local(type_ref: dict[str, Any]) -> str | None:
    fqn = type_ref.get("fqn", "")
    return fqn[len(PREFIX) :] if fqn.startswith(PREFIX) else None


def _struct_of(type_ref: dict[str, Any]) -> tuple[str, str] | None:
    """(struct id, "single" | "list") when a property's type is a nested block."""
    if (local := _local(type_ref)) is not None:
        return local, "single"
    if "collection" in type_ref and type_ref["collection"]["kind"] == "array":
        inner = _local(type_ref["collection"]["elementtype"])
        if inner is not None:
            return inner, "list"
    for member in type_ref.get("union", {}).get("types", []):
        found = _struct_of(member)
        if found is not None:
            return found
    return None


def _add_getter_names(names: dict[str, dict[str, str]], text: str) -> None:
    """Adds class name => {getter: Terraform name} from one file of the bundled JavaScript."""
    starts = list(JS_CLASS.finditer(text))
    for i, start in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        body = text[start.end() : end]
        found = names.setdefault(start[1], {})
        for pattern in (JS_GETTER, JS_COMPLEX):
            for getter, tf_name in pattern.findall(body):
                found.setdefault(getter, tf_name)


def build(source: tuple[dict[str, Any], dict[str, dict[str, str]]]) -> dict[str, Any]:
    assembly, getters = source
    types: dict[str, dict[str, Any]] = {
        fqn[len(PREFIX) :]: t for fqn, t in assembly["types"].items() if fqn.startswith(PREFIX)
    }
    versions: set[str] = set()
    structs: dict[str, dict[str, list[Any]]] = {}
    objects: dict[str, dict[str, str | None]] = {}
    unlinked: list[str] = []

    def struct(sid: str) -> str:
        if sid in structs:
            return sid
        args: dict[str, list[Any]] = {}
        structs[sid] = args
        for prop in types[sid].get("properties", []):
            link = _link(prop.get("docs", {}))
            if link is not None:
                versions.add(link["version"])
            if link is not None and link["anchor"]:
                tf_name = link["anchor"]
            else:
                # The provider's own arguments link to its index page only, and a few
                # docs are mangled by the text they quote: the getter of the same
                # property (on the block's OutputReference, or the resource class for
                # its config) names it.
                name = types[sid]["name"]
                js = getters.get(name + "OutputReference") or getters.get(
                    name.removesuffix("Config"), {}
                )
                tf_name = js.get(prop["name"]) or snake(prop["name"])
                unlinked.append(f"{sid}.{prop['name']} = {tf_name}")
            nested = _struct_of(prop["type"])
            args[tf_name] = [
                not prop.get("optional", False),
                struct(nested[0]) if nested else None,
                nested[1] if nested else None,
            ]
        return sid

    def obj(cid: str) -> str:
        if cid in objects:
            return cid
        attrs: dict[str, str | None] = {}
        objects[cid] = attrs
        klass = types[cid]
        js = getters.get(klass["name"], {})
        props = [p for p in klass.get("properties", []) if not p.get("static")]
        names = {p["name"] for p in props}
        for prop in props:
            name = prop["name"]
            if name == "internalValue" or (name.endswith("Input") and name[:-5] in names):
                continue
            tf_name = js.get(name, snake(name))
            attrs[tf_name] = _object_of(prop["type"])
        return cid

    def _object_of(type_ref: dict[str, Any]) -> str | None:
        local = _local(type_ref)
        if local is None or types[local]["kind"] != "class":
            return None
        for method in types[local].get("methods", []):
            # A list or map of objects: get(index) or get(key) returns one of them.
            if method["name"] == "get" and "returns" in method:
                inner = _local(method["returns"]["type"])
                return obj(inner) if inner is not None else None
        return obj(local)

    resources: dict[str, dict[str, str]] = {}
    data_sources: dict[str, dict[str, str]] = {}
    provider: dict[str, str] = {}
    for tid, klass in types.items():
        base = klass.get("base")
        if klass["kind"] != "class" or base not in (
            "cdktf.TerraformResource",
            "cdktf.TerraformDataSource",
            "cdktf.TerraformProvider",
        ):
            continue
        [config] = [
            _local(p["type"]) for p in klass["initializer"]["parameters"] if p["name"] == "config"
        ]
        assert config is not None, tid
        if base == "cdktf.TerraformProvider":
            provider = {"args": struct(config), "attrs": obj(tid)}
            continue
        link = _link(klass["docs"])
        if link is None or not link["type"]:
            raise ValueError(f"{tid} does not link to its Terraform type")
        entry = {"args": struct(config), "attrs": obj(tid)}
        # The link names the documentation page, the type without the provider's prefix.
        kind = resources if link["kind"] == "resources" else data_sources
        kind["google_" + link["type"]] = entry
    if len(versions) != 1:
        raise ValueError(f"the assembly links to several provider versions: {sorted(versions)}")
    return {
        "format": FORMAT,
        "package": f"{assembly['name']}@{assembly['version']}",
        "provider_version": versions.pop(),
        "resources": resources,
        "data_sources": data_sources,
        "provider": provider,
        "structs": structs,
        "objects": objects,
        "unlinked": sorted(unlinked),
    }


def main(argv: Iterator[str] | None = None) -> int:
    try:
        schema = load()
    except SchemaUnavailable as error:
        print(error, file=sys.stderr)
        return 1
    print(
        f"{cache_path()}: hashicorp/google {schema['provider_version']} from {schema['package']},"
        f" {len(schema['resources'])} resources, {len(schema['data_sources'])} data sources"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
