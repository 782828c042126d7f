"""Human-written TOML configs: merged left to right, then `--set a.b=value`, strictly validated.

Tables merge key by key, with one exception: a table that names a different `kind` than the
one merged so far replaces it, since the old kind's options mean nothing to the new one
(`--set fusion.kind=attention` over a file with `[fusion] kind = "deep"  hidden = 512`).

Errors name the file (or the `--set`) that brought the offending key, and the key's path.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from er_core.errors import ErError, UsageError

T = TypeVar("T")


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of human-written config sections: unknown keys are errors, not silently ignored."""


def load_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ErError("config file not found", at=str(p), hint="check the --config path")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ErError(
            f"config is not UTF-8 ({e.reason})", at=str(p), hint="re-save the file as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ErError(
            f"malformed TOML: {e}", at=str(p), hint="see https://toml.io for the syntax"
        ) from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """`a.b=value` -> (["a", "b"], value). The value is read as TOML (3, true, "x", [1, 2]);
    anything that is not valid TOML is taken as a plain string (so `fusion.kind=attention` works)."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", key):
        raise UsageError(
            f"bad --set '{item}'", hint="write --set section.key=value, e.g. --set task=sentiment"
        )
    if "\n" in value or "\r" in value:
        raise UsageError(
            f"bad --set '{key}': its value spans lines",
            at=f"--set {key}",
            hint="a --set value is one line; put longer settings in a --config file",
        )
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.split("."), parsed


def _merge(
    dst: dict[str, Any], src: Mapping[str, Any], origin: str, seen: dict[str, str], prefix: str = ""
) -> None:
    for k, v in src.items():
        path = f"{prefix}{k}"
        old = dst.get(k)
        if (
            isinstance(v, Mapping)
            and isinstance(old, dict)
            and v.get("kind", old.get("kind")) != old.get("kind")
        ):
            for key in [key for key in seen if key.startswith(path + ".")]:
                del seen[key]
            dst[k] = {}  # another kind: the old kind's options go
        if isinstance(v, Mapping) and isinstance(dst.get(k), dict):
            _merge(dst[k], v, origin, seen, path + ".")
        else:
            dst[k] = _copy(v)
            seen[path] = origin
            for sub in _leaf_paths(v, path + "."):
                seen[sub] = origin


def _copy(v: Any) -> Any:
    return {k: _copy(x) for k, x in v.items()} if isinstance(v, Mapping) else v


def _leaf_paths(v: Any, prefix: str) -> list[str]:
    if not isinstance(v, Mapping):
        return []
    out = []
    for k, x in v.items():
        out.append(prefix + k)
        out.extend(_leaf_paths(x, f"{prefix}{k}."))
    return out


def merge_sources(
    files: Sequence[str | Path] = (),
    overrides: Sequence[str] = (),
    base: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge `base`, then each file, then each override. Returns (data, key path -> origin)."""
    data: dict[str, Any] = {}
    seen: dict[str, str] = {}
    if base:
        _merge(data, base, "<defaults>", seen)
    for f in files:
        _merge(data, load_toml(f), str(f), seen)
    for item in overrides:
        keys, value = parse_override(item)
        nested: dict[str, Any] = {keys[-1]: value}
        for k in reversed(keys[:-1]):
            nested = {k: nested}
        _merge(data, nested, f"--set {item}", seen)
    return data, seen


