"""Adapter registry: a short name -> the adapter that turns that layout into the canonical table."""

from __future__ import annotations

from er_core import UsageError

from er_data.adapters.base import Adapter, Loaded


def _registry() -> dict[str, Adapter]:
    from er_data.adapters.files import Files
    from er_data.adapters.iemocap import Iemocap
    from er_data.adapters.meld import Meld
    from er_data.adapters.sims import Sims
    from er_data.adapters.table import Table

    return {
        "meld": Meld(),
        "iemocap": Iemocap(),
        "sims": Sims(),
        "table": Table(),
        "files": Files(),
    }


def names() -> list[str]:
    return sorted(_registry())


def get(name: str) -> Adapter:
    reg = _registry()
    if name not in reg:
        raise UsageError(
            f"unknown adapter '{name}'", hint=f"choose one of: {', '.join(sorted(reg))}"
        )
    return reg[name]


__all__ = ["Adapter", "Loaded", "get", "names"]
