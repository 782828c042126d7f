"""Real pipes between the installed CLIs, run through a shell as a user would type them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from er_testing.cli import sh


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pipes")
    r = sh("er-data synth --out data --utterances 60 --seed 3", root)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # synth writes files, never messages
    return root


def test_prepare_validate_stats_pipe_keeps_the_lineage(synth_root: Path) -> None:
    r = sh(
        "er-data prepare meld --root data --out out | er-data validate | er-data stats", synth_root
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1  # validate and stats pass the manifest through and add nothing
    manifest = json.loads(lines[0])
    assert manifest["kind"] == "dataset"
    assert manifest["modalities"] == ["text", "audio", "video"]
    assert sum(manifest["splits"].values()) == 60
    assert "total" in r.stderr  # the stats table went to stderr


def test_rerun_is_a_noop_with_the_same_output(synth_root: Path) -> None:
    first = sh("er-data prepare meld --root data --out out", synth_root)
    table = Path(json.loads(first.stdout)["table"]["path"])
    mtime = table.stat().st_mtime_ns
    second = sh("er-data prepare meld --root data --out out", synth_root)
    assert second.stdout == first.stdout
    assert table.stat().st_mtime_ns == mtime  # nothing rewritten


def test_stats_formats_go_to_stdout(synth_root: Path) -> None:
    r = sh(
        "er-data prepare meld --root data --out out --task sentiment | er-data stats --format csv",
        synth_root,
    )
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header == "split,class,count,share"
    assert {row.split(",")[1] for row in rows} == {"neutral", "positive", "negative"}
    assert sum(int(row.split(",")[2]) for row in rows) == 60


def test_closed_pipe_is_quiet(synth_root: Path) -> None:
    r = sh(
        "er-data prepare meld --root data --out out | er-data stats --format csv | head -1",
        synth_root,
    )
    assert r.returncode == 0
    assert r.stdout == "split,class,count,share\n"
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr


def test_failure_in_the_middle_stops_the_pipe(synth_root: Path) -> None:
    r = sh("er-data prepare meld --root nowhere --out out | er-data stats", synth_root)
    assert r.returncode == 1
    err = r.stderr.splitlines()
    assert err[0].startswith("error: dataset root not found, at nowhere")
    assert any(line.startswith("hint: ") for line in err)


def test_synth_to_three_modalities_of_features(synth_root: Path) -> None:
    """er-data synth -> prepare -> text, audio and video extraction, one shell pipe; tiny random
    encoders stand in for real weights (the code path is the same)."""
    tiny = (
        "from pathlib import Path; from er_features.testing import *; "
        "tiny_text_folder(Path('enc/text')); tiny_whisper_folder(Path('enc/audio')); "
        "tiny_face_cnn_folder(Path('enc/video'))"
    )
    made = subprocess.run([sys.executable, "-c", tiny], cwd=synth_root, capture_output=True)
    assert made.returncode == 0, made.stderr
    r = sh(
        "er-data prepare meld --root data --out out"
        " | er-features extract -m text -e enc/text --cache cache --out out"
        " | er-features extract -m audio -e enc/audio --cache cache --out out"
        " | er-features extract -m video -e enc/video --cache cache --out out --set video.frames=4",
        synth_root,
    )
    assert r.returncode == 0, r.stderr
    msgs = [json.loads(x) for x in r.stdout.splitlines()]
    assert [m["kind"] for m in msgs] == ["dataset", "features", "features", "features"]
    dataset, *feats = msgs
    assert [f["modality"] for f in feats] == ["text", "audio", "video"]
    for f in feats:
        assert f["dataset"] == dataset["id"] and f["count"] == 60
        assert f["table_sha256"] == dataset["table"]["sha256"]
        assert all(Path(s["path"]).is_file() for s in f["shards"])
    assert [f["dim"] for f in feats] == [32, 32, feats[2]["dim"]] and feats[2]["dim"] > 0
    assert feats[2]["extras"] == {"face_ratio": 1, "logits": 7}
    assert feats[1]["fallbacks"] == {}  # every synthetic WAV decodes and has sound
