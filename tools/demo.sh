#!/usr/bin/env bash
# The README's main job on synthetic data (no downloads): make a small three-modality dataset in
# the MELD layout, prepare its utterance table, check every clip decodes, show the class counts,
# then extract text (MiniLM), audio (Whisper tiny.en) and video (face + mini-Xception) features
# with the weights the registry packages installed, and train T, A, V and T+A+V (concat fusion,
# configs/train/synth.toml, 3 seeds each), each selected on dev and tested once; then score them, print the
# table, and write figures (ablation bars, learning curves, confusion matrices) and an HTML report.
# Usage: bash tools/demo.sh            (inside the synced environment: uv run bash tools/demo.sh)
#        ER_DEMO_DIR=/tmp/x bash tools/demo.sh
set -euo pipefail
configs="$(cd "$(dirname "$0")/.." && pwd)/configs"
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

# Features are cached by content: a second run of the demo computes nothing.
export ER_CACHE=${ER_CACHE:-$dir/cache}
er-features extract --modality text --encoder minilm --out "$dir/out" < "$dir/dataset.ndjson" \
    | er-features extract --modality audio --encoder whisper-tiny.en --out "$dir/out" \
    | er-features extract --modality video --encoder fer-xception --out "$dir/out" \
    > "$dir/features.ndjson"

python - "$dir/features.ndjson" <<'PY' >&2
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["kind"] == "features":
        print(f"{m['modality']:>5}: {m['encoder']:<16} {m['count']} utterances x {m['dim']} dims,"
              f" fallbacks {m['fallbacks'] or 'none'}")
PY
echo "messages: $dir/features.ndjson (dataset + 3 feature manifests)" >&2

# Three seeds per modality set (progress: one line per epoch with its ETA, on stderr). Runs are
# content-addressed too: a second demo trains nothing.
: > "$dir/runs.ndjson"
for m in T A V T+A+V; do
    for seed in 0 1 2; do
        echo "--- train $m, seed $seed" >&2
        er-train "$dir/features.ndjson" -c "$configs/train/synth.toml" -m "$m" --seed "$seed" \
            --runs "$dir/runs" | tail -n 1 >> "$dir/runs.ndjson"
    done
done

# Scores, the table (mean ± std over the seeds), figures and a report.
er-eval score "$dir/runs.ndjson" > "$dir/scored.ndjson"
echo "test weighted-F1 by modalities (synthetic data: a demo, not a result):" >&2
er-eval table "$dir/scored.ndjson" --by modalities >&2
er-eval plot "$dir/scored.ndjson" --kind ablation --by modalities --out "$dir/plots" > /dev/null
er-eval plot "$dir/scored.ndjson" --kind curves --by modalities --out "$dir/plots" > /dev/null
er-eval plot "$dir/scored.ndjson" --kind confusion --out "$dir/plots" > /dev/null
er-eval report "$dir/scored.ndjson" --by modalities --out "$dir/report.html" > /dev/null
echo "runs: $dir/runs.ndjson; figures: $dir/plots/; report: $dir/report.html" >&2
