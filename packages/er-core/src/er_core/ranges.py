"""Ranges in the schema: every numeric option and config field says what values it accepts.

Config sections and CLI options annotate their fields with these types (msgspec `Meta`
constraints), so a bad value is a usage error naming its key before any work is done, never a
silent no-op (`--batch-size -1`) or a run on a meaningless value (`lr = inf`, `width = 0`).
Floats bounded here are also finite: NaN fails every comparison and ±inf fails the bound.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

from er_core.errors import UsageError

T = TypeVar("T")

_MAX = sys.float_info.max

PositiveInt = Annotated[int, Meta(ge=1)]
NonNegativeInt = Annotated[int, Meta(ge=0)]
PositiveFloat = Annotated[float, Meta(gt=0.0, le=_MAX)]
NonNegativeFloat = Annotated[float, Meta(ge=0.0, le=_MAX)]
FiniteFloat = Annotated[float, Meta(ge=-_MAX, le=_MAX)]
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
Dropout = Annotated[float, Meta(ge=0.0, lt=1.0)]  # 1.0 would drop everything


def check_options(cls: type[T], values: Mapping[str, Any]) -> T:
    """Validate a command's options (a dict of parameter name -> value) against the Struct
    `cls`; a bad one is a UsageError naming the option as typed (`--batch-size`)."""
    try:
        return msgspec.convert(dict(values), cls, strict=True)
    except msgspec.ValidationError as e:
        msg = str(e)
        what, _, path = msg.partition(" - at `$.")
        name = path.rstrip("`").split(".")[0].split("[")[0]
        option = "--" + name.replace("_", "-") if name else None
        got = values.get(name) if name else None
        raise UsageError(
            f"bad value {got!r} for {option}: {what}" if option else what,
            at=option,
            hint="choose a value in the allowed range (see --help)",
        ) from None
