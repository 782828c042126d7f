"""The er packages' version, kept in one place: the file VERSION at the workspace root.

Every package ships with that version and pins its er siblings to it (`er-core==0.2.0`), so
wheels built together install together with plain pip and never mix with other releases.

    python tools/version.py              # print the version
    python tools/version.py --check      # exit 1, naming each file, if anything disagrees
    python tools/version.py --set 0.2.0  # write VERSION, every pyproject and __version__

tests/test_versions.py runs --check's function, so a drift fails the tests.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION_FILE = ROOT / "VERSION"
PACKAGES = ("er-core", "er-data", "er-features", "er-models", "er-train", "er-eval")
SEMVER = re.compile(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?")

# `version = "..."` in a pyproject's [project] table (the first such line in the file)
PROJECT_VERSION = re.compile(r'(?m)^version = "([^"]*)"')
# a sibling in a dependency list: "er-core", "er-core==0.1.0", "er-data[media]>=0.1"
SIBLING = re.compile(
    r'(?<!name = )"(er-(?:core|data|features|models|train|eval))(\[[a-z,]+\])?([<>=!~][^"]*)?"'
)
INIT_VERSION = re.compile(r'(?m)^__version__ = "([^"]*)"')


def read() -> str:
    text = VERSION_FILE.read_text().strip()
    if not SEMVER.fullmatch(text):
        raise SystemExit(f"error: {VERSION_FILE} holds {text!r}, not a version like 0.1.0")
    return text


def pyproject(name: str) -> Path:
    return ROOT / "packages" / name / "pyproject.toml"


def init(name: str) -> Path:
    return ROOT / "packages" / name / "src" / name.replace("-", "_") / "__init__.py"


def shipped_part(text: str) -> str:
    """The part of a pyproject a wheel's metadata comes from: [project] and its subtables."""
    start = text.index("[project]")
    end = re.search(r"(?m)^\[(?!project)", text[start:])
    return text[start : start + end.start()] if end else text[start:]


def problems(version: str) -> list[str]:
    """Every place that disagrees with `version`, as 'file: what' lines."""
    found = []
    for name in PACKAGES:
        path, text = pyproject(name), pyproject(name).read_text()
        m = PROJECT_VERSION.search(text)
        if m is None or m.group(1) != version:
            found.append(f"{path}: version is {m and m.group(1)!r}, VERSION says {version}")
        for dep, _extra, pin in SIBLING.findall(shipped_part(text)):
            if pin != f"=={version}":
                found.append(f"{path}: {dep} is pinned {pin or 'nowhere'}, not =={version}")
        m = INIT_VERSION.search(init(name).read_text())
        if m is None or m.group(1) != version:
            found.append(f"{init(name)}: __version__ is {m and m.group(1)!r}, not {version}")
    return found


def write(version: str) -> None:
    if not SEMVER.fullmatch(version):
        raise SystemExit(f"error: {version!r} is not a version like 0.2.0")
    VERSION_FILE.write_text(version + "\n")
    for name in PACKAGES:
        path, text = pyproject(name), pyproject(name).read_text()
        part = shipped_part(text)
        pinned = SIBLING.sub(lambda m: f'"{m.group(1)}{m.group(2) or ""}=={version}"', part)
        pinned = PROJECT_VERSION.sub(f'version = "{version}"', pinned, count=1)
        path.write_text(text.replace(part, pinned))
        init_text = init(name).read_text()
        init(name).write_text(INIT_VERSION.sub(f'__version__ = "{version}"', init_text, count=1))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--set"] and len(argv) == 2:
        write(argv[1])
        print(f"er {argv[1]}: VERSION, {len(PACKAGES)} pyprojects and __version__ written")
        print("hint: run `uv lock` to record it")
        return 0
    if argv == ["--check"]:
        bad = problems(read())
        for line in bad:
            print(f"error: {line}", file=sys.stderr)
        if bad:
            print("hint: python tools/version.py --set $(cat VERSION)", file=sys.stderr)
        return 1 if bad else 0
    if not argv:
        print(read())
        return 0
    print(__doc__.strip().split("\n\n")[2], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
