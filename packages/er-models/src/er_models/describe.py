"""What `er-models list` and `er-models describe` print, as plain functions and data.

`list_parts()` reads the registry: every part's family, name, one-line doc and options (type,
constraints and default, from the part's config class). `describe(spec)` builds the network a
config names and reports its resolved parts, parameter counts and network hash. The renderers
turn both into the text the CLI prints; `--json` prints the data itself.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec
import msgspec.inspect as mi
from er_core import UsageError

from er_models.registry import FAMILIES, parts
from er_models.spec import MODALITIES, NetworkSpec

PARTS = ("projection", "fusion", "context", "head")  # ERModel's children, in data-flow order


# ---- list -------------------------------------------------------------------------------------


def list_parts(family: str | None = None) -> list[dict[str, Any]]:
    """One dict per registered part (all families, or `family`), sorted by family then name."""
    if family is not None and family not in FAMILIES:
        raise UsageError(f"unknown family '{family}'", hint=f"use one of: {', '.join(FAMILIES)}")
    out = []
    for fam in FAMILIES if family is None else (family,):
        for name, part in parts(fam).items():
            out.append(
                {"family": fam, "name": name, "doc": part.doc, "options": options(part.config)}
            )
    return out


def options(config: type[msgspec.Struct]) -> list[dict[str, Any]]:
    """The fields of a part's config class: name, type, default (or required) and help."""
    helps = _field_comments(config)
    declared = {f.name: f.type for f in msgspec.structs.fields(config)}
    out = []
    for f in mi.type_info(config).fields:
        t = f.type
        if isinstance(t, mi.LiteralType):  # msgspec sorts the values: keep the declared order
            t = mi.LiteralType(_literal_values(declared[f.name]) or t.values)
        opt: dict[str, Any] = {"name": f.encode_name, "type": type_name(t)}
        if f.default is not msgspec.NODEFAULT:
            opt["default"] = msgspec.to_builtins(f.default)
        elif f.default_factory is not msgspec.NODEFAULT:
            opt["default"] = msgspec.to_builtins(f.default_factory())
        else:
            opt["required"] = True
        if f.name in helps:
            opt["help"] = helps[f.name]
        out.append(opt)
    return out


