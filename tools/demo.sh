#!/usr/bin/env bash
# The README's main job on synthetic data (no downloads): make a small three-modality dataset in
# the MELD layout, prepare its utterance table, check every clip decodes, show the class counts.
# Later steps of the pipeline (features, training, evaluation) join here as they land.
# Usage: bash tools/demo.sh            (inside the synced environment: uv run bash tools/demo.sh)
#        ER_DEMO_DIR=/tmp/x bash tools/demo.sh
set -euo pipefail
dir=${ER_DEMO_DIR:-demo}
mkdir -p "$dir"

# synth writes atomically, so an existing folder is complete: reuse it.
if [ ! -d "$dir/data" ]; then
    er-data synth --out "$dir/data" --utterances 300 --seed 0
fi

er-data prepare meld --root "$dir/data" --task emotion --out "$dir/out" \
    | er-data validate \
    | er-data stats \
    > "$dir/dataset.ndjson"

echo "manifest: $dir/dataset.ndjson" >&2
