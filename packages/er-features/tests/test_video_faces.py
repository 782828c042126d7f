"""Face finding: the largest face wins, later frames follow it, misses reuse a box from the
same clip, no face is no face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from er_core import ErError
from er_features.faces import FaceDetector, cascade_path, crop, face_crops, fill_boxes, to_grey


def iou(p, q) -> float:
    x0, y0 = max(p[0], q[0]), max(p[1], q[1])
    x1, y1 = min(p[0] + p[2], q[0] + q[2]), min(p[1] + p[3], q[1] + q[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (p[2] * p[3] + q[2] * q[3] - inter)


def two_faces(big, small, big_left: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """A 420x240 frame with a 200 px and a 110 px face; returns it and the big face's centre."""
    canvas = np.full((240, 420, 3), 120, np.uint8)
    b, s = cv2.resize(big, (200, 200)), cv2.resize(small, (110, 110))
    bx, sx = (10, 290) if big_left else (210, 20)
    canvas[20:220, bx : bx + 200] = b
    canvas[65:175, sx : sx + 110] = s
    return canvas, (bx + 100, 120)


@pytest.mark.parametrize("big_left", [True, False])
def test_the_largest_face_wins(face_frames, big_left):
    frame, (cx, cy) = two_faces(face_frames[0], face_frames[1], big_left)
    grey = to_grey(frame)
    clf = cv2.CascadeClassifier(cascade_path("haarcascade_frontalface_default.xml"))
    raw = clf.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
    assert len(raw) >= 2, "the test needs both faces found, else it proves nothing"
    box = FaceDetector().detect(grey)
    x, y, w, h = box
    assert x <= cx <= x + w and y <= cy <= y + h
    largest = max((tuple(int(v) for v in r) for r in raw), key=lambda r: r[2] * r[3])
    assert iou(box, largest) >= 0.7  # the same face, found in a coarser octave


def test_a_face_is_followed_near_its_last_box(face_frames):
    """The first frame finds the only face; when a bigger face joins in a later frame, the
    search near the last box keeps to the first face. When that face is gone, the whole frame
    is searched again and the other face is found."""
    alone = np.full((240, 420, 3), 120, np.uint8)
    alone[65:175, 20:130] = cv2.resize(face_frames[1], (110, 110))
    joined, (big_x, _) = two_faces(face_frames[0], face_frames[1], big_left=False)
    gone = joined.copy()
    gone[65:175, 20:130] = 120
    det = FaceDetector()
    first = det.detect(to_grey(alone))
    assert first is not None and first[0] < 130
    followed = det.detect(to_grey(joined), first)
    assert followed is not None and followed[0] < 130  # the small face, not the big one
    assert det.detect(to_grey(joined))[0] > 130  # a fresh search takes the biggest
    found = det.detect(to_grey(gone), followed)
    assert found is not None and found[0] <= big_x <= found[0] + found[2]
    crops, hits = face_crops([alone, joined, gone], det, 48)
    assert hits.tolist() == [True, True, True] and crops.shape == (3, 48, 48)


def test_fill_boxes_reuses_the_last_box_and_the_first_before_it():
    a, b = (1, 1, 5, 5), (2, 2, 6, 6)
    assert fill_boxes([None, a, None, b, None]) == [a, a, a, b, b]
    assert fill_boxes([None, None]) == [None, None]
    assert fill_boxes([a]) == [a]


def test_missed_frames_reuse_a_box_from_the_clip(face_frames):
    face = face_frames[0]
    blank = np.full_like(face, 128)
    frames = [blank, face, blank, blank]
    crops, found = face_crops(frames, FaceDetector(), 64)
    assert found.tolist() == [False, True, False, False]
    assert crops.shape == (4, 64, 64) and crops.dtype == np.uint8
    box = FaceDetector().detect(to_grey(face))
    assert np.array_equal(crops[0], crop(to_grey(blank), box, 64))  # before the first hit
    assert np.array_equal(crops[2], crops[0])  # after it: the same box on the same blank frame
    assert not np.array_equal(crops[1], crops[0])


def test_a_clip_without_faces_has_no_crops():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
    crops, found = face_crops(frames, FaceDetector(), 48)
    assert crops.shape == (0, 48, 48) and not found.any() and len(found) == 3


def test_detecting_on_a_smaller_frame_finds_the_same_face(face_frames):
    frame = cv2.resize(face_frames[2], (480, 480))
    full = FaceDetector().detect(to_grey(frame))
    small = FaceDetector(detect_width=160).detect(to_grey(frame))
    assert full is not None and small is not None

    assert iou(full, small) > 0.7


def test_min_face_drops_small_faces(face_frames):
    grey = to_grey(face_frames[0])  # a ~120 px face in 160 px
    assert FaceDetector(min_face=30).detect(grey) is not None
    assert FaceDetector(min_face=150).detect(grey) is None


def test_margin_grows_the_crop_within_the_frame():
    grey = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    box = (40, 40, 20, 20)
    assert np.array_equal(crop(grey, box, 20), grey[40:60, 40:60])  # same size: a plain copy
    grown = crop(grey, box, 40, margin=0.5)  # 40x40 around the box
    assert np.array_equal(grown, grey[30:70, 30:70])
    edge = crop(grey, (0, 0, 20, 20), 30, margin=0.5)  # clipped at the frame, still 30x30
    assert edge.shape == (30, 30)


def test_unknown_cascade_is_a_clear_error():
    with pytest.raises(ErError) as e:
        cascade_path("haarcascade_nothing.xml")
    assert "haarcascade_nothing.xml" in e.value.what and "5.x" in e.value.hint


def test_whole_frame_search_finds_every_face_size(face_frames):
    """The whole-frame search goes octave by octave, largest first: a face of any size, also
    at the border between two octaves, is found where one search over the whole pyramid finds
    it, and the same face."""
    clf = cv2.CascadeClassifier(cascade_path("haarcascade_frontalface_default.xml"))
    checked = 0
    for side in range(40, 261, 11):
        canvas = np.full((270, 480), 120, np.uint8)
        canvas[5 : 5 + side, 100 : 100 + side] = cv2.resize(to_grey(face_frames[0]), (side, side))
        raw = clf.detectMultiScale(canvas, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
        if len(raw) == 0:
            continue
        largest = max((tuple(int(v) for v in r) for r in raw), key=lambda r: r[2] * r[3])
        box = FaceDetector().detect(canvas)
        assert box is not None and iou(box, largest) >= 0.6, (side, box, largest)
        checked += 1
    assert checked >= 15, "the cascade itself should find most of these faces"


def test_a_followed_face_is_found_at_the_window_size(face_frames):
    """Following searches the square around the last box shrunk so the face fills the
    cascade's window: on a large frame the box still lands on the face."""
    frame = np.full((720, 1280), 120, np.uint8)
    frame[200:600, 500:900] = cv2.resize(to_grey(face_frames[1]), (400, 400))
    det = FaceDetector(detect_width=320)
    first = det.detect(frame)
    assert first is not None
    moved = np.full_like(frame, 120)
    moved[230:630, 540:940] = frame[200:600, 500:900]
    followed = det.detect(moved, first)
    shifted = (first[0] + 40, first[1] + 30, first[2], first[3])
    assert followed is not None and iou(followed, shifted) >= 0.6
