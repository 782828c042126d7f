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
#   e.g. ER_JOBS=2 ER_MELD_DIR=$HOME/meld-context uv run bash tools/meld-context.sh
#   MELD_DIR holds train/dev/test_sent_emo.csv (default: $ER_SHARED_DATA/meld)
#   ER_MELD_DIR=meld-context   work folder (dataset, runs, tables)
#   ER_SEEDS="0 1 2"           seeds of every recipe
#   ER_ONLY="ctx-lora ..."     only these recipes (names below), tables not written
#   ER_SET="train.epochs=1"    extra --set overrides for every run (a quick trial)
#   ER_JOBS=2                  runs side by side (default 1); each gets ER_THREADS threads
#                              (default: the cores shared out). On this project's 2-core
#                              machine, context full fine-tuning: two runs of 1 thread each
#                              took 197-239 s an epoch side by side, one of 2 threads alone
#                              234-263 s.
# Each run's progress goes to DIR/logs/NAME-SEED.log; a failed run stops the script (the runs
# still going are stopped too) with its log's last lines.
#
# The run folders are the state: keep DIR on storage that outlives the session (a machine
# that is reset loses the runs, and they start afresh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-${ER_SHARED_DATA:-../shared/data}/meld}
dir=${ER_MELD_DIR:-meld-context}
seeds=${ER_SEEDS:-0 1 2}
only=${ER_ONLY:-}
sets=()
for s in ${ER_SET:-}; do sets+=(--set "$s"); done
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

jobs=${ER_JOBS:-1}
if ! [[ "$jobs" =~ ^[1-9][0-9]*$ ]]; then
    echo "meld-context.sh: ER_JOBS=$jobs is not a whole number >= 1 (hint: ER_JOBS=2)" >&2
    exit 2
fi
# written aside and moved in, so a run of another call reading it never sees half a file
er-data prepare meld --root "$root" --out "$dir/out" > "$dir/dataset.ndjson.tmp"
mv "$dir/dataset.ndjson.tmp" "$dir/dataset.ndjson"
if [ -z "${ER_THREADS:-}" ] && [ "$jobs" -gt 1 ]; then
    ER_THREADS=$(( $(nproc) / jobs > 0 ? $(nproc) / jobs : 1 ))
    export ER_THREADS
fi
mkdir -p "$dir/logs"
todo=()
for name in "${order[@]}"; do
    if [ -n "$only" ] && [[ " $only " != *" $name "* ]]; then continue; fi
    for seed in $seeds; do todo+=("$name/$seed"); done
done

train() {  # NAME SEED: one run; its manifest goes to DIR/logs/NAME-SEED.ndjson
    local log="$dir/logs/$1-$2"
    # shellcheck disable=SC2086 # the recipe's flags split on purpose
    if er-train "$dir/dataset.ndjson" ${recipe[$1]} --seed "$2" --runs "$dir/runs" \
        --set run.category=meld-context "${sets[@]}" > "$log.ndjson.tmp" 2> "$log.log"; then
        mv "$log.ndjson.tmp" "$log.ndjson"
        echo "--- $1, seed $2: done ($(date +%H:%M))" >&2
    else
        echo "--- $1, seed $2: failed, the end of $log.log:" >&2
        tail -n 5 "$log.log" >&2
        return 1
    fi
}
stop() {  # the runs still going, and their er-train
    for p in $(jobs -p); do pkill -TERM -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
}
trap stop EXIT
running=0
for run in "${todo[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    echo "--- ${run%/*}, seed ${run#*/}: started ($(date +%H:%M)), log $dir/logs/${run/\//-}.log" >&2
    train "${run%/*}" "${run#*/}" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n
    running=$((running - 1))
done
trap - EXIT
: > "$dir/runs.tsv.tmp"
for run in "${todo[@]}"; do
    printf '%s\t%s\t%s\n' "${run%/*}" "${run#*/}" \
        "$(tail -n 1 "$dir/logs/${run/\//-}.ndjson")" >> "$dir/runs.tsv.tmp"
done
mv "$dir/runs.tsv.tmp" "$dir/runs.tsv"
[ -n "$only" ] && exit 0

# every run finished: the tables, the seed-0 comparisons, the epoch times. A row per recipe:
# the method (L = LoRA, T = full fine-tuning), the turns of history in the prompt and the
# objective tell the recipes apart (er-eval refuses a row that would pool two).
by=method,finetune.text.context_before,objective
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
        er-eval table "$dir/emotion.ndjson" --by "$by" --metric "$metric"
        echo
    done
} > "$dir/emotion.md"
{
    for metric in test/sentiment/weighted_f1 test/sentiment/accuracy dev/sentiment/weighted_f1; do
        er-eval table "$dir/sentiment.ndjson" --by "$by" --metric "$metric"
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
