"""One self-contained HTML page for a set of runs: results, lineage, curves, confusion matrices.

The page needs nothing else: CSS inline, figures embedded as base64 PNG data URIs, no script,
no link but in-page anchors; mail it or archive it as it is. Every string taken from a message
is HTML-escaped. It holds:
- per dataset, the results table (mean ± std over seeds, n, the seeds; `table.tabulate`,
  grouped by modalities + fusion unless `by` says otherwise, each group one recipe unless
  `allow_mixed`, see er_eval.grouping) and its bar chart;
- per run: its lineage (dataset id and name, per modality the encoder, its cache key and the
  FeatureManifest id, the network hash, seed, selected epoch), dev and test metrics, test
  per-class scores, the resolved config (pretty JSON, folded), its learning curve and its
  row-normalised test confusion matrix.
Scores come from the run's EvalManifest when the stream holds one, else the run is scored from
its prediction files (sha256-checked). No timestamp: the same runs give the same page.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from er_core import (
    DatasetManifest,
    Envelope,
    ErError,
    EvalManifest,
    FeatureManifest,
    RunManifest,
    write_bytes_atomic,
)

from er_eval import __version__
from er_eval.grouping import Group, group_runs, resolve_by
from er_eval.keys import check_keys
from er_eval.plots import (
    ablation_figure,
    confusion_figure,
    confusion_from_scores,
    curve_of,
    curves_figure,
    png_bytes,
    run_name,
)
from er_eval.table import MARK, MetricRef, metric_columns, mixed_note, resolve_metric, tabulate

DEFAULT_BY = ("modalities", "fusion")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1150px;
padding:0 1em;color:#1d1d1f}
h1{font-size:1.6em}h2{margin-top:2.2em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #d0d0d0;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f2f2f2}td.num{text-align:right;
font-variant-numeric:tabular-nums}code{font-size:.92em;word-break:break-all}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:12px}img{max-width:100%;height:auto}
.figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}.note{color:#666}
""".strip()


def esc(value: Any) -> str:
    """`value` as text, HTML-escaped (quotes too, so it is safe in an attribute)."""
    return html.escape(str(value), quote=True)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="{data_uri(png)}">'


