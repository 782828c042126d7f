"""Synthetic faces for `er-data synth`: an OpenCV-drawn face whose expression follows a label.

An expression is five numbers (see `EXPRESSIONS`): mouth curve (smile > 0 > frown), mouth
openness, brow tilt (inner ends down = anger's V > 0 > sadness's raised inner ends), brow raise
and eye openness. A clip draws its cue label's expression plus Gaussian noise on each number and
on the pose, skin, lighting and background, so a frame says something about the label but not
everything. The drawing keeps the contrasts a Haar frontal-face cascade keys on (dark eye band
over light cheeks, light nose bridge, dark mouth), so face detectors downstream find the face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# name -> (mouth curve, mouth open, brow tilt, brow raise, eye open), each roughly in [-1, 1]
EXPRESSIONS: dict[str, tuple[float, float, float, float, float]] = {
    "neutral": (0.0, 0.05, 0.0, 0.0, 0.55),
    "joy": (1.0, 0.35, 0.0, 0.15, 0.4),
    "surprise": (0.0, 1.0, -0.2, 1.0, 1.0),
    "anger": (-0.45, 0.15, 1.0, -0.6, 0.5),
    "sadness": (-1.0, 0.0, -1.0, 0.1, 0.3),
    "disgust": (-0.6, 0.4, 0.5, -0.3, 0.25),
    "fear": (-0.3, 0.7, -0.8, 0.8, 0.95),
}
_SKIN = np.array([(205, 220, 245), (160, 190, 225), (120, 155, 200), (85, 115, 160)], float)
_BACKGROUNDS = np.array(
    [(70, 50, 30), (40, 80, 40), (90, 90, 95), (60, 30, 80), (30, 60, 90)], float
)


def _cv2():
    import cv2

    return cv2


def expression(label: str, rng: np.random.Generator, noise: float) -> np.ndarray:
    """The label's expression with Gaussian noise (`noise` = 1: a quarter of the range)."""
    base = np.array(EXPRESSIONS[label])
    return base + rng.normal(0.0, 0.25 * noise, size=base.shape)


