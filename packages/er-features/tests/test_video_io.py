"""Frame sampling by seeking: the right frames, the same pixels as a full decode, a fraction of
the decoding work, and every broken file reported as a problem instead of a crash."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
from er_features.video_io import (
    EmptyClip,
    MediaProblem,
    read_all_frames,
    sample_frames,
    targets,
)


def check_against_full_decode(path, **kw) -> list[int]:
    """sample_frames(path, **kw) returns, for each wanted time, the frame on screen then (the
    last one starting at or before it), pixel for pixel as a full decode gives it. Returns the
    chosen frame indices."""
    all_frames, all_times = read_all_frames(path)
    frames, times = sample_frames(path, **kw)
    with av.open(str(path)) as c:  # the length the container declares, as sampling reads it
        s = c.streams.video[0]
        duration = float(s.duration * s.time_base) if s.duration else c.duration / 1e6
    want = targets(
        duration,
        kw.get("n", 8),
        kw.get("mode", "even"),
        kw.get("rate", 2.0),
        kw.get("start"),
        kw.get("end"),
    )
    expected = sorted({max([0] + [i for i, t in enumerate(all_times) if t <= w]) for w in want})
    chosen = [min(range(len(all_times)), key=lambda i: abs(all_times[i] - t)) for t in times]
    assert chosen == expected
    for frame, i in zip(frames, chosen, strict=True):
        assert frame.dtype == np.uint8 and frame.shape == all_frames[i].shape
        assert np.array_equal(frame, all_frames[i]), f"frame {i} differs from the full decode"
    return chosen


@pytest.mark.parametrize(
    "kw",
    [
        {"n": 8},
        {"n": 1},
        {"n": 20},
        {"n": 5, "start": 3.3, "end": 11.9},
        {"n": 8, "start": 24.5},  # a cut at the very end
        {"n": 8, "mode": "rate", "rate": 0.25},
        {"n": 200},  # more wanted than the clip holds: each frame once
    ],
)
def test_seek_gives_the_full_decode_frames_h264(long_clip, kw):
    chosen = check_against_full_decode(long_clip, **kw)
    assert len(chosen) == len(set(chosen))


@pytest.mark.parametrize("bframes", [3, 8])
def test_skipping_unreferenced_frames_keeps_the_frames_and_saves_decoding(
    write_video, tmp_path, bframes
):
    """MELD-like: one keyframe, B-frames (x264's pyramid: some referenced, some not, reordered
    up to `bframes` deep). Packets far before a wanted time go in with skip_frame NONREF: the
    frames are a full decode's, bit for bit, and fewer are decoded than without skipping."""
    rng = np.random.default_rng(bframes)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(96)]
    path = write_video(tmp_path / "one-key.mp4", frames, gop=250, bframes=bframes)
    for kw in ({"n": 8}, {"n": 3, "start": 1.0}, {"n": 30}):
        check_against_full_decode(path, **kw)
        skipped, full = {}, {}
        a, _ = sample_frames(path, stats=skipped, **kw)
        b, _ = sample_frames(path, stats=full, skip=False, **kw)
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        assert skipped["decoded"] < full["decoded"] or kw["n"] == 30  # 30 of 96: all near


def test_seek_gives_the_full_decode_frames_synth(synth_videos):
    for p in synth_videos[:4]:  # mp4v from OpenCV, 12 frames
        check_against_full_decode(p, n=8)
        check_against_full_decode(p, n=3, start=0.2, end=0.7)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["single_face.mp4", "WolfgangLanger_Pexels.mp4"])
def test_seek_gives_the_full_decode_frames_real(shared_data, name):
    path = shared_data / "face-videos" / name
    check_against_full_decode(path, n=8)
    check_against_full_decode(path, n=4, start=1.1, end=2.0)


