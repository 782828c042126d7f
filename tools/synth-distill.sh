#!/usr/bin/env bash
# One-run distillation on synthetic data (no downloads): 1,200 `er-data synth` utterances, real
# MiniLM / Whisper tiny.en / mini-Xception features. Per seed: a text-only teacher, then the same
# T+A+V student (concat fusion, one branch per modality, configs/train/synth.toml) trained twice:
# without distillation, and with DIST from that seed's teacher in the same run
# (configs/distill/dist.toml). 5 seeds; the table (er-eval table) goes into README.md between the
# synth-distill markers. Runs are content-addressed: a re-run trains only what is missing.
#
# Usage: uv run bash tools/synth-distill.sh
#   ER_DISTILL_DIR=synth-distill  work folder;  ER_SEEDS="0 1 2 3 4"
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${ER_DISTILL_DIR:-synth-distill}
seeds=${ER_SEEDS:-0 1 2 3 4}
mkdir -p "$dir"
: > "$dir/runs.ndjson.tmp"

if [ ! -d "$dir/data" ]; then  # synth writes atomically: an existing folder is complete
    er-data synth --out "$dir/data" --utterances 1200 --seed 0
fi
er-data prepare meld --root "$dir/data" --task emotion --out "$dir/out" > "$dir/dataset.ndjson"
er-features extract -m text -e minilm --out "$dir/out" < "$dir/dataset.ndjson" \
    | er-features extract -m audio -e whisper-tiny.en --out "$dir/out" \
    | er-features extract -m video -e fer-xception --out "$dir/out" > "$dir/features.ndjson"

train() { er-train "$dir/features.ndjson" -c configs/train/synth.toml --runs "$dir/runs" --quiet "$@" | tail -n 1; }
for seed in $seeds; do
    echo "--- seed $seed: teacher (T), student (T+A+V) without and with distillation" >&2
    teacher=$(train -m T --seed "$seed" | tee -a "$dir/runs.ndjson.tmp" \
        | python -c 'import json, sys; print(json.load(sys.stdin)["run_dir"])')
    train -m T+A+V --seed "$seed" --set model.branches=true >> "$dir/runs.ndjson.tmp"
    train -m T+A+V --seed "$seed" -c configs/distill/dist.toml --set "distill.teacher=$teacher" \
        >> "$dir/runs.ndjson.tmp"
done
mv "$dir/runs.ndjson.tmp" "$dir/runs.ndjson"

{
    er-eval table "$dir/runs.ndjson" --by modalities,objective --metric test/emotion/weighted_f1
    echo
    er-eval table "$dir/runs.ndjson" --by modalities,objective --metric test/emotion/accuracy
} > "$dir/table.md"
cat "$dir/table.md"
python tools/readme_table.py synth-distill "$dir/table.md"
