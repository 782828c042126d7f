"""extract on real media files: audio and video end to end, and bad media (error or flagged)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from er_core import ErError, load_features, read_stream
from er_features.extraction import ExtractConfig, extract


@pytest.fixture
def own_synth(tmp_path):
    """A private synthetic dataset (its files may be damaged): (data root, stream)."""
    root = tmp_path / "data"
    run = [sys.executable, "-m", "er_data"]
    subprocess.run([*run, "synth", "--out", str(root), "--utterances", "12"], check=True)
    prep = subprocess.run(
        [*run, "prepare", "meld", "--root", str(root), "--out", str(tmp_path / "o")],
        check=True,
        capture_output=True,
    )
    return root, read_stream(["-"], stdin=io.BytesIO(prep.stdout))


def media(root: Path, suffix: str) -> list[Path]:
    return sorted((root / "train_splits").glob(f"*{suffix}"))


def test_audio_and_video_features_of_every_clip(own_synth, tiny_whisper, tiny_face_cnns, tmp_path):
    _, envs = own_synth
    for modality, folder in (("audio", tiny_whisper), ("video", tiny_face_cnns["mini-xception"])):
        cfg = ExtractConfig(modality=modality, encoder=str(folder))
        m = extract(envs, cfg, cache=tmp_path / "c", out=tmp_path / "o")
        fs = load_features(m)
        assert m.count == 12 and fs.features.shape == (12, m.dim)
        encoded = np.abs(fs.features).sum(1) > 0
        assert (encoded == (fs.flags == 0)).all()  # a zero row is always a flagged row
        assert encoded.sum() >= 10  # the drawn face is found in (nearly) every clip
    assert m.extras == {"face_ratio": 1, "logits": 7}


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_bad_audio_is_an_error_naming_it_or_a_flagged_row(
    own_synth, tiny_whisper, tmp_path, damage
):
    root, envs = own_synth
    victim = media(root, ".wav")[1]
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:60])  # the header survives, the samples do not
    cfg = ExtractConfig(modality="audio", encoder=str(tiny_whisper))
    kw = {"cache": tmp_path / "c", "out": tmp_path / "o"}
    with pytest.raises(ErError) as e:
        extract(envs, cfg, **kw)
    assert e.value.at == str(victim.resolve()) and "dia" in e.value.what
    assert "--on-bad-media flag" in e.value.hint
    flagged = extract(
        envs, ExtractConfig(modality="audio", encoder=str(tiny_whisper), on_bad_media="flag"), **kw
    )
    assert flagged.fallbacks == {"bad_media": 1} and flagged.count == 12
    fs = load_features(flagged)
    row = [fs.ids.index(f"train/{victim.stem}")]
    assert fs.flags[row].tolist() == [1] and not fs.features[row].any()


def test_corrupt_video_and_faceless_clip(own_synth, tiny_face_cnns, tmp_path):
    root, envs = own_synth
    clips = media(root, ".mp4")
    clips[0].write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    cfg = ExtractConfig(modality="video", encoder=str(tiny_face_cnns["mini-xception"]))
    kw = {"cache": tmp_path / "c", "out": tmp_path / "o"}
    with pytest.raises(ErError, match="unusable") as e:
        extract(envs, cfg, **kw)
    assert e.value.at == str(clips[0].resolve())
    # a faceless clip: the face is painted over, the detector finds nothing in any frame
    blank = _blank_clip(clips[1])
    flagged = extract(
        envs, ExtractConfig(modality="video", encoder=cfg.encoder, on_bad_media="flag"), **kw
    )
    assert flagged.fallbacks["bad_media"] == 1 and flagged.fallbacks["no_face"] >= 1
    fs = load_features(flagged)
    row = fs.ids.index(f"train/{blank.stem}")
    assert fs.flags[row] == 16 and not fs.features[row].any()


def _blank_clip(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg4", rate=12)
        s.width = s.height = 160
        s.pix_fmt = "yuv420p"
        for _ in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((160, 160, 3), 90, np.uint8), "rgb24")
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    return path
