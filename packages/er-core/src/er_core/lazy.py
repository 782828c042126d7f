"""Lazy public names for an er package: `from er_x import name` imports the defining module on
first use (so `er-x --help` pays for neither torch nor polars), then caches the value in the
package, so every later lookup returns the same object. Each package's __init__ holds a table
and one line:

    __getattr__, __dir__ = lazy_exports(globals(), {"prepare": "er_data.preparation", ...})

A table value is the defining module (the attribute has the public name) or (module, attribute).
tests/test_public_api.py checks every package's names through this one mechanism.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from importlib import import_module
from typing import Any


def lazy_exports(
    namespace: MutableMapping[str, Any], table: Mapping[str, str | tuple[str, str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(__getattr__, __dir__) for the package whose globals() are `namespace`."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = (target, name) if isinstance(target, str) else target
        value = getattr(import_module(module), attr)
        namespace[name] = value  # later lookups skip __getattr__ and return this same object
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *table])

    return __getattr__, __dir__
