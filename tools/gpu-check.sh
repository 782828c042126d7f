#!/usr/bin/env bash
# The CUDA paths, on a machine with an NVIDIA GPU, in one go:
#   1. the gpu-marked tests (tower features on CUDA equal the CPU's; a method L run with frozen
#      layers and a token budget trains in fp32, bf16 and fp16; data-parallel training with
#      nccl over 2 GPUs, skipped with one);
#   2. one MELD fine-tuning epoch of configs/train/meld-context-lora.toml with --device cuda in
#      fp16 and in bf16: the epoch's seconds and dev/test weighted-F1;
# It prints every figure; nothing is written outside a temporary folder.
#
# Usage: ER_SHARED_DATA=../shared/data uv run bash tools/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${ER_SHARED_DATA:?set ER_SHARED_DATA to the folder holding meld/}"

python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device: torch " + torch.__version__
print(f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}")
PY

echo "--- gpu-marked tests" >&2
pytest -m gpu -p no:cacheprovider -q -rs packages

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
er-data prepare meld --root "$ER_SHARED_DATA/meld" --out "$work/out" > "$work/dataset.ndjson"
for precision in fp16 bf16; do
    echo "--- one MELD epoch, context LoRA, cuda, $precision" >&2
    er-train "$work/dataset.ndjson" -c configs/train/meld.toml \
        -c configs/train/meld-context-lora.toml --device cuda --runs "$work/runs" \
        --set train.epochs=1 --set "train.precision=$precision" \
        --set "run.category=gpu-$precision" -q > "$work/$precision.ndjson"
    python - "$work/$precision.ndjson" "$precision" <<'PY'
import json, sys
m = json.loads(open(sys.argv[1]).read().splitlines()[-1])
e = m["epochs"][0]
print(f"{sys.argv[2]}: epoch {e['seconds']:.1f} s, device {m['device']}, "
      f"dev weighted-F1 {100 * m['dev']['emotion/weighted_f1']:.2f}, "
      f"test weighted-F1 {100 * m['test']['emotion/weighted_f1']:.2f}")
PY
done