_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]*)`")
# msgspec's path: `.key` for a field, `[3]` for a list item, `[...]` for a dict value
_AT = re.compile(r" - at `\$((?:\.[^`.\[]+|\[\d+\]|\[\.\.\.\])*)`$")
_INDEX = re.compile(r"\[(?:\d+|\.\.\.)\]")
_PART = re.compile(r"\.([^`.\[]+)|(\[(?:\d+|\.\.\.)\])")


def _path_parts(path: str) -> list[str]:
    """`.tags[0].name` -> ["tags[0]", "name"]: an index stays with the key it indexes."""
    parts: list[str] = []
    for name, index in _PART.findall(path):
        if name:
            parts.append(name)
        elif parts:
            parts[-1] += index
        else:
            parts.append(index)
    return parts


def _known_fields(cls: Any, parts: Sequence[str]) -> list[str]:
    """Field names of the Struct reached from `cls` by following `parts`."""
    owner = _struct_at(cls, parts)
    return [f.encode_name for f in msgspec.structs.fields(owner)] if owner is not None else []


def validate(data: Mapping[str, Any], cls: type[T], origins: Mapping[str, str] | None = None) -> T:
    """Convert merged config data to `cls`; an error names the key and the file it came from."""
    try:
        return msgspec.convert(data, cls, strict=True)
    except msgspec.ValidationError as e:
        msg = str(e)
        m = _AT.search(msg)
        parts = _path_parts(m.group(1)) if m else []
        what = msg[: m.start()] if m else msg
        unknown = _UNKNOWN.search(msg)
        missing = _MISSING.search(msg)
        if missing:
            key_parts = [*parts, missing.group(1)]
            what = f"missing required key '{'.'.join(key_parts)}'"
            hint = "add the key to the config file or pass --set"
        elif unknown:
            key_parts = [*parts, unknown.group(1)]
            known = _known_fields(cls, parts)
            hint = f"known keys here: {', '.join(known)}" if known else "remove the key"
            what = f"unknown key '{'.'.join(key_parts)}'"
        else:
            key_parts = parts
            what = _readable(what)
            ranged = re.search(r"Expected `\w+` [<>]=?|length|Expected `str` matching|finite", what)
            choices = _choices(cls, parts)
            if choices:
                hint = f"choose one of: {', '.join(map(str, choices))}"
            elif ranged:
                hint = "choose a value in the allowed range"
            else:
                hint = "fix the value's type or spelling"
            what = f"bad value for '{'.'.join(key_parts) or '<root>'}': {what}"
        key = ".".join(key_parts)
        origins = origins or {}
        files = sorted({o for o in origins.values() if not o.startswith(("--set", "<"))})
        # a missing key has no origin of its own: name its section's file, or the only file
        origin = origin_of(".".join(parts) if missing else key, origins) or (
            files[0] if len(files) == 1 else None
        )
        path = f"$.{key}" if key else "$"
        raise ErError(what, at=f"{origin}:{path}" if origin else path, hint=hint) from None


def _readable(what: str) -> str:
    """msgspec's bound for "finite" is the largest float: say what it means."""
    big = re.escape(repr(sys.float_info.max))
    return re.sub(rf"Expected `(\w+)` (<= {big}|>= -{big})", r"Expected a finite `\1`", what)


def _choices(cls: Any, parts: Sequence[str]) -> list[Any]:
    """The allowed values of a Literal field at `parts`, or [] if it is not one."""
    if not parts:
        return []
    owner = _struct_at(cls, parts[:-1])
    if owner is None:
        return []
    by_name = {f.encode_name: f.type for f in msgspec.structs.fields(owner)}
    typ = by_name.get(_INDEX.sub("", parts[-1]))
    for arg in (typ, *getattr(typ, "__args__", ())):
        if getattr(arg, "__origin__", None) is Literal:
            return list(arg.__args__)
    return []


def _struct_at(cls: Any, parts: Sequence[str]) -> Any:
    """The Struct reached from `cls` by following `parts`, or None."""
    for part in parts:
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
            return None
        by_name = {f.encode_name: f.type for f in msgspec.structs.fields(cls)}
        cls = by_name.get(_INDEX.sub("", part))
        while hasattr(cls, "__args__"):  # X | None, list[X], dict[str, X] -> X
            cls = ([a for a in cls.__args__ if a is not type(None)] or [None])[-1]
    return cls if isinstance(cls, type) and issubclass(cls, msgspec.Struct) else None


def origin_of(key: str, origins: Mapping[str, str]) -> str | None:
    """The file (or `--set`) that brought `key`, or the section holding it."""
    key = _INDEX.sub("", key)  # `tags[0]` came from wherever `tags` did
    while key:
        if key in origins:
            return origins[key]
        key = key.rpartition(".")[0]
    return None


def load_config(
    cls: type[T],
    files: Sequence[str | Path] = (),
    overrides: Sequence[str] = (),
    base: Mapping[str, Any] | None = None,
) -> T:
    """Merge and validate in one step: the usual way a tool reads its config."""
    data, origins = merge_sources(files, overrides, base)
    return validate(data, cls, origins)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The resolved config as plain JSON data, for a message and for the content id.

    Exactly what a reader of the message gets back (a tuple becomes a list), so a manifest built
    in memory equals the same manifest read from disk.
    """
    return msgspec.json.decode(msgspec.json.encode(cfg))