def test_times_lie_inside_the_cut(long_clip):
    frames, times = sample_frames(long_clip, 6, start=4.0, end=10.0)
    assert len(frames) == 6
    assert all(4.0 <= t < 10.0 for t in times) and times == sorted(times)
    grey, _ = sample_frames(long_clip, 6, start=4.0, end=10.0, grey=True)
    assert grey[0].ndim == 2 and grey[0].shape == frames[0].shape[:2]


def test_sampling_decodes_a_fraction_of_the_clip(long_clip):
    stats: dict = {}
    frames, _ = sample_frames(long_clip, 8, stats=stats)
    assert len(frames) == 8
    # each frame costs at most one GOP (12) of decoding: 8 * 12 = 96 of 600, far less than all
    assert stats["decoded"] <= 8 * 12 + 8, stats
    assert stats["decoded"] < 600 / 5
    assert stats["seeks"] >= 2


def test_dense_sampling_never_decodes_more_than_a_full_pass(long_clip):
    stats: dict = {}
    frames, _ = sample_frames(long_clip, 400, stats=stats)
    assert len(frames) == 400
    assert stats["decoded"] <= 600, stats  # forward decoding, not a seek back per frame


def test_rate_sampling_takes_rate_per_second_capped(long_clip):
    _, times = sample_frames(long_clip, 8, mode="rate", rate=0.2)  # 25 s x 0.2 = 5 frames
    assert len(times) == 5
    assert np.allclose(np.diff(times), 5.0, atol=1 / 24 + 1e-6)
    _, times = sample_frames(long_clip, 8, mode="rate", rate=2.0)  # 50 frames, capped at 8
    assert len(times) == 8
    _, times = sample_frames(long_clip, 8, mode="rate", rate=2.0, start=1.0, end=2.9)
    assert len(times) == 3 and all(1.0 <= t < 2.9 for t in times)  # floor(1.9 s x 2)


def test_targets_are_segment_centres():
    assert targets(10.0, 4, "even", 2.0, None, None) == [1.25, 3.75, 6.25, 8.75]
    assert targets(10.0, 2, "even", 2.0, 2.0, 4.0) == [2.5, 3.5]
    assert targets(10.0, 8, "rate", 0.5, None, 20.0) == [1.0, 3.0, 5.0, 7.0, 9.0]  # end clipped
    with pytest.raises(ValueError):
        targets(10.0, 2, "sometimes", 2.0, None, None)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("missing", "not found"),
        ("corrupt", "cannot open"),
        ("truncated", "cannot open"),
        ("truncated_faststart", "truncated"),
        ("audio_only", "no video stream"),
    ],
)
def test_broken_files_are_problems_not_crashes(broken_media, name, says):
    with pytest.raises(MediaProblem) as e:
        sample_frames(broken_media[name], 8)
    assert not isinstance(e.value, EmptyClip)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_full_decode_reports_broken_files_too(broken_media):
    for name in ("missing", "corrupt", "truncated", "truncated_faststart", "audio_only"):
        with pytest.raises(MediaProblem):
            read_all_frames(broken_media[name])


def test_zero_length_clips_are_empty(broken_media, long_clip):
    with pytest.raises(EmptyClip):
        sample_frames(broken_media["zero"], 8)  # a writer closed before any frame
    for start, end in [(3.0, 3.0), (5.0, 4.0), (30.0, None)]:  # empty cut, reversed, past the end
        with pytest.raises(EmptyClip):
            sample_frames(long_clip, 8, start=start, end=end)


def test_one_frame_clip(write_video, tmp_path):
    frame = np.full((32, 32, 3), 90, np.uint8)
    path = write_video(tmp_path / "one.mp4", [frame], fps=10)
    frames, times = sample_frames(path, 8)
    assert len(frames) == 1 and times == [0.0]
    assert math.isclose(float(frames[0].mean()), 90, abs_tol=3)


