"""`er-data stats`: the class distribution per split, from the manifest, once its table passes
the table check (so stats of an edited or replaced table are refused, not printed)."""

from __future__ import annotations

import polars as pl
from er_core import DatasetManifest

from er_data.check import check_table


def stats_frame(manifest: DatasetManifest) -> pl.DataFrame:
    """One row per (split, class): count and share of the split. Regression: one row per split."""
    check_table(manifest)
    rows = []
    for split, n in manifest.splits.items():
        per_class = manifest.class_counts.get(split) or {}
        if not per_class:
            rows.append({"split": split, "class": "", "count": n, "share": 1.0 if n else 0.0})
        for cls in manifest.classes:
            c = per_class.get(cls, 0)
            rows.append({"split": split, "class": cls, "count": c, "share": c / n if n else 0.0})
    schema = {"split": pl.String, "class": pl.String, "count": pl.Int64, "share": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def render(frame: pl.DataFrame, fmt: str) -> str:
    if fmt == "json":
        return frame.write_ndjson()
    if fmt == "csv":
        return frame.write_csv()
    wide = frame.pivot(on="split", index="class", values="count")
    total = frame.group_by("split", maintain_order=True).agg(pl.col("count").sum())
    lines = [" | ".join(["class".ljust(12), *[c.rjust(7) for c in wide.columns[1:]]])]
    for row in wide.iter_rows():
        lines.append(" | ".join([str(row[0]).ljust(12), *[str(v).rjust(7) for v in row[1:]]]))
    lines.append(" | ".join(["total".ljust(12), *[str(v).rjust(7) for v in total["count"]]]))
    return "\n".join(lines)
