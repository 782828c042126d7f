"""The README's main job, `tools/demo.sh`, end to end in a scratch folder: it finishes, T+A+V
beats each single modality on the synthetic test split (mean over the demo's 3 seeds), and every
figure it writes is a real PNG of the size er-eval documents.

Slow (about 2 minutes here, cold: synthesis, three encoders, 12 runs, scoring and figures):
    uv run pytest -m slow tests/test_demo.py
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature and the CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert zlib.crc32(kind + body) == crc, f"{path}: damaged IHDR"
    return struct.unpack(">II", body[:8])


def test_demo_end_to_end(tmp_path):
    from er_core import read_stream
    from er_eval.plots import PIXELS
    from er_eval.table import summarise

    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "ER_DEMO_DIR": str(tmp_path / "demo"),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    env.pop("ER_CACHE", None)  # the demo's own cache, inside its folder: a cold run
    r = subprocess.run(
        ["bash", str(ROOT / "tools" / "demo.sh")], env=env, capture_output=True, check=False
    )
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    demo = tmp_path / "demo"
    # progress reaches a log (stderr is a file here, not a terminal): extraction and training
    # lines with their rate and ETA
    log = r.stderr.decode()
    assert re.search(r"^extract text minilm: (\d+)/\1 utt .*ETA", log, flags=re.M), log[-3000:]
    assert re.search(r"^epoch 1/30 .*ETA", log, flags=re.M), log[-3000:]

    runs = [e.message for e in read_stream([str(demo / "scored.ndjson")]) if e.kind == "run"]
    assert len(runs) == 12
    table = summarise(runs, ["modalities"], "test/emotion/weighted_f1")
    means = dict(zip(table["modalities"], table["test/emotion/weighted_f1 mean"], strict=True))
    print("\ndemo test weighted-F1 (3 seeds):", {k: round(v, 2) for k, v in means.items()})
    assert set(means) == {"T", "A", "V", "T+A+V"} and set(table["n"]) == {3}
    assert all(means["T+A+V"] > means[m] for m in ("T", "A", "V")), means

    pngs = sorted((demo / "plots").glob("*.png"))
    kinds = {p.name.split("-")[0].removesuffix(".png") for p in pngs}
    assert kinds == {"ablation", "curves", "confusion"}, pngs
    assert len([p for p in pngs if p.name.startswith("confusion")]) == 12
    for p in pngs:
        kind = p.name.split("-")[0].removesuffix(".png")
        assert png_size(p) == PIXELS[kind], p
    html = (demo / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 12 and "<script" not in html
