#!/usr/bin/env python3
"""Replay a bundle written by `er-eval export` with torch and safetensors alone.

    python tools/check_bundle.py BUNDLE [FEATURES.safetensors EXPECTED.safetensors] [--tol T]

Loads BUNDLE/model.pt with torch.jit.load, runs it dialogue by dialogue over FEATURES (default
BUNDLE/check/features.safetensors, written by `er-eval export --check`), compares every output
with EXPECTED (default BUNDLE/check/expected.safetensors: the run's own test outputs), prints the
largest |difference| and exits 1 if it is above --tol (default 1e-6), 2 on bad usage.

FEATURES holds one (n, d) float32 tensor per modality (named as in bundle.json), `present`
(n, M) bool, `speakers` (n,) int64 and `dialogue` (n,) int64, the rows of each dialogue
contiguous and in turn order; EXPECTED one tensor per task, row for row. It imports nothing of
er on purpose: CI runs it in a fresh venv holding only torch and safetensors, which is the
promise the bundle makes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file


def replay(program: torch.jit.ScriptModule, feats: dict[str, torch.Tensor], modalities: list[str]):
    """task -> the program's outputs for every row, one call per dialogue."""
    dialogue = feats["dialogue"]
    change = torch.nonzero(dialogue[1:] != dialogue[:-1]).flatten() + 1
    bounds = [0, *change.tolist(), dialogue.numel()]
    parts: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for lo, hi in itertools.pairwise(bounds):
            x = {m: feats[m][lo:hi] for m in modalities}
            out = program(x, feats["present"][lo:hi], feats["speakers"][lo:hi])
            for task, y in out.items():
                parts.setdefault(task, []).append(y)
    return {task: torch.cat(ys) for task, ys in parts.items()}, len(bounds) - 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("files", nargs="*", type=Path, help="FEATURES.safetensors EXPECTED.safetensors")
    ap.add_argument("--tol", type=float, default=1e-6)
    args = ap.parse_args()
    if len(args.files) not in (0, 2):
        ap.error("give both FEATURES and EXPECTED, or neither (the bundle's check/ files)")
    default = [args.bundle / "check" / f for f in ("features.safetensors", "expected.safetensors")]
    features, expected = args.files or default
    for p in (args.bundle / "model.pt", args.bundle / "bundle.json", features, expected):
        if not p.is_file():
            print(f"error: no such file, at {p}", file=sys.stderr)
            print(
                "hint: export with `er-eval export RUN --out DIR --check STREAM`", file=sys.stderr
            )
            return 2
    with warnings.catch_warnings():  # torch >= 2.9 calls TorchScript deprecated
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.jit.load(str(args.bundle / "model.pt")).eval()
    modalities = json.loads((args.bundle / "bundle.json").read_text())["signature"]["modalities"]
    got, dialogues = replay(program, load_file(str(features)), modalities)
    want = load_file(str(expected))
    worst = 0.0
    for task, y in want.items():
        worst = max(worst, float((got[task].float() - y.float()).abs().max()))
    n = next(iter(want.values())).shape[0]
    where = f"{n} utterances in {dialogues} dialogues"
    print(
        f"max |diff| {worst:.3g} over {where} (torch {torch.__version__}, tolerance {args.tol:g})"
    )
    return 0 if worst <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
