"""Find the speaker's face in each sampled frame and cut it out for the expression CNN.

A Haar frontal-face cascade (shipped with opencv-python-headless 4.x) is fast on a CPU and needs
no extra weights. In a clip's first frame with a face it keeps the LARGEST face (in a
conversation clip the speaker is usually the closest person); each later frame looks for the
face near the box before it first (see FaceDetector.detect), a search many times smaller. A
frame where the detector misses (a turned head, motion blur)
reuses the box last found in the same clip, and frames before the first hit take the first hit's
box, so a brief miss does not drop the frame; a clip with no hit at all has no face.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from er_core import ErError

Box = tuple[int, int, int, int]  # x, y, w, h in full-frame pixels
WINDOW = 24  # the side of the frontal-face cascades' detection window, pixels


_local = threading.local()


def _cascade(path: str):
    """This thread's classifier for `path`: OpenCV's CascadeClassifier is not safe to share
    between threads (two concurrent detectMultiScale calls on one object corrupt each other's
    results), so each thread loads its own, once."""
    loaded = _local.__dict__.setdefault("cascades", {})
    if path not in loaded:
        loaded[path] = _load_cascade(path)
    return loaded[path]


def _load_cascade(path: str):
    import cv2

    clf = cv2.CascadeClassifier(path)
    if clf.empty():
        raise ErError(
            "cannot load the Haar cascade",
            at=path,
            hint="name a file in cv2.data.haarcascades (opencv-python-headless >=4.9,<5 ships "
            "them) or give a path to a cascade XML",
        )
    return clf


def cascade_path(name: str) -> str:
    """A cascade file: a path as given, else a name inside OpenCV's own cascade folder."""
    if Path(name).expanduser().is_file():
        return str(Path(name).expanduser().resolve())
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if folder is None or not (Path(folder) / name).is_file():
        raise ErError(
            f"Haar cascade '{name}' not found",
            at="video.cascade",
            hint="opencv-python-headless 5.x ships no cascades: pin >=4.9,<5, or give a path; "
            "names look like haarcascade_frontalface_default.xml",
        )
    return str(Path(folder) / name)


@dataclass(frozen=True)
class FaceDetector:
    """Largest-face Haar detection; `detect_width` > 0 detects on a frame shrunk to that width
    (much faster on HD video; boxes are scaled back to full-frame pixels)."""

    cascade: str = "haarcascade_frontalface_default.xml"
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face: int = 30  # smallest face side, full-frame pixels
    detect_width: int = 0  # 0 = full size
    follow: bool = True  # `near` boxes are looked around first (False: every frame afresh)

    def detect(self, grey: np.ndarray, near: Box | None = None) -> Box | None:
        """The largest face in one (H, W) uint8 frame, or None.

        The frame is shrunk once to `detect_width`. `near`, a box found in an earlier frame of
        the same clip: the face is looked for first around it only (a square three times its
        side, centred on it), at about its size (0.7 to 1.4 times its side), on that square
        shrunk further so the smallest size searched just fills the cascade's 24 px window: a
        search of a few thousand pixels. Only when none is there is the whole frame searched
        (`_whole`). So a clip costs about one whole search, and its face is followed, not
        swapped for a bigger one that walks in."""
        h, w = grey.shape
        scale = self.detect_width / w if 0 < self.detect_width < w else 1.0
        small = _shrink(grey, scale)
        if near is not None and self.follow:
            x, y, bw, bh = near
            side = max(bw, bh) * scale  # in `small`'s pixels from here on
            cx, cy = (x + bw / 2) * scale, (y + bh / 2) * scale
            x0, y0 = max(0, round(cx - 1.5 * side)), max(0, round(cy - 1.5 * side))
            x1 = min(small.shape[1], round(cx + 1.5 * side))
            y1 = min(small.shape[0], round(cy + 1.5 * side))
            r = min(1.0, WINDOW / (0.7 * side))
            box = self._find(_shrink(small[y0:y1, x0:x1], r), 0.7 * side * r, 1.4 * side * r)
            if box is not None:
                return _to_full(box, r, (x0, y0), scale, (w, h))
        box, r = self._whole(small, self.min_face * scale)
        return None if box is None else _to_full(box, r, (0, 0), scale, (w, h))

    def _whole(self, small: np.ndarray, smallest: float) -> tuple[Box | None, float]:
        """(the largest face of `smallest`+ pixels in all of `small`, the shrink r it was
        found at). Octave by octave, coarsest first: `small` halved until a window barely
        fits; each octave searches the sizes it adds (one to two windows, and a third more so
        a face at the border keeps its neighbours), the coarsest everything above. Larger
        faces live in coarser octaves, so the first octave with a hit holds the largest, and
        a frame with a big face costs a search of a few thousand pixels."""
        levels = [small]
        while min(levels[-1].shape) >= 2 * WINDOW:
            levels.append(_shrink(levels[-1], 0.5))
        for k in range(len(levels) - 1, -1, -1):
            r = levels[k].shape[1] / small.shape[1]
            top = None if k == len(levels) - 1 else 2.6 * WINDOW
            box = self._find(levels[k], max(WINDOW, smallest * r), top)
            if box is not None:
                return box, r
        return None, 1.0

    def _find(self, img: np.ndarray, smallest: float, largest: float | None) -> Box | None:
        """The largest face of `smallest`..`largest` pixels in `img`, in its own pixels."""
        clf = _cascade(cascade_path(self.cascade))
        side = max(1, round(smallest))
        most = (round(largest),) * 2 if largest is not None else ()
        if most and (most[0] < side or min(img.shape) < WINDOW):  # no window fits
            return None
        found = clf.detectMultiScale(
            img,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
            **({"maxSize": most} if most else {}),
        )
        if len(found) == 0:
            return None
        # largest area; ties keep the detector's own (deterministic) order
        return max((tuple(int(v) for v in b) for b in found), key=lambda b: b[2] * b[3])


