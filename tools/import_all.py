"""Import every module of an er package; run in an environment that has only what the package
declares (.ci/run: `uv run --isolated --no-dev --all-extras --package er-x`), so an import the
package does not declare fails here, naming the module, instead of at a user's.

    python tools/import_all.py er_features
"""

from __future__ import annotations

import importlib
import pkgutil
import sys


def main(name: str) -> int:
    package = importlib.import_module(name)
    found = pkgutil.walk_packages(package.__path__, f"{name}.")
    # __main__ runs the command line when imported; its import of the CLI is covered by cli
    names = [name] + [m.name for m in found if not m.name.endswith(".__main__")]
    failed = []
    for module in names:
        try:
            importlib.import_module(module)
        except Exception as e:  # any failure is the finding; the CLI entry points import too
            failed.append(f"{module}: {type(e).__name__}: {e}")
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    print(
        f"{name}: {len(names) - len(failed)} of {len(names)} modules import with only its declared dependencies"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
