"""summary.txt: a run folder described in words, written when the run starts.

Run folders are named by hashes past the readable levels (a recipe hash and the seed), so two
folders that differ only in their encoders (minilm vs mpnet-base) or their learning rate look
alike in `ls`. summary.txt says what each is, for a person (`cat runs/**/summary.txt`); run.json
stays the record for tools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from er_core import flatten, write_bytes_atomic

from er_train.plan import Plan

# the recipe keys worth a line of their own, in this order (the rest follow under "config")
HEADLINE = ("run.method", "train.epochs", "train.batch_size", "train.lr", "train.decay")


def _value(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def summary_text(p: Plan) -> str:
    data, ds = p.data, p.data.dataset
    lines = [
        f"run       {p.run_id[:12]}  (recipe {p.recipe_hash[:12]}, seed {p.resolved['seed']})",
        f"dataset   {ds.dataset} ({ds.id[:12]}), task {data.main}"
        + (f", tasks {', '.join(data.tasks)}" if len(data.tasks) > 1 else ""),
    ]
    for m, f in data.features.items():
        where = f" from {f.encoder_source}" if f.encoder_source else ""
        lines.append(f"{m:<9} {f.encoder}{where} (features {f.id[:12]}, dim {f.dim})")
    for m in data.tuned:
        lines.append(f"{m:<9} trained in the run (run.method {p.resolved['run']['method']})")
    net = p.spec.to_dict()
    parts = ", ".join(f"{k} {net[k]['kind']}" for k in ("fusion", "context", "head") if k in net)
    lines.append(f"network   {parts} ({p.spec.hash[:12]})")
    flat = flatten(p.resolved)
    lines.append("recipe    " + ", ".join(f"{k} {_value(flat[k])}" for k in HEADLINE if k in flat))
    lines.append(f"loss      {p.loss_cfg[data.main]['kind']}")
    lines += ["", "config (resolved):"]
    lines += [f"  {k} = {_value(v)}" for k, v in sorted(flat.items())]
    return "\n".join(lines) + "\n"


def write_summary(p: Plan, folder: Path) -> None:
    """Write (or rewrite, on resume) summary.txt in the run folder, atomically."""
    write_bytes_atomic(folder / "summary.txt", summary_text(p).encode("utf-8"))