def _shrink(img: np.ndarray, r: float) -> np.ndarray:
    """`img` resized by r < 1 (INTER_AREA: no aliasing); itself when r is 1."""
    if r == 1.0:
        return img
    import cv2

    h, w = img.shape
    size = (max(1, round(w * r)), max(1, round(h * r)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _to_full(box: Box, r: float, at: tuple[int, int], scale: float, frame: tuple[int, int]) -> Box:
    """A box found in a part of the shrunk frame (its corner at `at`, shrunk again by r) in
    full-frame pixels, clipped to the frame (w, h)."""
    bx, by, bw, bh = box
    if r == 1.0 and scale == 1.0:
        return bx + at[0], by + at[1], bw, bh
    k = 1.0 / scale
    x0, y0 = round((at[0] + bx / r) * k), round((at[1] + by / r) * k)
    x1 = min(frame[0], round((at[0] + (bx + bw) / r) * k))
    y1 = min(frame[1], round((at[1] + (by + bh) / r) * k))
    return x0, y0, x1 - x0, y1 - y0


def fill_boxes(boxes: Sequence[Box | None]) -> list[Box | None]:
    """Each miss takes the last box found before it; misses before the first hit take the
    first hit. All None stays all None (no face in the clip)."""
    first = next((b for b in boxes if b is not None), None)
    out, last = [], first
    for b in boxes:
        last = b if b is not None else last
        out.append(last)
    return out


def crop(grey: np.ndarray, box: Box, size: int, margin: float = 0.0) -> np.ndarray:
    """(size, size) uint8: the box grown by `margin` x its side on every side, clipped to the
    frame, resized (INTER_AREA when shrinking: no aliasing; linear when growing)."""
    import cv2

    x, y, w, h = box
    H, W = grey.shape
    dx, dy = round(margin * w), round(margin * h)
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(W, x + w + dx), min(H, y + h + dy)
    face = grey[y0:y1, x0:x1]
    shrink = face.shape[0] >= size and face.shape[1] >= size
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(face, (size, size), interpolation=interp)


def to_grey(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def face_crops(
    frames: Sequence[np.ndarray], detector: FaceDetector, size: int, margin: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(crops (F, size, size) uint8, found (F,) bool) for one clip's frames (BGR or grey).

    found[i] is the detector's own hit on frame i; crops cover every frame when any frame had a
    face (misses reuse a box, see `fill_boxes`), and are (0, size, size) when none had.
    """
    greys = [to_grey(f) for f in frames]
    boxes: list[Box | None] = []
    last = None
    for g in greys:  # each frame looks near the face of the frame before (FaceDetector.detect)
        boxes.append(detector.detect(g, last))
        last = boxes[-1] or last
    found = np.array([b is not None for b in boxes], dtype=bool)
    filled = fill_boxes(boxes)
    if not found.any():
        return np.zeros((0, size, size), np.uint8), found
    crops = np.stack([crop(g, b, size, margin) for g, b in zip(greys, filled, strict=True)])
    return crops, found
