#!/usr/bin/env bash
# The README's main job on synthetic data (no downloads): make a small three-modality dataset in
# the MELD layout, prepare its utterance table, check every clip decodes, show the class counts,
# then extract text (MiniLM), audio (Whisper tiny.en) and video (face + mini-Xception) features
# with the weights the registry packages installed, and train T, A, V and T+A+V (concat fusion,
# configs/train/synth.toml), each selected on dev and tested once. Evaluation reports join with
# er-eval.
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

# Runs are content-addressed too: a second demo trains nothing.
: > "$dir/runs.ndjson"
for m in T A V T+A+V; do
    er-train "$dir/features.ndjson" -c "$configs/train/synth.toml" -m "$m" --runs "$dir/runs" --quiet \
        | tail -n 1 >> "$dir/runs.ndjson"
done

python - "$dir/runs.ndjson" <<'PY' >&2
import json, sys
print("modalities  test weighted-F1  test accuracy  best epoch  (synthetic data: not a result)")
for line in open(sys.argv[1]):
    r = json.loads(line)
    t = r["test"]
    print(f"{'+'.join(m[0].upper() for m in r['modalities']):<11} {100 * t['emotion/weighted_f1']:>16.1f}"
          f" {100 * t['emotion/accuracy']:>14.1f} {r['best_epoch']:>11}")
PY
echo "runs: $dir/runs.ndjson (4 run manifests); run folders under $dir/runs" >&2
