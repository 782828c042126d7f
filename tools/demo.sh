#!/usr/bin/env bash
# The README's main job on synthetic data (no downloads): make a small three-modality dataset in
# the MELD layout, prepare its utterance table, check every clip decodes, show the class counts,
# then extract text (MiniLM), audio (Whisper tiny.en) and video (face + mini-Xception) features
# with the weights the registry packages installed. Training and evaluation join as they land.
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
