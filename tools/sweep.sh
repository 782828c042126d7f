#!/usr/bin/env bash
# A hyper-parameter sweep as a plain shell loop: one config key over a list of values x seeds,
# each run selected on dev and tested once, then the table grouped by that key. Every recipe has
# its own run folder (its hash covers the recipe), so nothing else needs a name, and a second
# call (or a sweep that was killed and started again) trains only what is missing.
#
# Usage: uv run bash tools/sweep.sh FEATURES.ndjson KEY "V1 V2 ..." [RUNS_DIR]
#   e.g. uv run bash tools/sweep.sh demo/features.ndjson train.lr "1e-3 3e-4 1e-4"
#   FEATURES.ndjson   a stream with the dataset and its feature manifests (demo/features.ndjson)
#   RUNS_DIR          runs root (default: sweep); the run manifests go to RUNS_DIR/runs.ndjson
# Settings (environment):
#   ER_SEEDS="0 1"   ER_MODALITIES=T+A+V   ER_CONFIG=configs/train/synth.toml
#   ER_SET="train.epochs=10 ..." (extra --set overrides, the same for every run)
set -euo pipefail
if [ $# -lt 3 ] || [ ! -f "$1" ]; then
    echo "usage: bash tools/sweep.sh FEATURES.ndjson KEY \"V1 V2 ...\" [RUNS_DIR]" >&2
    exit 2
fi
features=$1
key=$2
values=$3
runs=${4:-sweep}
here="$(cd "$(dirname "$0")/.." && pwd)"
config=${ER_CONFIG:-$here/configs/train/synth.toml}
mkdir -p "$runs"
sets=()
for s in ${ER_SET:-}; do sets+=(--set "$s"); done

: > "$runs/runs.ndjson.tmp"
for v in $values; do
    for seed in ${ER_SEEDS:-0 1}; do
        echo "--- $key=$v, seed $seed" >&2
        er-train "$features" -c "$config" -m "${ER_MODALITIES:-T+A+V}" --set "$key=$v" \
            --seed "$seed" "${sets[@]}" --runs "$runs" --quiet | tail -n 1 >> "$runs/runs.ndjson.tmp"
    done
done
mv "$runs/runs.ndjson.tmp" "$runs/runs.ndjson"
er-eval table "$runs/runs.ndjson" --by "$key"
