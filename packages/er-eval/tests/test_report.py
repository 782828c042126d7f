"""The HTML report: self-contained, escaped, with each run's lineage; and `er-eval report`."""

from __future__ import annotations

import base64
import html
import json
import struct
from html.parser import HTMLParser
from pathlib import Path

import msgspec
import pytest
from er_core import (
    DatasetManifest,
    ErError,
    FileRef,
    RunManifest,
    write_bytes_atomic,
)
from er_core.stream import encode as encode_message
from er_eval.plots import PIXELS
from er_eval.report import build_report, write_report
from er_eval.runs import read_runs
from er_eval.score import score_run
from er_eval.table import summarise
from er_eval.testing import make_run

EVIL = "<script>alert('x')</script>"


class Page(HTMLParser):
    """Every tag's attributes, the ids, and the text, as the browser would see them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data):
        self.text.append(data)

    def attr(self, name: str) -> list[str]:
        return [a[name] for _, a in self.tags if name in a]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def with_lineage(folder: Path, run: RunManifest, **kw) -> RunManifest:
    """The run as er-train writes it, with features, cache keys and dims filled in."""
    new = msgspec.structs.replace(
        run,
        features={"text": "f" * 64, "audio": "a1" * 32},
        encoders={"text": "minilm", "audio": "whisper-tiny.en"},
        encoder_keys={"text": "k" * 64, "audio": "kb" * 32},
        dims={"text": 384, "audio": 384},
        modalities=["text", "audio"],
        network_hash="0123abcd" * 8,
        params=12345,
        **kw,
    )
    write_bytes_atomic(folder / "run.json", msgspec.json.encode(new))
    return new


@pytest.fixture
def folders(tmp_path) -> list[Path]:
    """Two fusions x two seeds, with lineage; every run's config holds a <script>."""
    out = []
    for kind, acc in (("concat", 0.5), ("attention", 0.8)):
        for seed in (0, 1):
            folder = tmp_path / f"{kind}-{seed}"
            config = {"fusion": {"kind": kind}, "note": EVIL}
            run = make_run(folder, seed=seed, accuracy=acc, config=config, epochs=4)
            with_lineage(folder, run, dataset_name=f"toy {EVIL}")
            out.append(folder)
    return out


def test_report_is_self_contained(tmp_path, folders):
    inp = read_runs([str(f) for f in folders])
    path = write_report(tmp_path / "r.html", inp.runs, envelopes=inp.envelopes, folders=inp.folders)
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert 'src="http' not in text and "url(" not in text and "@import" not in text
    assert not [t for t, _ in page.tags if t in ("link", "script", "iframe", "object")]
    srcs = page.attr("src")
    # 4 runs x (curve + confusion) + the results bar chart
    assert len(srcs) == 9
    sizes = []
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        sizes.append(png_size(base64.b64decode(src.split(",", 1)[1], validate=True)))
    assert sizes.count(PIXELS["curves"]) == 4 and sizes.count(PIXELS["confusion"]) == 4
    assert sizes.count(PIXELS["ablation"]) == 1
    ids = set(page.attr("id"))
    hrefs = page.attr("href")
    assert len(hrefs) == 4 and all(h.startswith("#") and h[1:] in ids for h in hrefs)


def test_report_escapes_manifest_strings(tmp_path, folders):
    inp = read_runs([str(f) for f in folders])
    text = build_report(inp.runs, envelopes=inp.envelopes)
    assert "<script" not in text.lower()
    page = Page(text)
    shown = "".join(page.text)
    assert f"toy {EVIL}" in shown  # the dataset name, shown as text
    assert json.dumps(EVIL)[1:-1] in shown  # in the config JSON
    assert html.escape(EVIL) in text


