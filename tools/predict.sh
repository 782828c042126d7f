#!/usr/bin/env bash
# Classify new clips with a trained run, encoded by the run's own encoders: the pipe
#   er-data prepare files ... | er-features extract (one per modality of the run) | er-eval predict
# Each clip is one unlabelled utterance (a video's sound track is its audio; a .txt beside a clip,
# same stem, is its transcript). The encoders are the ones the run's features came from, read
# from its run.json (`er-eval predict --print-encoders`), with their default settings: a run whose
# features were extracted with other settings is refused by er-eval predict, naming the encoder.
# Prints the predictions as CSV on stdout: a header, then one row per clip, in the given order
# (id, split, pred_<task>, then <task>.p.<class> probabilities). Progress goes to stderr.
# Usage: bash tools/predict.sh RUN CLIP...     (RUN: a run folder or its run.json)
#        ER_PREDICT_OUT=out ER_DEVICE=cuda bash tools/predict.sh RUN a.mp4 b.wav
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash tools/predict.sh RUN CLIP...   (clips: .wav .flac .mp3 .mp4 .avi .mov .mkv)" >&2
    exit 2
fi
run=$1
shift
out=${ER_PREDICT_OUT:-er-out}
device=${ER_DEVICE:-cpu}

# One utterance per clip: --audio and --video are given once per clip ("" = none), in order.
clips=()
texts=()
any_text=0
for clip in "$@"; do
    case "${clip,,}" in
        *.wav | *.flac | *.mp3) clips+=(--audio "$clip" --video "") ;;
        *.mp4 | *.avi | *.mov | *.mkv) clips+=(--video "$clip" --audio "") ;;
        *)
            echo "error: not an audio or video clip, at $clip" >&2
            echo "hint: name .wav .flac .mp3 (audio) or .mp4 .avi .mov .mkv (video) files" >&2
            exit 2
            ;;
    esac
    transcript="${clip%.*}.txt"
    if [ -f "$transcript" ]; then
        texts+=(--text "$(cat "$transcript")")
        any_text=1
    else
        texts+=(--text "")
    fi
done
if [ "$any_text" = 0 ]; then
    texts=()
fi

# modality<TAB>encoder, one line per modality of the run (an error here names the run)
mapfile -t encoders < <(er-eval predict --run "$run" --print-encoders)
if [ ${#encoders[@]} -eq 0 ]; then
    exit 1 # er-eval said why on stderr
fi

# stdin -> stdout through one `er-features extract` per remaining argument
extract() {
    if [ $# -eq 0 ]; then
        cat
        return
    fi
    local modality=${1%%$'\t'*} encoder=${1#*$'\t'}
    shift
    er-features extract --modality "$modality" --encoder "$encoder" --device "$device" \
        --out "$out" | extract "$@"
}

manifest=$(
    er-data prepare files "${clips[@]}" "${texts[@]}" --out "$out" \
        | extract "${encoders[@]}" \
        | er-eval predict --run "$run" --format csv --device "$device" --out "$out" \
        | tail -n 1
)
csv=$(python -c 'import json, sys; print(json.loads(sys.argv[1])["table"]["path"])' "$manifest")
cat "$csv"
