"""The video encoder: shapes, flags, face ratio, pooling, cuts, config, and batch independence."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from er_core import ErError
from er_features.base import FLAG_BAD_MEDIA, FLAG_EMPTY, FLAG_NO_FACE, Item
from er_features.video import VideoConfig, VideoEncoder
from er_features.video_io import sample_frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory, face_frames, write_video) -> dict:
    """face: a face in all 16 frames (8 fps); half: a face in frames 0-7 only; none: noise."""
    root = tmp_path_factory.mktemp("clips")
    face, other = face_frames[0], face_frames[1]
    blank = np.full_like(face, 128)
    rng = np.random.default_rng(0)
    moving = [np.roll(face, i, axis=1) for i in range(16)]
    return {
        "face": write_video(root / "face.mp4", moving, fps=8, gop=4),
        "other": write_video(root / "other.mp4", [other] * 8, fps=8),
        "half": write_video(root / "half.mp4", [face] * 8 + [blank] * 8, fps=8, gop=4),
        "none": write_video(
            root / "none.mp4",
            [rng.integers(0, 256, face.shape, dtype=np.uint8) for _ in range(8)],
            fps=8,
        ),
    }


@pytest.fixture(scope="module")
def encoder(tiny_face_cnns):
    return VideoEncoder(tiny_face_cnns["mini-xception"], VideoConfig(), batch_size=5)


def items_of(*paths, **cut) -> list[Item]:
    return [Item(uid=f"u{i}", path=str(p), **cut) for i, p in enumerate(paths)]


def test_encode_shapes_and_extras(encoder, synth_videos):
    out = encoder.encode(items_of(*synth_videos))
    n = len(synth_videos)
    assert encoder.modality == "video" and encoder.dim == 8
    assert out.features.shape == (n, 8) and out.features.dtype == np.float32
    assert out.flags.shape == (n,) and out.flags.dtype == np.uint8
    assert out.extras["logits"].shape == (n, 7) and out.extras["face_ratio"].shape == (n, 1)
    assert set(out.flags.tolist()) <= {0, FLAG_NO_FACE} and (out.flags == 0).sum() >= n // 2
    good = out.flags == 0
    assert (np.abs(out.features[good]).sum(1) > 0).all()
    assert ((out.extras["face_ratio"] > 0) == good[:, None]).all()
    assert (out.extras["face_ratio"] <= 1).all() and not out.problems


def test_a_clip_without_a_face_is_flagged_zero(encoder, clips):
    out = encoder.encode(items_of(clips["none"], clips["face"]))
    assert out.flags.tolist() == [FLAG_NO_FACE, 0]
    assert not out.features[0].any() and not out.extras["logits"][0].any()
    assert out.extras["face_ratio"][:, 0].tolist() == [0.0, 1.0]
    assert out.features[1].any()


def test_face_ratio_counts_the_detectors_own_hits(encoder, clips):
    _, times = sample_frames(clips["half"], encoder.cfg.frames)
    expected = sum(round(t * 8) < 8 for t in times) / len(times)  # frames 0-7 hold the face
    out = encoder.encode(items_of(clips["half"]))
    assert out.flags[0] == 0  # missed frames reuse the box: the clip still has a face
    assert 0 < expected < 1 and out.extras["face_ratio"][0, 0] == pytest.approx(expected)
    first_half = encoder.encode(items_of(clips["half"], start=0.0, end=1.0))  # the cut is used
    assert first_half.extras["face_ratio"][0, 0] == 1.0


def test_broken_media_is_flagged_and_the_batch_goes_on(encoder, clips, broken_media):
    names = ["missing", "corrupt", "truncated", "truncated_faststart", "audio_only", "zero"]
    items = items_of(clips["face"], *(broken_media[n] for n in names))
    items.append(Item(uid="cut", path=str(clips["face"]), start=1.0, end=1.0))
    out = encoder.encode(items)
    assert out.flags.tolist() == [0] + [FLAG_BAD_MEDIA] * 5 + [FLAG_EMPTY, FLAG_EMPTY]
    assert sorted(out.problems) == [1, 2, 3, 4, 5]
    assert "not found" in out.problems[1] and "no video stream" in out.problems[5]
    assert "truncated" in out.problems[4]
    assert not out.features[1:].any() and not out.extras["face_ratio"][1:].any()
    alone = encoder.encode(items[:1])
    assert np.array_equal(alone.features[0], out.features[0])


@pytest.mark.parametrize("arch", ["mini-xception", "pyemotion-v2"])
def test_output_is_independent_of_the_batch(tiny_face_cnns, clips, synth_videos, arch):
    # CPU kernels round differently for other batch shapes (tiny pyemotion-v2 here: batches of
    # 1, 2-10 and 11+ give three different results): unpadded CNN calls fail this test
    encoder = VideoEncoder(tiny_face_cnns[arch], VideoConfig(), batch_size=16)
    paths = [clips["face"], clips["half"], clips["none"], clips["other"], *synth_videos[:3]]
    items = items_of(*paths)
    together = encoder.encode(items)  # ~48 crops: a clip's crops straddle CNN calls
    backwards = encoder.encode(items[::-1])
    for i, item in enumerate(items):
        alone = encoder.encode([item])
        j = len(items) - 1 - i
        for got, k in ((alone, 0), (backwards, j)):
            assert np.array_equal(got.features[k], together.features[i]), item.path
            assert np.array_equal(got.extras["logits"][k], together.extras["logits"][i])
            assert got.flags[k] == together.flags[i]
            assert got.extras["face_ratio"][k] == together.extras["face_ratio"][i]


def test_output_is_independent_of_workers_and_skipping(tiny_face_cnns, clips, synth_videos):
    """Clips decoded in 1 or 3 threads, with or without skipping unreferenced frames: the
    same vectors, logits, flags and face ratios, bit for bit (and a broken file stays a flag)."""
    paths = [clips["face"], clips["half"], clips["none"], clips["other"], *synth_videos[:4]]
    items = items_of(*paths)
    folder = tiny_face_cnns["mini-xception"]
    one = VideoEncoder(folder, VideoConfig(), workers=1, skip=False).encode(items)
    for workers in (2, 3):
        got = VideoEncoder(folder, VideoConfig(), workers=workers).encode(items)
        assert np.array_equal(got.features, one.features)
        assert np.array_equal(got.extras["logits"], one.extras["logits"])
        assert np.array_equal(got.extras["face_ratio"], one.extras["face_ratio"])
        assert np.array_equal(got.flags, one.flags) and got.problems == one.problems


def test_mean_max_pooling_doubles_the_width(tiny_face_cnns, clips):
    folder = tiny_face_cnns["mini-xception"]
    mean = VideoEncoder(folder, VideoConfig(pooling="mean"))
    both = VideoEncoder(folder, VideoConfig(pooling="mean+max"))
    top = VideoEncoder(folder, VideoConfig(pooling="max"))
    items = items_of(clips["face"])
    a, b, c = (e.encode(items).features[0] for e in (mean, both, top))
    assert both.dim == 16 and b.shape == (16,)
    np.testing.assert_allclose(b[:8], a, rtol=1e-6)
    np.testing.assert_allclose(b[8:], c, rtol=1e-6)
    assert (c >= a - 1e-6).all() and (c > a + 1e-6).any()


def test_pyemotion_architecture_and_rate_sampling(tiny_face_cnns, clips):
    enc = VideoEncoder(tiny_face_cnns["pyemotion-v2"], VideoConfig(sampling="rate", rate=1.0))
    assert enc.dim == 16 and enc.config["cnn"]["input_size"] == 48
    out = enc.encode(items_of(clips["face"]))  # 2 s at 1 frame/s: 2 frames
    assert out.flags[0] == 0 and out.features.shape == (1, 16) and out.features[0].any()


def test_config_names_what_changes_the_output(encoder):
    cfg = encoder.config
    assert cfg["frames"] == 8 and cfg["sampling"] == "even" and cfg["pooling"] == "mean"
    assert cfg["cnn"]["architecture"] == "mini-xception" and cfg["cnn"]["input_size"] == 64
    assert "device" not in cfg and "batch_size" not in cfg
    assert encoder.extras == {"logits": 7, "face_ratio": 1}


def test_config_rejects_unknown_keys_and_bad_values(tiny_face_cnns):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"frame": 8}, VideoConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"pooling": "median"}, VideoConfig)
    with pytest.raises(ErError) as e:
        VideoEncoder(tiny_face_cnns["mini-xception"], VideoConfig(frames=0))
    assert e.value.at == "video.frames"
    with pytest.raises(ErError, match="cascade"):
        VideoEncoder(tiny_face_cnns["mini-xception"], VideoConfig(cascade="nope.xml"))
