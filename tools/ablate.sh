#!/usr/bin/env bash
# An ablation grid as plain shell loops over the CLIs: modalities x fusion x seeds, each run
# selected on dev and tested once, then the mean ± std table. Runs are content-addressed, so a
# second call (or a grid that was killed and started again) trains only what is missing.
#
# Usage: uv run bash tools/ablate.sh FEATURES.ndjson [RUNS_DIR]
#   FEATURES.ndjson   a stream with the dataset and its feature manifests (e.g. demo/features.ndjson)
#   RUNS_DIR          runs root (default: ablation); the run manifests go to RUNS_DIR/runs.ndjson
# Settings (environment):
#   ER_MODALITIES="T A V T+A+V"   ER_FUSIONS="concat attention"   ER_SEEDS="0 1 2"
#   ER_CONFIG=configs/train/synth.toml   ER_SET="train.epochs=10 ..." (extra --set overrides)
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1" ]; then
    echo "usage: bash tools/ablate.sh FEATURES.ndjson [RUNS_DIR]" >&2
    exit 2
fi
features=$1
runs=${2:-ablation}
here="$(cd "$(dirname "$0")/.." && pwd)"
config=${ER_CONFIG:-$here/configs/train/synth.toml}
mkdir -p "$runs"
sets=()
for s in ${ER_SET:-}; do sets+=(--set "$s"); done

: > "$runs/runs.ndjson.tmp"
for m in ${ER_MODALITIES:-T A V T+A+V}; do
    for f in ${ER_FUSIONS:-concat attention}; do
        for seed in ${ER_SEEDS:-0 1 2}; do
            echo "--- $m, $f, seed $seed" >&2
            er-train "$features" -c "$config" -m "$m" --set "fusion.kind=$f" --seed "$seed" \
                "${sets[@]}" --runs "$runs" --quiet | tail -n 1 >> "$runs/runs.ndjson.tmp"
        done
    done
done
mv "$runs/runs.ndjson.tmp" "$runs/runs.ndjson"
er-eval table "$runs/runs.ndjson" --by modalities,fusion