def test_report_shows_lineage_and_scores(tmp_path, folders):
    inp = read_runs([str(f) for f in folders])
    run = inp.runs[0]
    text = build_report(inp.runs, envelopes=inp.envelopes)
    shown = "".join(Page(text).text)
    for value in [
        run.id,
        run.dataset,
        run.network_hash,
        "f" * 64,  # FeatureManifest ids
        "a1" * 32,
        "k" * 64,  # encoder cache keys
        "kb" * 32,
        "whisper-tiny.en",
        "dev emotion/weighted_f1, epoch 4 of 4",
        "12,345",
    ]:
        assert value in shown, value
    # the resolved config, pretty, in a <details>
    details = text.split("<details>")[1].split("</details>")[0]
    assert "resolved config" in details and "&quot;fusion&quot;: {\n" in details
    # the run's test accuracy (its EvalManifest, scored from its prediction files)
    acc = score_run(run).scores["test"]["emotion"].metrics["accuracy"]
    assert f"{100 * acc:.2f}" in shown
    # the results table: mean ± std per fusion, from table.summarise
    evals = {r.id: score_run(r) for r in inp.runs}
    frame = summarise(inp.runs, ["modalities", "fusion"], None, evals=evals)
    mean, std = "test/emotion/weighted_f1 mean", "test/emotion/weighted_f1 std"
    for row in frame.iter_rows(named=True):
        assert f"{row[mean]:.2f} ± {row[std]:.2f}" in shown
        assert row["fusion"] in shown


def test_report_uses_the_stream(tmp_path, folders):
    """EvalManifests and the DatasetManifest in the stream are used; no prediction file needed."""
    inp = read_runs([str(f) for f in folders])
    evals = [score_run(r) for r in inp.runs]
    for f in folders:
        for split in ("dev", "test"):
            (f / f"{split}.safetensors").unlink()
    ds = DatasetManifest(
        id="d" * 64,
        dataset="toy",
        task="emotion",
        adapter="toy-adapter",
        splits={"train": 100, "dev": 40, "test": 60},
        table=FileRef(path="/x/table.parquet", sha256="0" * 64),
    )
    stream = tmp_path / "s.ndjson"
    lines = [encode_message(ds)] + [(f / "run.json").read_bytes() for f in folders]
    stream.write_bytes(b"\n".join(lines + [encode_message(e) for e in evals]) + b"\n")
    inp = read_runs([str(stream)])
    text = build_report(inp.runs, envelopes=inp.envelopes)
    assert "adapter toy-adapter" in text and "train 100" in text
    assert f"metrics from EvalManifest <code>{evals[0].id[:12]}</code>" in text
    # and without those EvalManifests, the missing prediction files are an error
    with pytest.raises(ErError, match=r"prediction file .* not found"):
        build_report(inp.runs)


def test_report_needs_runs():
    with pytest.raises(ErError, match="no runs"):
        build_report([])


def test_cli_report(tmp_path, folders, cli):
    stream = b"".join((f / "run.json").read_bytes() + b"\n" for f in folders)
    out = tmp_path / "sub" / "report.html"
    r = cli("report", "--out", out, "--by", "fusion", "--title", "T <1>", stdin=stream)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == stream
    assert r.stderr.decode().strip() == str(out)
    text = out.read_text(encoding="utf-8")
    assert "<title>T &lt;1&gt;</title>" in text
    assert "<th>fusion</th>" in text and "<th>modalities</th>" not in text  # --by fusion
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_cli_report_missing_predictions(tmp_path, folders, cli):
    (folders[1] / "test.safetensors").unlink()
    out = tmp_path / "report.html"
    r = cli("report", *folders, "--out", out)
    assert r.returncode == 1 and r.stdout == b"" and not out.exists()
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: test prediction file"), lines
    assert lines[1].startswith("hint: ")


def test_report_of_regression_runs(tmp_path):
    for seed in (0, 1):
        make_run(tmp_path / f"r{seed}", seed=seed, regression=True, task="sentiment")
    inp = read_runs([str(tmp_path / "r0"), str(tmp_path / "r1")])
    text = build_report(inp.runs, envelopes=inp.envelopes)
    assert "sentiment is a regression task: no confusion matrix" in text
    assert "<th>test/sentiment/mae</th>" in text  # raw, not percent
    mae = score_run(inp.runs[0]).scores["test"]["sentiment"].metrics["mae"]
    assert f'<td class="num">{mae:.4f}</td>' in text
