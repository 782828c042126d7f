"""Find the speaker's face in each sampled frame and cut it out for the expression CNN.

A Haar frontal-face cascade (shipped with opencv-python-headless 4.x) is fast on a CPU and needs
no extra weights. In a clip's first frame with a face it keeps the LARGEST face (in a
conversation clip the speaker is usually the closest person); each later frame looks for the
face near the box before it first (see FaceDetector.detect), a search many times smaller. A frame where the detector misses (a turned head, motion blur)
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

        `near`, a box found in an earlier frame of the same clip: the face is looked for first
        around it only (a square three times its side, centred on it) and at about its size
        (0.7 to 1.4 times its side), a small search; only when none is there is the whole frame
        searched. So a clip costs about one full search, and its face is followed, not swapped
        for a bigger one that walks in."""
        h, w = grey.shape
        scale = self.detect_width / w if 0 < self.detect_width < w else 1.0
        if near is not None and self.follow:
            x, y, bw, bh = near
            side = max(bw, bh)
            cx, cy = x + bw / 2, y + bh / 2
            x0, y0 = max(0, round(cx - 1.5 * side)), max(0, round(cy - 1.5 * side))
            x1, y1 = min(w, round(cx + 1.5 * side)), min(h, round(cy + 1.5 * side))
            box = self._search(grey[y0:y1, x0:x1], scale, 0.7 * side, 1.4 * side)
            if box is not None:
                return box[0] + x0, box[1] + y0, box[2], box[3]
        return self._search(grey, scale, self.min_face, None)

    def _search(
        self, grey: np.ndarray, scale: float, smallest: float, largest: float | None
    ) -> Box | None:
        """The largest face of `smallest`..`largest` full-frame pixels in `grey`, searched on a
        copy shrunk by `scale`; in `grey`'s own pixels."""
        import cv2

        clf = _cascade(cascade_path(self.cascade))
        h, w = grey.shape
        small = grey
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        side = max(1, round(smallest * scale))
        most = (round(largest * scale),) * 2 if largest is not None else ()
        if most and (most[0] < side or min(small.shape) < 24):  # no window fits
            return None
        found = clf.detectMultiScale(
            small,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
            **({"maxSize": most} if most else {}),
        )
        if len(found) == 0:
            return None
        # largest area; ties keep the detector's own (deterministic) order
        x, y, bw, bh = max((tuple(int(v) for v in b) for b in found), key=lambda b: b[2] * b[3])
        if scale == 1.0:
            return x, y, bw, bh
        inv = 1.0 / scale
        x0, y0 = round(x * inv), round(y * inv)
        x1, y1 = min(w, round((x + bw) * inv)), min(h, round((y + bh) * inv))
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
