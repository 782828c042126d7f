"""Checks for tools/check_wheels.sh; standard library only, so it runs in any venv.

python tools/wheels.py metadata DIST VERSION   # every wheel: its version, er-* pins == VERSION
python tools/wheels.py installed VERSION       # in a venv: er-* at VERSION, real files, no link
python tools/wheels.py unrelated NAME...       # none of these distributions is installed
python tools/wheels.py features STREAM...      # each stream ends in a non-empty FeatureManifest
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from importlib import metadata
from pathlib import Path

PACKAGES = ("er-core", "er-data", "er-features", "er-models", "er-train", "er-eval")
ER_REQUIREMENT = re.compile(r"^(er-[a-z]+)\s*(\[[^\]]*\])?\s*([^;]*)")


def fail(what: str) -> None:
    raise SystemExit(f"error: {what}")


def wheel_metadata(path: Path) -> list[tuple[str, str]]:
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(name).decode()
    head = text.split("\n\n", 1)[0]
    return [tuple(line.split(": ", 1)) for line in head.splitlines() if ": " in line]  # type: ignore[misc]


def check_metadata(folder: Path, version: str) -> None:
    # er-testing is a dev-only workspace member (classifier Private :: Do Not Upload)
    wheels = sorted(w for w in folder.glob("*.whl") if not w.name.startswith("er_testing-"))
    names = {w.name.split("-")[0].replace("_", "-") for w in wheels}
    if names != set(PACKAGES):
        fail(f"{folder}: wheels for {sorted(names)}, expected {sorted(PACKAGES)}")
    for wheel in wheels:
        fields = wheel_metadata(wheel)
        got = dict(fields).get("Version")
        if got != version:
            fail(f"{wheel.name}: Version {got}, VERSION says {version}")
        for key, value in fields:
            m = ER_REQUIREMENT.match(value) if key == "Requires-Dist" else None
            if m and m.group(3).strip() != f"=={version}":
                fail(f"{wheel.name}: Requires-Dist {value!r} is not pinned =={version}")
    print(f"{len(wheels)} wheels at {version}, every er sibling pinned =={version}")


def check_installed(version: str) -> None:
    prefix = Path(sys.prefix).resolve()
    found = []
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name not in PACKAGES:
            continue
        if dist.version != version:
            fail(f"{name} {dist.version} installed, VERSION says {version}")
        direct = dist.read_text("direct_url.json")
        if direct and json.loads(direct).get("dir_info", {}).get("editable"):
            fail(f"{name} is an editable install: {direct}")
        module = Path(str(dist.locate_file(name.replace("-", "_") + "/__init__.py"))).resolve()
        if not module.is_file() or prefix not in module.parents:
            fail(f"{name}'s code is not inside this venv ({module})")
        found.append(name)
    if not found:
        fail("no er package is installed here")
    print(f"installed from wheels, inside {prefix}: {', '.join(sorted(found))}")


def check_unrelated(names: list[str]) -> None:
    here = sorted(n for n in names if _installed(n))
    if here:
        fail(f"unrelated packages came with the weights: {', '.join(here)}")
    count = sum(1 for _ in metadata.distributions())
    print(f"none of {', '.join(names)} installed ({count} distributions in the venv)")


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def check_features(streams: list[str]) -> None:
    for path in streams:
        kinds = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        feats = [m for m in kinds if m.get("kind") == "features"]
        if not feats or feats[-1]["count"] <= 0 or feats[-1]["dim"] <= 0:
            fail(f"{path}: no non-empty FeatureManifest")
        print(f"{path}: {feats[-1]['encoder']}, {feats[-1]['count']} x {feats[-1]['dim']}")


def main(argv: list[str]) -> None:
    match argv:
        case ["metadata", folder, version]:
            check_metadata(Path(folder), version)
        case ["installed", version]:
            check_installed(version)
        case ["unrelated", *names] if names:
            check_unrelated(names)
        case ["features", *streams] if streams:
            check_features(streams)
        case _:
            fail(f"usage:\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
