"""The README.md of an exported bundle: how to call its program with torch alone.

Written from the bundle's own bundle.json, so the example names this run's modalities, widths
and tasks and can be pasted as it is.
"""

from __future__ import annotations

from typing import Any

TEMPLATE = """# Exported er run {run_short}

A model trained by er, exported by `er-eval export`:
run `{run}`, dataset {dataset}.
It needs **torch** (TorchScript, saved with torch {torch}) and nothing of er; `safetensors`
reads the optional files.

## Files

- `model.pt`: the TorchScript program (below).
- `weights.safetensors`: the same weights as er-models' state dict (for er, or to inspect).
- `network.json`: the resolved network (widths, fusion, context, head, input dims, tasks).
- `classes.json`: task -> class names, in the order of the program's probability columns.
- `encoders.json`: per modality, the encoder whose features the model reads:
  {encoders}.
  New inputs must be features from that same encoder and preprocessing config (the same
  `cache_key`); `er-features extract --modality M --encoder NAME` makes them.
- `bundle.json`: run id, versions, the signature, the measured differences.
- `check/` (when exported with `--check`): the test split's inputs (`features.safetensors`) and
  the run's own test outputs (`expected.safetensors`); `tools/check_bundle.py BUNDLE` in er's
  repository replays them and prints the largest difference.

## Calling the program

The program takes ONE dialogue at a time, its n utterances in turn order:

    program(feats, present, speakers=None) -> {{task: tensor}}

- `feats`: a dict with one float32 tensor (n, d) per modality:
  {dims}.
- `present`: a (n, {m}) bool tensor, columns in the order {modalities}; False where that
  modality is missing for that utterance (its features are then ignored: pass zeros).
- `speakers`: a (n,) int64 tensor of speaker ids (any integers; the same id is the same person
  within the dialogue). {speakers}
- returns, per task:
  {outputs}.

Utterances of one dialogue see each other only through the context model (here: {context});
with `none`, each utterance is classified on its own and a "dialogue" may be any batch of
utterances.
The program runs on the CPU in float32.

```python
import json, torch
program = torch.jit.load("model.pt").eval()
classes = json.load(open("classes.json"))
n = 3  # utterances of one dialogue
feats = {{{example_feats}}}
present = torch.ones(n, {m}, dtype=torch.bool)
out = program(feats, present, torch.tensor([0, 1, 0]))
{last_lines}
```
"""


def readme(meta: dict[str, Any]) -> str:
    sig = meta["signature"]
    mods, dims = sig["modalities"], sig["dims"]
    outputs = "; ".join(
        f"`{t}` (n,) values"
        if kind == "regression"
        else f"`{t}` (n, {len(sig['classes'][t])}) "
        f"probabilities over {', '.join(sig['classes'][t])}"
        for t, kind in sig["tasks"].items()
    )
    speakers = (
        "This model reads speakers: the argument is required."
        if sig["speakers"]
        else "This model does not read speakers: the argument may be left out."
    )
    main = next((t for t, k in sig["tasks"].items() if k == "classification"), None)
    if main is None:  # a regression-only run: print the values
        last = f'print(out["{next(iter(sig["tasks"]))}"].tolist())'
    else:
        last = (
            f'best = out["{main}"].argmax(-1)\nprint([classes["{main}"][i] for i in best.tolist()])'
        )
    return TEMPLATE.format(
        run_short=meta["run"][:12],
        run=meta["run"],
        dataset=meta["dataset_name"] or meta["dataset"][:12],
        torch=meta["versions"]["torch"],
        encoders=", ".join(f"{m}: `{meta['encoders'][m]}`" for m in mods),
        dims=", ".join(f'`"{m}"` ({dims[m]} wide)' for m in mods),
        m=len(mods),
        modalities=", ".join(mods),
        speakers=speakers,
        outputs=outputs,
        context=meta["network"]["context"],
        example_feats=", ".join(f'"{m}": torch.randn(n, {dims[m]})' for m in mods),
        last_lines=last,
    )