def _table(
    head: Sequence[str] | None, rows: Sequence[Sequence[str]], num: Sequence[bool] = ()
) -> str:
    """An HTML table (no header row if `head` is None); cells are already-escaped HTML;
    `num[i]` right-aligns column i."""
    out = ["<table>"]
    if head is not None:
        out.append("<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>")
    for row in rows:
        cells = (
            f'<td class="num">{c}</td>' if i < len(num) and num[i] else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join([*out, "</table>"])


def _percent(name: str) -> bool:
    return MetricRef("test", "", name).percent  # fractions (accuracy, F1, ...), not mae/corr


def _fmt(name: str, value: float | None) -> str:
    """A metric as the tables show it: fractions in percent (2 decimals), others with 4."""
    if value is None:
        return "—"
    return f"{100 * value:.2f}" if _percent(name) else f"{value:.4f}"


def default_by(runs: Sequence[RunManifest]) -> list[str]:
    """modalities, and fusion when some run has a fusion.kind (a key no run has is an error in
    `summarise`)."""
    fused = any(
        isinstance(r.config.get("fusion"), dict) and "kind" in r.config["fusion"] for r in runs
    )
    return ["modalities", "fusion"] if fused else ["modalities"]


def plan_results(
    runs: Sequence[RunManifest],
    by: Sequence[str] | None,
    metric: str | None,
    allow_mixed: bool = False,
) -> list[tuple[MetricRef, list[Group]]]:
    """Per dataset, the metric and the checked groups of its results table (grouping.group_runs:
    one recipe per group unless `allow_mixed`). Done before any run is scored, so a refused
    group costs no reading of prediction files."""
    datasets: dict[str, list[RunManifest]] = {}
    for r in runs:
        datasets.setdefault(r.dataset, []).append(r)
    out = []
    for members in datasets.values():
        keys = resolve_by(members, by) if by else check_keys(members, default_by(members))
        ref = resolve_metric(members, metric)
        out.append((ref, group_runs(members, keys, allow_mixed=allow_mixed)))
    return out


def results_section(
    plan: Sequence[tuple[MetricRef, list[Group]]],
    evals: Mapping[str, EvalManifest],
    allow_mixed: bool = False,
) -> str:
    """Per dataset: the summary table (a pooled row marked † with a footnote) and, for more
    than one group, its bar chart."""
    parts = ["<h2>Results</h2>"]
    for ref, groups in plan:
        frame = tabulate(groups, ref, evals=evals, allow_mixed=allow_mixed)
        first = groups[0].runs[0]
        parts.append(
            f"<h3>{esc(first.dataset_name or 'dataset')} <code>{esc(first.dataset[:12])}</code>"
            f" — {esc(ref.label)}, mean ± std over seeds</h3>"
        )
        cols, mean, std = metric_columns(frame)
        digits = 2 if ref.percent else 4
        rows, notes = [], []
        for row in frame.iter_rows(named=True):
            mark = f" {MARK}" if row.get("mixed") else ""
            rows.append(
                ["—" if row[c] is None else esc(row[c]) for c in cols]
                + [
                    f"{row[mean]:.{digits}f} ± {row[std]:.{digits}f}{mark}",
                    str(row["n"]),
                    esc(row["seeds"]),
                ]
            )
            if mark:
                label = ", ".join(f"{c}={'—' if row[c] is None else row[c]}" for c in cols)
                notes.append(f'<p class="note">{esc(mixed_note(label, row["mixed"]))}</p>')
        head = [esc(c) for c in cols] + [esc(ref.label), "n", "seeds"]
        parts.append(_table(head, rows, [False] * len(cols) + [True, True]))
        parts.extend(notes)
        if frame.height > 1:
            fig = ablation_figure(frame, metric_label=ref.label)
            parts.append(_img(png_bytes(fig), f"bar chart of {ref}"))
    return "\n".join(parts)


def _lineage(run: RunManifest, known: Mapping[str, Any]) -> str:
    ds = known.get(run.dataset)
    dataset = f"{esc(run.dataset_name or '?')} <code>{esc(run.dataset)}</code>"
    if isinstance(ds, DatasetManifest):
        splits = ", ".join(f"{esc(k)} {v}" for k, v in ds.splits.items())
        dataset += f" (adapter {esc(ds.adapter or '?')}; {splits})"
    rows = [
        ("run id", f"<code>{esc(run.id)}</code>"),
        ("run folder", f"<code>{esc(run.run_dir or '—')}</code>"),
        ("dataset", dataset),
        ("task(s)", esc(", ".join(run.tasks or [run.task]))),
        ("network hash", f"<code>{esc(run.network_hash or '—')}</code>"),
        ("parameters", f"{run.params:,}" if run.params else "—"),
        ("seed", esc(run.seed)),
        (
            "selected on",
            f"dev {esc(run.select or '—')}, epoch {esc(run.best_epoch)} of {len(run.epochs)}",
        ),
        ("device, time", f"{esc(run.device)}, {run.seconds:.1f} s"),
        ("written by", esc(run.tool or "—")),
    ]
    out = [_table(None, [[f"<b>{k}</b>", v] for k, v in rows])]
    mods = list(dict.fromkeys([*run.modalities, *run.features, *run.encoders]))
    feat_rows = []
    for m in mods:
        fid = run.features.get(m, "")
        fm = known.get(fid)
        source = (
            esc(fm.encoder_source) if isinstance(fm, FeatureManifest) and fm.encoder_source else "—"
        )
        feat_rows.append(
            [
                esc(m),
                esc(run.encoders.get(m, "—")),
                f"<code>{esc(run.encoder_keys.get(m, '—'))}</code>",
                f"<code>{esc(fid or '—')}</code>",
                esc(run.dims.get(m, "—")),
                source,
            ]
        )
    head = ["modality", "encoder", "encoder cache key", "FeatureManifest id", "dim", "weights from"]
    out.append(_table(head, feat_rows))
    return "\n".join(out)


def _metrics(run: RunManifest, evaluation: EvalManifest | None) -> str:
    rows = []
    for task in run.tasks or [run.task]:
        values: dict[str, dict[str, float]] = {}
        for split in ("dev", "test"):
            scored = evaluation.scores.get(split, {}).get(task) if evaluation else None
            own = {
                k.split("/", 1)[1]: v
                for k, v in getattr(run, split).items()
                if k.startswith(f"{task}/")
            }
            for name, v in (scored.metrics if scored else own).items():
                values.setdefault(name, {})[split] = v
        for name, by_split in values.items():
            unit = " (%)" if _percent(name) else ""
            rows.append(
                [
                    esc(task),
                    esc(name + unit),
                    _fmt(name, by_split.get("dev")),
                    _fmt(name, by_split.get("test")),
                ]
            )
    if not rows:
        return '<p class="note">no dev/test metrics recorded</p>'
    source = (
        f"EvalManifest <code>{esc(evaluation.id[:12])}</code>" if evaluation else "the RunManifest"
    )
    return f'<p class="note">metrics from {source}</p>' + _table(
        ["task", "metric", "dev", "test"], rows, [False, False, True, True]
    )


def _per_class(run: RunManifest, evaluation: EvalManifest | None) -> str:
    ts = evaluation.scores.get("test", {}).get(run.task) if evaluation else None
    if ts is None or not ts.per_class:
        return ""
    stats = ("precision", "recall", "f1", "support")
    rows = [
        [esc(c)]
        + [
            _fmt(s, ts.per_class[c].get(s))
            if s != "support"
            else str(int(ts.per_class[c].get(s, 0)))
            for s in stats
        ]
        for c in ts.classes
        if c in ts.per_class
    ]
    head = ["class", "precision (%)", "recall (%)", "f1 (%)", "support"]
    return f"<h3>test per class, {esc(run.task)}</h3>" + _table(
        head, rows, [False, True, True, True, True]
    )


def run_section(
    run: RunManifest,
    evaluation: EvalManifest | None,
    known: Mapping[str, Any],
) -> str:
    """One run: lineage, metrics, per-class scores, learning curve, test confusion, config."""
    figs = []
    try:
        fig = curves_figure([curve_of(run)], title="learning curve")
        figs.append(_img(png_bytes(fig), "learning curve"))
    except ErError as e:  # no epochs, or not the selection metric: say so, keep the page
        figs.append(f'<p class="note">no learning curve: {esc(e.what)}</p>')
    ts = evaluation.scores.get("test", {}).get(run.task) if evaluation else None
    if ts is not None and ts.type == "classification" and ts.confusion:
        fig = confusion_figure(confusion_from_scores(ts, "test"))
        figs.append(_img(png_bytes(fig), "test confusion matrix, rows = true class"))
    elif ts is not None:
        figs.append(
            f'<p class="note">{esc(run.task)} is a regression task: no confusion matrix</p>'
        )
    else:
        figs.append('<p class="note">no test predictions: no confusion matrix</p>')
    config = json.dumps(run.config, indent=2, ensure_ascii=False, default=str)
    return "\n".join(
        [
            f'<h2 id="run-{esc(run.id[:12])}">{esc(run_name(run))}</h2>',
            _lineage(run, known),
            _metrics(run, evaluation),
            _per_class(run, evaluation),
            f'<div class="figs">{"".join(figs)}</div>',
            f"<details><summary>resolved config</summary><pre>{esc(config)}</pre></details>",
        ]
    )


def build_report(
    runs: Sequence[RunManifest],
    *,
    envelopes: Sequence[Envelope] = (),
    folders: Mapping[str, Path] | None = None,
    by: Sequence[str] | None = None,
    metric: str | None = None,
    title: str = "er-eval report",
    allow_mixed: bool = False,
) -> str:
    """The HTML page of `runs` (see the module docstring). `envelopes`: the whole stream (its
    EvalManifests, DatasetManifests and FeatureManifests are used when present); `folders`:
    run id -> the folder its run.json was read from (`RunInputs.folders`); `by`: the results
    table's keys (default modalities, fusion; `auto`: every key that varies); `allow_mixed`:
    pool groups of several recipes (marked) instead of refusing them."""
    from er_eval.runs import collect_evals
    from er_eval.score import score_run

    if not runs:
        raise ErError("no runs to report", at="<input>", hint="pipe in er-train's output")
    folders = folders or {}
    plan = plan_results(runs, by, metric, allow_mixed)
    evals = dict(collect_evals(envelopes))
    for run in runs:
        if run.id not in evals and run.predictions:
            evals[run.id] = score_run(run, folder=folders.get(run.id))
    known = {
        e.message.id: e.message
        for e in envelopes
        if isinstance(e.message, DatasetManifest | FeatureManifest) and e.message.id
    }
    toc = "".join(f'<li><a href="#run-{esc(r.id[:12])}">{esc(run_name(r))}</a></li>' for r in runs)
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="note">{len(runs)} run(s); written by er-eval {esc(__version__)}. '
        "Fractions in percent; std is the sample std over seeds (ddof = 1).</p>",
        results_section(plan, evals, allow_mixed),
        f"<h2>Runs</h2><ol>{toc}</ol>",
        *(run_section(r, evals.get(r.id), known) for r in runs),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_report(out: str | Path, runs: Sequence[RunManifest], **kw: Any) -> Path:
    """Write `build_report(runs, **kw)` to `out` (temporary name, then rename)."""
    return write_bytes_atomic(out, build_report(runs, **kw).encode("utf-8"))


__all__ = ["build_report", "data_uri", "default_by", "esc", "write_report"]