def draw_face(size: int, expr: np.ndarray, look: dict, t: float = 0.0) -> np.ndarray:
    """One BGR frame of `size` x `size`: the face of `look` (pose, colours) showing `expr`.

    `t` in [0, 1) animates a clip: the mouth moves as if speaking and the head sways a little.
    """
    cv2 = _cv2()
    curve, mouth_open, tilt, raise_, eye_open = (float(v) for v in expr)
    img = np.empty((size, size, 3), np.uint8)
    img[:] = look["background"]
    s = size * look["scale"]
    cx = size / 2 + look["dx"] + 0.02 * s * np.sin(2 * np.pi * t)
    cy = size / 2 + look["dy"]
    skin = look["skin"]
    shade = tuple(float(c) * 0.6 for c in skin)  # shadows: eye sockets, nose sides
    dark = (25, 25, 35)

    def P(x: float, y: float) -> tuple[int, int]:  # face-relative units -> pixel, 4 bits subpixel
        return (round((cx + x * s) * 16), round((cy + y * s) * 16))

    def ellipse(x: float, y: float, w: float, h: float, color: tuple) -> None:
        axes = (round(w * s * 16), round(h * s * 16))
        cv2.ellipse(img, P(x, y), axes, 0, 0, 360, color, -1, cv2.LINE_AA, 4)

    ellipse(0, -0.08, 0.36, 0.42, look["hair"])  # hair behind the head, darker than skin
    ellipse(0, 0.02, 0.31, 0.40, skin)  # the face
    ellipse(-0.34, 0.02, 0.05, 0.09, skin)  # ears
    ellipse(0.34, 0.02, 0.05, 0.09, skin)
    ellipse(0, -0.3, 0.3, 0.13, look["hair"])  # fringe over the forehead

    eye_y = -0.06
    eh = 0.012 + 0.05 * max(eye_open, 0.05)
    for side in (-1, 1):
        ex = 0.13 * side
        ellipse(ex, eye_y, 0.11, 0.08, shade)  # socket shadow: the dark eye band Haar looks for
        ellipse(
            ex, eye_y, 0.075, eh, (150, 155, 155)
        )  # eye white, dim: a bright one breaks the dark band
        ellipse(ex, eye_y, 0.038, min(eh, 0.038), dark)  # iris and pupil
        # brow: the inner end (near the nose) moves with tilt, both ends with raise
        by = eye_y - 0.1 - 0.05 * raise_
        inner, outer = P(0.04 * side, by + 0.035 * tilt), P(0.2 * side, by - 0.01 * tilt)
        cv2.line(img, inner, outer, look["hair"], max(2, round(0.035 * s)), cv2.LINE_AA, 4)

    # nose: a light bridge between two soft side shadows, dark nostrils below
    cv2.line(img, P(-0.035, 0.0), P(-0.045, 0.12), shade, max(1, round(0.02 * s)), cv2.LINE_AA, 4)
    cv2.line(img, P(0.035, 0.0), P(0.045, 0.12), shade, max(1, round(0.02 * s)), cv2.LINE_AA, 4)
    ellipse(-0.03, 0.135, 0.018, 0.01, dark)
    ellipse(0.03, 0.135, 0.018, 0.01, dark)

    # mouth: corners move up with curve; opening grows with mouth_open and the speaking motion
    speak = 0.5 + 0.5 * np.sin(2 * np.pi * (3 * t + look["phase"]))
    gap = 0.012 + 0.07 * max(mouth_open, 0.0) + 0.015 * speak
    my, half = 0.25, 0.12 + 0.02 * curve
    xs = np.linspace(-half, half, 13)
    bend = -0.06 * curve * (1 - (xs / half) ** 2)  # smile: middle lower than corners
    upper = [P(x, my + b - gap / 2) for x, b in zip(xs, bend, strict=True)]
    lower = [
        P(x, my + b + gap / 2 + 0.3 * gap * (1 - (x / half) ** 2))
        for x, b in zip(xs, bend, strict=True)
    ]
    poly = np.array(upper + lower[::-1], np.int32)
    cv2.fillPoly(img, [poly], (40, 30, 90), cv2.LINE_AA, 4)
    cv2.polylines(img, [poly], True, (60, 50, 120), 1, cv2.LINE_AA, 4)

    # soften the drawn edges as a lens would, light unevenly from one side, add sensor noise
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    ramp = np.linspace(1 - look["light"], 1 + look["light"], size)[None, :, None]
    out = img.astype(np.float32) * ramp + look["grain"]
    return np.clip(out, 0, 255).astype(np.uint8)


def random_look(rng: np.random.Generator, size: int, noise: float) -> dict:
    """Pose, colours and lighting of one clip: variation that carries no label information."""
    k = rng.integers(len(_SKIN))
    return {
        "skin": tuple(float(c) for c in _SKIN[k] + rng.normal(0, 8, 3)),
        "hair": tuple(float(c) for c in rng.uniform(10, 60, 3)),
        "background": tuple(float(c) for c in _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))]),
        "scale": float(rng.uniform(0.72, 0.84)),
        "dx": float(rng.normal(0, 0.03 * size)),
        "dy": float(rng.normal(0, 0.03 * size)),
        "phase": float(rng.uniform()),
        "light": float(rng.uniform(0, 0.15)),
        "grain": rng.normal(0, 3 + 3 * noise, (size, size, 1)).astype(np.float32),
    }


def write_clip(
    path: Path,
    label: str,
    rng: np.random.Generator,
    size: int,
    fps: int,
    seconds: float,
    noise: float,
) -> None:
    """Write an mp4 ('mp4v') clip of a face showing `label`'s expression with noise."""
    cv2 = _cv2()
    expr = expression(label, rng, noise)
    look = random_look(rng, size, noise)
    n = max(1, round(fps * seconds))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    if not writer.isOpened():
        from er_core import ErError

        raise ErError("OpenCV cannot write mp4 video", at=str(path), hint="install er-data[media]")
    try:
        for i in range(n):
            writer.write(draw_face(size, expr, look, i / n))
    finally:
        writer.release()
