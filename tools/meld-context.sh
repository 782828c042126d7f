#!/usr/bin/env bash
# MELD text with the dialogue inside the fine-tuned encoder, seeds 0-2, every run selected on
# dev and tested once:
#   emotion:   no-context LoRA (configs/train/meld-lora.toml), context LoRA
#              (meld-context-lora.toml), context full fine-tuning of layers 3-6
#              (meld-context-full.toml: the best on dev, so the base of the rest), and that
#              with SPCL or APCL added (configs/losses/spcl.toml, apcl.toml);
#   sentiment: context full fine-tuning with task = sentiment.
# Each run takes tens of minutes on a CPU, so the whole takes hours: the script starts or
# resumes every run in turn (er-train resumes a run from its folder's checkpoint and returns a
# finished one at once), so running it again after an interruption carries on where it
# stopped. When every run has finished it writes the tables into README.md (markers
# meld-context and meld-context-sentiment), the paired bootstrap of the seed-0 pairs, and each
# run's epoch times.
#
# Usage: uv run bash tools/meld-context.sh [MELD_DIR]
#   MELD_DIR holds train/dev/test_sent_emo.csv (default: $ER_SHARED_DATA/meld)
#   ER_MELD_DIR=meld-context   work folder (dataset, runs, tables)
#   ER_SEEDS="0 1 2"           seeds of every recipe
#   ER_ONLY="ctx-lora ..."     only these recipes (names below), tables not written
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-${ER_SHARED_DATA:-../shared/data}/meld}
dir=${ER_MELD_DIR:-meld-context}
seeds=${ER_SEEDS:-0 1 2}
only=${ER_ONLY:-}
mkdir -p "$dir"

base=(-c configs/train/meld.toml)
ctx=("${base[@]}" -c configs/train/meld-context-lora.toml)
full=("${ctx[@]}" -c configs/train/meld-context-full.toml)
declare -A recipe=(
    [ctx-full]="${full[*]}"
    [ctx-lora]="${ctx[*]}"
    [nocontext-lora]="${base[*]} -c configs/train/meld-lora.toml"
    [ctx-full+spcl]="${full[*]} -c configs/losses/spcl.toml"
    [ctx-full+apcl]="${full[*]} -c configs/losses/apcl.toml"
    [sentiment-ctx-full]="${full[*]} --set task=sentiment"
)
order=(ctx-full ctx-lora nocontext-lora ctx-full+spcl ctx-full+apcl sentiment-ctx-full)

er-data prepare meld --root "$root" --out "$dir/out" > "$dir/dataset.ndjson"
: > "$dir/runs.tsv.tmp"
for name in "${order[@]}"; do
    if [ -n "$only" ] && [[ " $only " != *" $name "* ]]; then continue; fi
    for seed in $seeds; do
        echo "--- $name, seed $seed ($(date +%H:%M))" >&2
        # shellcheck disable=SC2086 # the recipe's flags split on purpose
        er-train "$dir/dataset.ndjson" ${recipe[$name]} --seed "$seed" --runs "$dir/runs" \
            --set run.category=meld-context > "$dir/last.ndjson"
        printf '%s\t%s\t%s\n' "$name" "$seed" "$(tail -n 1 "$dir/last.ndjson")" >> "$dir/runs.tsv.tmp"
    done
done
mv "$dir/runs.tsv.tmp" "$dir/runs.tsv"
[ -n "$only" ] && exit 0

# every run finished: the tables, the seed-0 comparisons, the epoch times
python - "$dir" <<'PY'
import json, sys
from pathlib import Path

d = Path(sys.argv[1])
rows = [line.split("\t", 2) for line in (d / "runs.tsv").read_text().splitlines()]
for part in ("emotion", "sentiment"):
    with (d / f"{part}.ndjson").open("w") as f:
        for name, seed, manifest in rows:
            if name.startswith("sentiment") == (part == "sentiment"):
                f.write(manifest.rstrip("\n") + "\n")
for name, seed, manifest in rows:
    m = json.loads(manifest)
    (d / f"{name}-{seed}.dir").write_text(m["run_dir"])
    times = ", ".join(f"{e['seconds']:.0f}" for e in m["epochs"])
    print(f"{name} seed {seed}: best epoch {m['best_epoch']}, epoch seconds {times}", file=sys.stderr)
PY
{
    for metric in test/emotion/weighted_f1 test/emotion/accuracy dev/emotion/weighted_f1; do
        er-eval table "$dir/emotion.ndjson" --by auto --metric "$metric"
        echo
    done
} > "$dir/emotion.md"
{
    for metric in test/sentiment/weighted_f1 test/sentiment/accuracy dev/sentiment/weighted_f1; do
        er-eval table "$dir/sentiment.ndjson" --by auto --metric "$metric"
        echo
    done
} > "$dir/sentiment.md"
{
    for other in ctx-lora nocontext-lora ctx-full+spcl ctx-full+apcl; do
        echo "ctx-full vs $other (seed 0):"
        er-eval compare "$(cat "$dir/ctx-full-0.dir")" "$(cat "$dir/$other-0.dir")"
        echo
    done
} > "$dir/compare.txt" 2>&1
cat "$dir/emotion.md" "$dir/sentiment.md" "$dir/compare.txt"
python tools/readme_table.py meld-context "$dir/emotion.md"
python tools/readme_table.py meld-context-sentiment "$dir/sentiment.md"
