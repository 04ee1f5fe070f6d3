"""Build every function's deployment bundle: build/<name>/ and build/<name>.zip.

A function is a folder of functions/ with a main.py. Its bundle holds that folder's
files, a copy of the shared/ package and the runtime requirements.txt, because Cloud
Functions uploads only the function's own folder and does not follow symlinks.

The zip is reproducible: entries sorted, fixed timestamps and permissions, no caches.
The same code gives the same bytes and so the same SHA-256, which names the bundle
object in Terraform: unchanged code is not redeployed, changed code always is.

Standard library only, so ``./deploy.sh package`` works without the virtualenv.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# 1980-01-01 is the earliest time a zip entry can hold.
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # a regular file, rw-r--r--
SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".ruff_cache", ".DS_Store"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


class PackagingError(Exception):
    """A function folder cannot be turned into a bundle."""


@dataclass(frozen=True)
class Bundle:
    name: str
    folder: Path
    archive: Path
    sha256: str
    files: tuple[str, ...]


def function_names(root: Path) -> list[str]:
    """Every folder of functions/ holding a main.py, sorted."""
    return sorted(p.parent.name for p in (root / "functions").glob("*/main.py") if p.is_file())


def _wanted(path: Path) -> bool:
    return not (
        path.name in SKIPPED_NAMES
        or path.suffix in SKIPPED_SUFFIXES
        or any(part in SKIPPED_NAMES for part in path.parts)
    )


def _files(folder: Path) -> Iterator[Path]:
    """Files under folder (symlinks followed, so their content is copied), caches skipped."""
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if _wanted(relative) and path.is_file():
            yield relative


def _bundle_sources(root: Path, name: str) -> dict[str, Path]:
    """Archive path => source file, for one function."""
    function_dir = root / "functions" / name
    sources: dict[str, Path] = {}
    for relative in _files(function_dir):
        sources[relative.as_posix()] = function_dir / relative
    clashes = sorted(
        p for p in sources if p == "requirements.txt" or p.split("/", 1)[0] == "shared"
    )
    if clashes:
        raise PackagingError(
            f"functions/{name} has {', '.join(clashes)}: the bundle takes shared/ and "
            "requirements.txt from the repository root, remove them from the function folder"
        )
    shared = root / "shared"
    if not any(shared.glob("*.py")):
        raise PackagingError(f"{shared} holds no Python module")
    for relative in _files(shared):
        sources[f"shared/{relative.as_posix()}"] = shared / relative
    requirements = root / "requirements.txt"
    if not requirements.is_file():
        raise PackagingError(f"{requirements} is missing")
    sources["requirements.txt"] = requirements
    return sources


def _write_zip(archive: Path, folder: Path, names: list[str]) -> None:
    partial = archive.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w") as bundle:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the permission bits below are read
            info.external_attr = FILE_MODE << 16
            bundle.writestr(info, (folder / name).read_bytes(), compresslevel=9)
    partial.replace(archive)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package(name: str, root: Path = ROOT, build_dir: Path | None = None) -> Bundle:
    """Copy one function's files into build/<name>/ and zip that folder."""
    build_dir = build_dir or root / "build"
    sources = _bundle_sources(root, name)
    folder = build_dir / name
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)  # a file removed from the source must not linger
    for archive_name, source in sources.items():
        target = folder / archive_name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)  # the content, never a link
    names = sorted(sources)
    archive = build_dir / f"{name}.zip"
    _write_zip(archive, folder, names)
    return Bundle(name, folder, archive, _sha256(archive), tuple(names))


def package_all(root: Path = ROOT, build_dir: Path | None = None) -> list[Bundle]:
    names = function_names(root)
    if not names:
        raise PackagingError(f"no function found: no {root / 'functions'}/*/main.py")
    build_dir = build_dir or root / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    return [package(name, root, build_dir) for name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    parser.add_argument("--build-dir", type=Path, help="default: ROOT/build")
    args = parser.parse_args(argv)
    try:
        bundles = package_all(args.root.resolve(), args.build_dir)
    except PackagingError as error:
        print(f"package: {error}", file=sys.stderr)
        return 1
    for bundle in bundles:
        size = bundle.archive.stat().st_size
        print(f"{bundle.name:<22} {bundle.sha256[:16]}  {size:>8} bytes  {bundle.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
