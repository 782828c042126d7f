#!/usr/bin/env bash
# Contrastive objectives on real MELD text: frozen MiniLM features with the bidirectional GRU
# recipe (configs/train/meld.toml), cross-entropy alone vs cross-entropy + SPCL and + APCL
# (configs/losses/spcl.toml, apcl.toml), 5 seeds each, every run selected on dev and tested once.
# Writes the mean ± std tables (er-eval table) into README.md between the meld-contrastive markers.
# Runs are content-addressed: a re-run only trains what is missing (the cross-entropy runs are the
# same runs tools/meld-text.sh makes, when both use one work folder).
#
# Usage: uv run bash tools/meld-contrastive.sh [MELD_DIR]
#   MELD_DIR holds train/dev/test_sent_emo.csv (default: $ER_SHARED_DATA/meld)
#   ER_MELD_DIR=meld-text  work folder (features, runs);  ER_SEEDS="0 1 2 3 4"
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-${ER_SHARED_DATA:-../shared/data}/meld}
dir=${ER_MELD_DIR:-meld-text}
seeds=${ER_SEEDS:-0 1 2 3 4}
mkdir -p "$dir"
: > "$dir/contrastive.ndjson.tmp"

er-data prepare meld --root "$root" --out "$dir/out" > "$dir/dataset.ndjson"
er-features extract -m text -e minilm --out "$dir/out" < "$dir/dataset.ndjson" > "$dir/minilm.ndjson"
for objective in ce spcl apcl; do
    for seed in $seeds; do
        echo "--- minilm, gru, $objective, seed $seed" >&2
        er-train "$dir/minilm.ndjson" -c configs/train/meld.toml -c "configs/losses/$objective.toml" \
            --seed "$seed" --runs "$dir/runs" --set run.category=meld-text \
            | tail -n 1 >> "$dir/contrastive.ndjson.tmp"
    done
done
mv "$dir/contrastive.ndjson.tmp" "$dir/contrastive.ndjson"

{
    er-eval table "$dir/contrastive.ndjson" --by objective --metric test/emotion/weighted_f1
    echo
    er-eval table "$dir/contrastive.ndjson" --by objective --metric test/emotion/accuracy
    echo
    er-eval table "$dir/contrastive.ndjson" --by objective --metric dev/emotion/weighted_f1
} > "$dir/contrastive.md"
cat "$dir/contrastive.md"
python tools/readme_table.py meld-contrastive "$dir/contrastive.md"
