"""Every package's public names are the same object on every lookup, whatever was imported first.

The bug this guards against: a lazy `__getattr__` that exports a function under the name of one
of the package's own submodules. Once anything imports that submodule, the import system sets
the package attribute to the module, so `er_data.prepare` was a function on the first lookup
and a module afterwards. Each package is checked in a fresh interpreter after importing ALL of
its submodules (the worst import order), then every name in `__all__` is looked up three ways.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGES = ["er_core", "er_data", "er_features", "er_models", "er_train", "er_eval"]

# run in a fresh interpreter: argv[1] is the package; prints a JSON report
CHECK = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys, types

    name = sys.argv[1]
    pkg = importlib.import_module(name)
    skipped = []
    for info in pkgutil.walk_packages(pkg.__path__, name + "."):
        if info.name.endswith(".__main__"):  # runs the command line
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as e:  # a submodule of an optional extra that is not installed
            skipped.append(f"{info.name}: {e}")
    problems = []
    lazy = getattr(pkg, "_LAZY", {})
    for public in pkg.__all__:
        first = getattr(pkg, public)
        if isinstance(first, types.ModuleType):
            problems.append(f"{name}.{public} is a module")
            continue
        if getattr(pkg, public) is not first:
            problems.append(f"{name}.{public} differs between two lookups")
        scope = {}
        exec(f"from {name} import {public} as value", scope)
        if scope["value"] is not first:
            problems.append(f"`from {name} import {public}` differs from {name}.{public}")
        if public in lazy:
            where = lazy[public]
            module, attr = where if isinstance(where, tuple) else (where, public)
            if getattr(importlib.import_module(module), attr) is not first:
                problems.append(f"{name}.{public} is not {module}.{attr}")
    print(json.dumps({"names": len(pkg.__all__), "problems": problems, "skipped": skipped}))
    """
)


def check_package(name: str, pythonpath: str | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [sys.executable, "-c", CHECK, name], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_are_one_object_each(name):
    report = check_package(name)
    assert report["names"] > 0
    assert report["problems"] == []


def test_the_check_fails_on_a_function_named_like_its_module(tmp_path):
    """The check itself catches the old bug: a copy of er_data whose `prepare` function lives in
    a module named `prepare` (as before the rename) shadows the real package on PYTHONPATH."""
    import er_data

    src = Path(er_data.__file__).parent
    copy = tmp_path / "er_data"
    copy.mkdir()
    for f in src.glob("*.py"):
        (copy / f.name).write_text(f.read_text())
    (copy / "adapters").symlink_to(src / "adapters", target_is_directory=True)
    (copy / "preparation.py").rename(copy / "prepare.py")
    init = copy / "__init__.py"
    init.write_text(init.read_text().replace('"er_data.preparation"', '"er_data.prepare"'))
    report = check_package("er_data", pythonpath=str(tmp_path))
    assert "er_data.prepare is a module" in report["problems"]


def test_importing_a_package_loads_no_heavy_dependency():
    """Lazy stays lazy: `import er_x` (what every `er-x --help` does first) pulls in neither
    torch nor polars; the public names load them when used."""
    code = (
        "import sys\n"
        + "".join(f"import {p}\n" for p in PACKAGES)
        + "print([m for m in ('torch', 'polars', 'transformers') if m in sys.modules])"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
