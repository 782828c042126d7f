#!/usr/bin/env bash
# Fine-tuning the text encoder on real MELD: frozen MiniLM features (method F, configs/train/meld.toml
# without a context model) vs MiniLM with LoRA adapters trained in the run (method L,
# configs/train/meld-lora.toml), seeds 0-2, each run selected on dev and tested once. Writes the
# mean ± std tables into README.md between the meld-finetune markers, and prints each L run's
# epoch times. Slow on a CPU (minutes per LoRA epoch); runs are content-addressed, so a re-run
# trains only what is missing.
#
# Usage: uv run bash tools/meld-finetune.sh [MELD_DIR]
#   MELD_DIR holds train/dev/test_sent_emo.csv (default: $ER_SHARED_DATA/meld)
#   ER_MELD_DIR=meld-text  work folder (features, runs);  ER_SEEDS="0 1 2"
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-${ER_SHARED_DATA:-../shared/data}/meld}
dir=${ER_MELD_DIR:-meld-text}
seeds=${ER_SEEDS:-0 1 2}
mkdir -p "$dir"
: > "$dir/finetune.ndjson.tmp"

er-data prepare meld --root "$root" --out "$dir/out" > "$dir/dataset.ndjson"
er-features extract -m text -e minilm --out "$dir/out" < "$dir/dataset.ndjson" > "$dir/minilm.ndjson"
for seed in $seeds; do
    echo "--- minilm frozen (F), seed $seed" >&2
    er-train "$dir/minilm.ndjson" -c configs/train/meld.toml --set context.kind=none \
        --seed "$seed" --runs "$dir/runs" --set run.category=meld-text \
        | tail -n 1 >> "$dir/finetune.ndjson.tmp"
    echo "--- minilm LoRA (L), seed $seed" >&2
    er-train "$dir/dataset.ndjson" -c configs/train/meld.toml -c configs/train/meld-lora.toml \
        --seed "$seed" --runs "$dir/runs" --set run.category=meld-text \
        | tail -n 1 >> "$dir/finetune.ndjson.tmp"
done
mv "$dir/finetune.ndjson.tmp" "$dir/finetune.ndjson"

{
    er-eval table "$dir/finetune.ndjson" --by method --metric test/emotion/weighted_f1
    echo
    er-eval table "$dir/finetune.ndjson" --by method --metric test/emotion/accuracy
    echo
    er-eval table "$dir/finetune.ndjson" --by method --metric dev/emotion/weighted_f1
} > "$dir/finetune.md"
cat "$dir/finetune.md"
python - "$dir/finetune.ndjson" <<'PY' >&2
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["config"]["run"]["method"] != "F":
        times = ", ".join(f"{e['seconds']:.0f}" for e in m["epochs"])
        print(f"method {m['config']['run']['method']} seed {m['seed']}: epoch seconds {times}")
PY
python tools/readme_table.py meld-finetune "$dir/finetune.md"
