#!/usr/bin/env bash
# The real MELD text benchmark: frozen MiniLM and MPNet sentence features, each without dialogue
# context and with a bidirectional GRU over the dialogue (configs/train/meld.toml), 5 seeds each,
# every run selected on dev and tested once. Writes the mean ± std tables (er-eval table) into
# README.md between the meld-text markers. Runs are content-addressed: a re-run only does what is missing.
#
# Usage: uv run bash tools/meld-text.sh [MELD_DIR]
#   MELD_DIR holds train/dev/test_sent_emo.csv (default: $ER_SHARED_DATA/meld)
#   ER_MELD_DIR=meld-text  work folder (features, runs);  ER_SEEDS="0 1 2 3 4"
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-${ER_SHARED_DATA:-../shared/data}/meld}
dir=${ER_MELD_DIR:-meld-text}
seeds=${ER_SEEDS:-0 1 2 3 4}
mkdir -p "$dir"
: > "$dir/runs.ndjson.tmp"

er-data prepare meld --root "$root" --out "$dir/out" > "$dir/dataset.ndjson"
for enc in minilm mpnet-base; do
    er-features extract -m text -e "$enc" --out "$dir/out" < "$dir/dataset.ndjson" > "$dir/$enc.ndjson"
    for ctx in none gru; do
        for seed in $seeds; do
            echo "--- $enc, context $ctx, seed $seed" >&2
            er-train "$dir/$enc.ndjson" -c configs/train/meld.toml --set "context.kind=$ctx" \
                --seed "$seed" --runs "$dir/runs" --set run.category=meld-text \
                | tail -n 1 >> "$dir/runs.ndjson.tmp"
        done
    done
done
mv "$dir/runs.ndjson.tmp" "$dir/runs.ndjson"

# The tables: test weighted-F1 (the figure that counts), then dev (selection-biased).
{
    er-eval table "$dir/runs.ndjson" --by encoder,context --metric test/emotion/weighted_f1
    echo
    er-eval table "$dir/runs.ndjson" --by encoder,context --metric test/emotion/accuracy
    echo
    er-eval table "$dir/runs.ndjson" --by encoder,context --metric dev/emotion/weighted_f1
} > "$dir/table.md"
cat "$dir/table.md"

python tools/readme_table.py meld-text "$dir/table.md"
