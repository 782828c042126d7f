"""Parts by name: `register` a factory with its config class, `create` one from a TOML section.

A part is a fusion, a context model, a head, a loss or an auxiliary objective (`aux`). Its TOML section names it with `kind`;
every other key is validated against the part's own config class, so a typo or an option the part
does not have is an error naming the key, and an unknown `kind` lists the known ones:

    [fusion]
    kind = "moe"
    experts = 8

A config class may define `check(origins)`, raising an ErError (at `$.field`, or
`file:$.field`) for a rule across its fields that a range cannot say, e.g. `top_k <= experts`.

Registering a new part (in a user's own module) makes it available to every config:

    @register("fusion", "sum", SumConfig)
    def _sum(cfg: SumConfig, inputs: FusionInputs) -> nn.Module: ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from er_core import Config, ErError, to_dict, validate

FAMILIES = ("fusion", "context", "head", "loss", "aux")


@dataclass(frozen=True)
class Part:
    family: str
    name: str
    config: type[Config]
    build: Callable[..., Any]

    @property
    def doc(self) -> str:
        """First line of the factory's docstring: what `er-models list` prints."""
        return (self.build.__doc__ or "").strip().split("\n")[0]


_PARTS: dict[str, dict[str, Part]] = {f: {} for f in FAMILIES}


def register(family: str, name: str, config: type[Config]) -> Callable[[Callable], Callable]:
    """Decorator: make `build(cfg, *args)` the factory of part `name` in `family`."""
    if family not in _PARTS:
        raise ValueError(f"unknown part family {family!r}; known: {', '.join(FAMILIES)}")

    def deco(build: Callable) -> Callable:
        if name in _PARTS[family]:
            raise ValueError(f"{family} {name!r} is registered twice")
        _PARTS[family][name] = Part(family, name, config, build)
        return build

    return deco


def _load_builtins() -> None:
    # the built-in parts register themselves on import
    from er_models import (  # noqa: F401
        context,
        context_gru,
        context_transformer,
        contrastive,
        crossmodal,
        fusion_attention,
        fusion_basic,
        fusion_moe,
        fusion_shared_private,
        fusion_tensor,
        heads,
        heads_moe,
        losses,
    )


def parts(family: str) -> dict[str, Part]:
    """name -> Part, for every registered part of `family`."""
    _load_builtins()
    return dict(sorted(_PARTS[family].items()))


def names(family: str) -> list[str]:
    return list(parts(family))


@dataclass(frozen=True)
class Resolved:
    """A part's name and its validated config (defaults filled)."""

    family: str
    kind: str
    config: Config

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **to_dict(self.config)}


def resolve(
    family: str,
    section: Mapping[str, Any],
    origins: Mapping[str, str] | None = None,
    prefix: str | None = None,
) -> Resolved:
    """Validate a `[family]` TOML section: its `kind` must be registered, its other keys must be
    fields of that part's config. `origins` (key path -> file) makes errors name the file."""
    prefix = prefix or family
    origins = origins or {}
    known = parts(family)
    kind = section.get("kind")
    where = origins.get(f"{prefix}.kind") or origins.get(prefix)
    at = f"{where}:$.{prefix}.kind" if where else f"$.{prefix}.kind"
    if not isinstance(kind, str) or not kind:
        raise ErError(
            f"[{prefix}] has no kind", at=at, hint=f"set kind to one of: {', '.join(known)}"
        )
    if kind not in known:
        raise ErError(f"unknown {family} '{kind}'", at=at, hint=f"known: {', '.join(known)}")
    rest = {k: v for k, v in section.items() if k != "kind"}
    sub = {k[len(prefix) + 1 :]: v for k, v in origins.items() if k.startswith(prefix + ".")}
    try:
        cfg = validate(rest, known[kind].config, sub)
        check = getattr(cfg, "check", None)
        if callable(check):  # a rule across fields (top_k <= experts), before any work
            check(sub)
    except ErError as e:
        raise ErError(
            f"{family} '{kind}': {e.what}".replace("'<root>'", f"'{prefix}'"),
            at=_in_file((e.at or "$").replace("$", f"$.{prefix}", 1), origins.get(prefix)),
            hint=_choices(known[kind].config, e) or e.hint,
        ) from None
    return Resolved(family, kind, cfg)


def _choices(config: type[Config], e: ErError) -> str | None:
    """For a bad value of a `Literal` field (msgspec says only "Invalid enum value"): the hint
    listing the values it takes."""
    import msgspec.inspect as mi

    key = (e.at or "").rpartition("$.")[2]
    for f in mi.type_info(config).fields:
        if f.name == key and isinstance(f.type, mi.LiteralType):
            return f"{key} is one of: {', '.join(map(str, f.type.values))}"
    return None


def _in_file(at: str, section_file: str | None) -> str:
    """`at` with the file the section came from, where it names no file of its own."""
    return f"{section_file}:{at}" if section_file and at.startswith("$") else at


def create(resolved: Resolved, *args: Any, **kwargs: Any) -> Any:
    """Build the part `resolved` names: its factory gets the config, then `args`."""
    return parts(resolved.family)[resolved.kind].build(resolved.config, *args, **kwargs)