def test_a_raw_stream_without_timestamps_still_samples(tmp_path):
    """A bare H.264 stream declares no duration and no pts: one full pass, frames by count."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(48)]
    with av.open(str(tmp_path / "raw.h264"), "w", format="h264") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for f in frames:
            out.mux(s.encode(av.VideoFrame.from_ndarray(f, format="bgr24")))
        out.mux(s.encode(None))
    all_frames, _ = read_all_frames(tmp_path / "raw.h264")
    got, times = sample_frames(tmp_path / "raw.h264", 8)
    assert len(got) == 8 and times == sorted(times)
    rate = len(all_frames) / (times[-1] + times[0] * 2)  # frames are counted at a declared rate
    for frame, t in zip(got, times, strict=True):
        assert np.array_equal(frame, all_frames[round(t * rate)])


@pytest.mark.parametrize(("suffix", "bframes"), [(".mkv", 2), (".avi", 0)])
def test_other_containers(write_video, tmp_path, suffix, bframes):
    """Matroska declares no per-stream length or frame count (only the container's). AVI
    stores no presentation times, so B-frames there scramble pts for any reader: none here."""
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(60)]
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=25, gop=10, bframes=bframes)
    check_against_full_decode(path, n=8)
    check_against_full_decode(path, n=3, start=0.5, end=1.5)


def test_grey_comes_from_the_luma_plane(long_clip, write_video, tmp_path):
    """Grey frames are the luma plane stretched to full range: OpenCV's BGR->grey of the same
    frame within a few levels (more only where the colour clips in RGB, as in this noise); a
    full-range (yuvj) stream's luma is taken as it is."""
    import cv2

    grey, _ = sample_frames(long_clip, 4, grey=True)
    bgr, _ = sample_frames(long_clip, 4)
    for g, c in zip(grey, bgr, strict=True):
        d = np.abs(g.astype(int) - cv2.cvtColor(c, cv2.COLOR_BGR2GRAY))
        assert g.flags.c_contiguous and d.mean() < 2.5 and np.percentile(d, 99) <= 6
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(24)]
    full = tmp_path / "full.mp4"
    with av.open(str(full), "w") as out:
        s = out.add_stream("mjpeg", rate=24)
        s.height, s.width, s.pix_fmt = 48, 64, "yuvj420p"
        for f in frames:
            frame = av.VideoFrame.from_ndarray(f, format="bgr24").reformat(format="yuvj420p")
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    grey, _ = sample_frames(full, 3, grey=True)
    bgr, _ = sample_frames(full, 3)
    for g, c in zip(grey, bgr, strict=True):
        assert np.abs(g.astype(int) - cv2.cvtColor(c, cv2.COLOR_BGR2GRAY)).mean() < 2.5


def test_decoder_threads_never_change_a_frame(long_clip):
    a, _ = sample_frames(long_clip, 8, threads=1)
    b, _ = sample_frames(long_clip, 8, threads=0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_without_deblocking_frames_stay_close_and_fixed(write_video, tmp_path):
    """deblock=False skips the in-loop filter: other pixels (else it did nothing), within a
    couple of grey levels on average, and the same on every read."""
    import cv2

    y, x = np.mgrid[0:96, 0:128]
    frames = [
        np.dstack([(x * 2 + k * 3) % 256, (y * 2) % 256, ((x + y + k) * 1) % 256]).astype(np.uint8)
        for k in range(48)
    ]
    frames = [cv2.GaussianBlur(f, (0, 0), 3) for f in frames]
    path = write_video(tmp_path / "smooth.mp4", frames, gop=48)
    on, _ = sample_frames(path, 6, grey=True)
    off, _ = sample_frames(path, 6, grey=True, deblock=False)
    again, _ = sample_frames(path, 6, grey=True, deblock=False)
    diffs = [np.abs(a.astype(int) - b).mean() for a, b in zip(on, off, strict=True)]
    assert max(diffs) > 0 and max(diffs) < 3, diffs
    assert all(np.array_equal(a, b) for a, b in zip(off, again, strict=True))
