"""What an adapter is: options from config, the source files it reads, and a canonical table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from er_core import Config, TaskInfo


@dataclass
class Loaded:
    """An adapter's result: the canonical table (see er_data.table) and the tasks it holds."""

    dataset: str
    frame: pl.DataFrame
    tasks: dict[str, TaskInfo]
    modalities: list[str] = field(default_factory=lambda: ["text"])


class Adapter(Protocol):
    name: str
    version: str
    Options: type[Config]  # must have a `task: str` field; built from --config/--set/--task

    def inputs(self, root: Path, opts: Any) -> list[Path]:
        """Source files whose bytes define the table (hashed into the output's id)."""
        ...

    def load(self, root: Path, opts: Any) -> Loaded: ...