def _literal_values(annotation: Any) -> tuple[Any, ...]:
    """The values of `Literal[...]` (inside `Annotated[...]` too), in the order written."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return get_args(annotation) if get_origin(annotation) is Literal else ()


def type_name(t: mi.Type) -> str:
    """A msgspec type as a short readable string: `int >= 1`, `float in [0, 1)`, `"a"|"b"`."""
    if isinstance(t, mi.LiteralType):
        return "|".join(json.dumps(v) for v in t.values)
    if isinstance(t, mi.UnionType):
        return " | ".join(type_name(x) for x in t.types)
    if isinstance(t, mi.DictType):
        return f"dict[{type_name(t.key_type)}, {type_name(t.value_type)}]"
    if isinstance(t, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        return f"list[{type_name(t.item_type)}]"
    if isinstance(t, mi.TupleType):
        return f"[{', '.join(type_name(x) for x in t.item_types)}]"
    base = type(t).__name__.removesuffix("Type").lower()
    if isinstance(t, mi.IntType | mi.FloatType):
        return base + _bounds(t)
    return base


def _bounds(t: mi.IntType | mi.FloatType) -> str:
    # er_core's finite floats are bounded by ±float max: that bound says "finite", not a range
    def num(v: float | None) -> float | None:
        return None if v is None or abs(v) == sys.float_info.max else v

    ge, gt, le, lt = num(t.ge), num(t.gt), num(t.le), num(t.lt)
    lo = ("[", ge) if ge is not None else ("(", gt) if gt is not None else None
    hi = ("]", le) if le is not None else (")", lt) if lt is not None else None
    if lo and hi:
        return f" in {lo[0]}{lo[1]:g}, {hi[1]:g}{hi[0]}"
    if lo:
        return f" {'>=' if lo[0] == '[' else '>'} {lo[1]:g}"
    if hi:
        return f" {'<=' if hi[0] == ']' else '<'} {hi[1]:g}"
    return ""


_COMMENT = re.compile(r"^\s+(\w+)\s*:[^#]*#\s*(.+?)\s*$")


def _field_comments(config: type) -> dict[str, str]:
    """`field: type = default  # help` comments in the config class and its bases."""
    out: dict[str, str] = {}
    for cls in reversed(config.__mro__):
        if cls is msgspec.Struct or not issubclass(cls, msgspec.Struct):
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):  # defined where no source is kept (exec, a REPL)
            continue
        out.update(m.groups() for m in map(_COMMENT.match, lines) if m)
    return out


def render_list(rows: list[dict[str, Any]]) -> str:
    """One line per part, like a signature: `fusion  deep(hidden: int >= 1 = 512, ...)  # doc`."""
    width = max((len(r["family"]) for r in rows), default=0)
    return "".join(
        f"{r['family']:<{width}}  {r['name']}({', '.join(map(_option, r['options']))})"
        + (f"  # {r['doc']}" if r["doc"] else "")
        + "\n"
        for r in rows
    )


def _option(o: Mapping[str, Any]) -> str:
    default = "required" if o.get("required") else json.dumps(o["default"])
    return f"{o['name']}: {o['type']} = {default}"


# ---- describe ---------------------------------------------------------------------------------


def describe(spec: NetworkSpec) -> dict[str, Any]:
    """The resolved network, its parameter counts per part and in total, and its hash."""
    from er_models.model import build_model, count_params

    model = build_model(spec)
    counts = count_params(model)
    total = counts.pop("total")
    return {
        "network_hash": spec.hash,
        "network": spec.to_dict(),
        "params": counts,
        "total": total,
        "widths": {
            "projection": spec.model.width,
            "fusion": int(model.fusion.out_dim),
            "context": int(model.context.out_dim),
        },
    }


def render_describe(d: Mapping[str, Any]) -> str:
    """Inputs, one line per part (kind, parameters, output width, options), total and hash."""
    net = d["network"]
    pairs = lambda m: " ".join(f"{k}={json.dumps(v)}" for k, v in m.items())  # noqa: E731
    widths = {  # projection: M tokens of width W; head: one output per task, summed
        **d["widths"],
        "projection": f"{len(net['dims'])}x{d['widths']['projection']}",
        "head": "+".join(str(max(c, 1)) for c in net["tasks"].values()),
    }
    rows = [("projection", "-", d["params"]["projection"], widths["projection"], net["model"])]
    for part in PARTS[1:]:
        section = dict(net[part])
        kind = section.pop("kind")
        rows.append((part, kind, d["params"][part], widths[part], section))
    kinds = max(len("kind"), *(len(r[1]) for r in rows))
    digits = max(len("params"), len(str(d["total"])))
    lines = [
        f"inputs   {' '.join(f'{m}={w}' for m, w in net['dims'].items())}",
        f"tasks    {' '.join(f'{t}={c}' for t, c in net['tasks'].items())}"
        + "  (0 = regression)" * (0 in net["tasks"].values()),
        "",
        f"{'part':<10}  {'kind':<{kinds}}  {'params':>{digits}}  {'out':>5}  options",
    ]
    for part, kind, n, out, opts in rows:
        line = f"{part:<10}  {kind:<{kinds}}  {n:>{digits}}  {out!s:>5}  {pairs(opts)}"
        lines.append(line.rstrip())
    lines.append(f"{'total':<10}  {'':<{kinds}}  {d['total']:>{digits}}")
    lines += ["", f"network  {d['network_hash']}"]
    return "\n".join(lines) + "\n"


# ---- command-line inputs ----------------------------------------------------------------------


def parse_dims(text: str) -> dict[str, int]:
    """`text=384,audio=512` -> {"text": 384, "audio": 512}; a bad form is a usage error."""
    hint = "write --dims modality=width,..., e.g. --dims text=384,audio=384 (text, audio, video)"
    dims = _pairs(text, "--dims", hint)
    for m, w in dims.items():
        if m not in MODALITIES:
            raise UsageError(f"unknown modality '{m}' in --dims '{text}'", hint=hint)
        if w < 1:
            raise UsageError(f"width of {m} must be >= 1 in --dims '{text}'", hint=hint)
    return dims


def parse_tasks(text: str) -> dict[str, int]:
    """`emotion=7,sentiment=0` -> {"emotion": 7, "sentiment": 0} (0 = regression)."""
    hint = "write --tasks name=classes,..., e.g. --tasks emotion=7,sentiment=3 (0 = regression)"
    tasks = _pairs(text, "--tasks", hint)
    for name, c in tasks.items():
        if c < 0 or c == 1:
            raise UsageError(f"task {name} has {c} classes in --tasks '{text}'", hint=hint)
    return tasks


def _pairs(text: str, flag: str, hint: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in text.split(","):
        key, sep, value = (s.strip() for s in item.partition("="))
        if not (sep and key and re.fullmatch(r"\d+", value)):
            raise UsageError(f"bad {flag} '{text}'", hint=hint)
        if key in out:
            raise UsageError(f"{key} appears twice in {flag} '{text}'", hint=hint)
        out[key] = int(value)
    return out
