#!/usr/bin/env bash
# The real MELD text benchmark: frozen MiniLM and MPNet sentence features, each without dialogue
# context and with a bidirectional GRU over the dialogue (configs/train/meld.toml), 5 seeds each,
# every run selected on dev and tested once. Writes the mean ± std table into README.md between
# the meld-text markers. Runs are content-addressed: a re-run only does what is missing.
#
# Usage: uv run bash tools/meld-text.sh [MELD_DIR]
#   MELD_DIR holds train/dev/test_sent_emo.csv (default: $ER_SHARED_DATA/meld)
#   ER_MELD_DIR=meld-text  work folder (features, runs);  ER_SEEDS="0 1 2 3 4"
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-${ER_SHARED_DATA:-../shared/data}/meld}
dir=${ER_MELD_DIR:-meld-text}
seeds=${ER_SEEDS:-0 1 2 3 4}
mkdir -p "$dir"
: > "$dir/runs.ndjson.tmp"

er-data prepare meld --root "$root" --out "$dir/out" > "$dir/dataset.ndjson"
for enc in minilm mpnet-base; do
    er-features extract -m text -e "$enc" --out "$dir/out" < "$dir/dataset.ndjson" > "$dir/$enc.ndjson"
    for ctx in none gru; do
        for seed in $seeds; do
            echo "--- $enc, context $ctx, seed $seed" >&2
            er-train "$dir/$enc.ndjson" -c configs/train/meld.toml --set "context.kind=$ctx" \
                --seed "$seed" --runs "$dir/runs" --set run.category=meld-text \
                | tail -n 1 >> "$dir/runs.ndjson.tmp"
        done
    done
done
mv "$dir/runs.ndjson.tmp" "$dir/runs.ndjson"

python - "$dir/runs.ndjson" README.md <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
groups = {}
for r in runs:
    key = (r["encoders"]["text"], r["config"]["context"]["kind"])
    groups.setdefault(key, []).append(r)
rows = ["| encoder | context | test weighted-F1 | test accuracy | dev weighted-F1 | n | seeds |",
        "|---|---|---|---|---|---|---|"]
def ms(rs, split, metric):
    v = [100 * r[split][f"emotion/{metric}"] for r in rs]
    return f"{statistics.mean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:.2f}"
for (enc, ctx), rs in groups.items():
    seeds = ",".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"]))
    rows.append(f"| {enc} | {ctx} | {ms(rs, 'test', 'weighted_f1')} | {ms(rs, 'test', 'accuracy')}"
                f" | {ms(rs, 'dev', 'weighted_f1')} | {len(rs)} | {seeds} |")
table = "\n".join(rows)
print(table)
readme = open(sys.argv[2]).read()
begin, end = "<!-- meld-text:begin -->", "<!-- meld-text:end -->"
if begin in readme and end in readme:
    head, rest = readme.split(begin, 1)
    _, tail = rest.split(end, 1)
    open(sys.argv[2], "w").write(f"{head}{begin}\n{table}\n{end}{tail}")
    print(f"table written into {sys.argv[2]}", file=sys.stderr)
PY
