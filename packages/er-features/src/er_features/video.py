"""Video encoder: a few sampled frames -> the largest face -> an expression CNN -> one vector.

Per clip: `frames` frames are sampled by seeking (video_io), the speaker's face is found and cut
out in each (faces), and the CNN's penultimate layer is pooled over the clip's face frames
(frames where the detector missed reuse a box found in the same clip, so they count as face
frames). Extras: the pooled class logits and `face_ratio`, the share of sampled frames where
the detector itself found a face (a cheap quality signal for the fusion model).

Output is deterministic and batch-independent: crops run through the CNN in chunks padded to a
fixed size, so a clip's vector never depends on which other clips share its batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
from er_core import (
    Config,
    ErError,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    to_dict,
)

from er_features.base import FLAG_BAD_MEDIA, FLAG_EMPTY, FLAG_NO_FACE, Encoded, Item, empty_encoded

# bump when a change here changes the vectors: it is part of the cache key. 2: faces followed
# from frame to frame (faces.py); 3: grey from the luma plane (video_io), the followed face
# searched at the cascade's window size (faces.py), no deblocking by default (video_io), the
# CNN in channels-last layout
VERSION = 3


class VideoConfig(Config, frozen=True, kw_only=True):
    frames: PositiveInt = 8  # frames per clip (at most; "rate" may take fewer)
    sampling: Literal["even", "rate"] = "even"  # even: `frames` evenly; rate: `rate` per second
    rate: PositiveFloat = 2.0  # frames per second for sampling = "rate", capped at `frames`
    cascade: str = "haarcascade_frontalface_default.xml"  # in cv2.data.haarcascades, or a path
    scale_factor: Annotated[float, msgspec.Meta(gt=1.0, le=100.0)] = 1.1  # Haar pyramid step
    min_neighbors: NonNegativeInt = 5  # Haar hits needed to accept a face
    min_face: PositiveInt = 30  # smallest face side, pixels of the full frame
    detect_width: NonNegativeInt = 320  # detect on frames shrunk to this width (0 = full size)
    margin: Probability = 0.0  # grow the face box by this share of its side on each side
    follow: bool = True  # later frames look near the last face first (false: largest, afresh)
    deblock: bool = False  # run the decoder's deblocking filter (off: ~25% less decoding)
    pooling: Literal["mean", "max", "mean+max"] = "mean"  # over face frames; mean+max doubles dim


def _check(cfg: VideoConfig) -> None:
    bad = [
        ("frames", cfg.frames >= 1, ">= 1"),
        ("rate", cfg.rate > 0, "> 0"),
        ("scale_factor", cfg.scale_factor > 1, "> 1"),
        ("min_neighbors", cfg.min_neighbors >= 0, ">= 0"),
        ("min_face", cfg.min_face >= 1, ">= 1"),
        ("detect_width", cfg.detect_width >= 0, ">= 0 (0 = full size)"),
        ("margin", 0 <= cfg.margin <= 1, "in [0, 1]"),
    ]
    for name, ok, want in bad:
        if not ok:
            raise ErError(
                f"video.{name} = {getattr(cfg, name)} is out of range",
                at=f"video.{name}",
                hint=f"use a value {want}",
            )


CROPS_PER_CALL = 64


class VideoEncoder:
    """base.Encoder for video clips (Item.path, .start, .end, in seconds).

    Every CNN call takes exactly CROPS_PER_CALL face crops (zero-padded), since CPU kernels round
    differently for other batch shapes (measured: up to 1e-5 on PyEmotion). It is a constant, not
    `batch_size`, so a clip's vector never depends on a run option the cache key does not hold;
    `batch_size` is accepted for the common encoder interface and has no effect here.
    """

    modality = "video"

    def __init__(
        self,
        folder: Path,
        cfg: VideoConfig,
        device: str = "cpu",
        batch_size: int = 64,
        workers: int = 0,
        skip: bool = True,
    ) -> None:
        """`workers` clips are decoded and searched for faces at once (threads: FFmpeg and
        OpenCV release the GIL), 0 = torch's thread count; `skip` False decodes every frame on
        the way to a sampled one (video_io: the same frames, slower). Neither changes a vector."""
        import torch

        from er_features.face_cnn import load_face_cnn
        from er_features.faces import FaceDetector, cascade_path

        _check(cfg)
        cascade_path(cfg.cascade)  # a missing cascade is a config error now, not per clip
        self.cfg, self.device, self.batch_size = cfg, device, max(1, batch_size)
        # channels-last: the CPU's fast (oneDNN) kernels for the depthwise convolutions, 2-3x
        # the default layout's speed on the expression CNN (measured)
        self.model = load_face_cnn(Path(folder), device).to(memory_format=torch.channels_last)
        self.cnn = self.model.config
        self.size = int(self.cnn["input_size"])
        self.detector = FaceDetector(
            cfg.cascade,
            cfg.scale_factor,
            cfg.min_neighbors,
            cfg.min_face,
            cfg.detect_width,
            cfg.follow,
        )
        width = int(self.model.dim)
        self.dim = 2 * width if cfg.pooling == "mean+max" else width
        self.n_classes = len(self.cnn["classes"])
        self.extras = {"logits": self.n_classes, "face_ratio": 1}
        self.workers = workers or max(1, torch.get_num_threads())
        self.skip = skip
        self._torch = torch

    @property
    def config(self) -> dict[str, Any]:
        """What changes the output (weights are hashed apart): the sampling and detection
        settings and how the CNN reads a face."""
        keys = ("architecture", "input_size", "classes", "normalise", "scores")
        return to_dict(self.cfg) | {"cnn": {k: self.cnn.get(k) for k in keys}}

    def clip_faces(self, item: Item) -> tuple[np.ndarray, np.ndarray]:
        """(crops (F, S, S) uint8, found (F,) bool) of one clip; raises MediaProblem."""
        from er_features.faces import face_crops
        from er_features.video_io import sample_frames

        frames, _ = sample_frames(
            item.path,
            self.cfg.frames,
            self.cfg.sampling,
            self.cfg.rate,
            item.start,
            item.end,
            grey=True,
            skip=self.skip,
            deblock=self.cfg.deblock,
            threads=1,  # one decoding thread per clip: `workers` clips are the parallel work
        )
        return face_crops(frames, self.detector, self.size, self.cfg.margin)

    def _faces_or_problem(self, item: Item):
        """clip_faces, a problem returned rather than raised (for the worker threads)."""
        from er_features.video_io import MediaProblem

        try:
            return self.clip_faces(item)
        except MediaProblem as p:
            return p

    def all_faces(self, items: Sequence[Item]) -> Iterator:
        """clip_faces (or its MediaProblem) of every item, in order, as each is ready,
        `workers` clips at once. OpenCV's own threads are off meanwhile: the clips are the
        parallel work."""
        if self.workers == 1 or len(items) < 2:
            yield from (self._faces_or_problem(it) for it in items)
            return
        from concurrent.futures import ThreadPoolExecutor

        import cv2

        before = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            with ThreadPoolExecutor(min(self.workers, len(items))) as pool:
                yield from pool.map(self._faces_or_problem, items)
        finally:
            cv2.setNumThreads(before)

    def embed(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings (N, E), logits (N, C)) float32 for (N, S, S) uint8 crops."""
        from er_features.face_cnn import normalise

        torch, b = self._torch, CROPS_PER_CALL
        embs, logits = [], []
        with torch.inference_mode():
            for i in range(0, len(crops), b):
                part = crops[i : i + b]
                n = len(part)
                if n < b:  # a fixed shape: the kernels (and their rounding) never change
                    part = np.concatenate([part, np.zeros((b - n, *part.shape[1:]), part.dtype)])
                x = normalise(part, self.cnn).to(self.device)
                e, lg = self.model(x.contiguous(memory_format=torch.channels_last))
                embs.append(e[:n].float().cpu().numpy())
                logits.append(lg[:n].float().cpu().numpy())
        if not embs:
            return np.zeros((0, self.model.dim), np.float32), np.zeros(
                (0, self.n_classes), np.float32
            )
        return np.concatenate(embs), np.concatenate(logits)

    def pool(self, emb: np.ndarray) -> np.ndarray:
        """(F, E) -> (dim,): mean, max, or both concatenated."""
        if self.cfg.pooling == "mean":
            return emb.mean(0)
        if self.cfg.pooling == "max":
            return emb.max(0)
        return np.concatenate([emb.mean(0), emb.max(0)])

    def encode(self, items: Sequence[Item]) -> Encoded:
        torch, threads = self._torch, self._torch.get_num_threads()
        if self.workers > 1:  # the CNN shares the cores with the decoding threads: one thread
            torch.set_num_threads(1)  # for it (its kernels give the same numbers either way)
        try:
            return self._encode(items, threads)
        finally:
            torch.set_num_threads(threads)

    def _encode(self, items: Sequence[Item], threads: int) -> Encoded:
        from er_features.video_io import EmptyClip, MediaProblem

        out = empty_encoded(len(items), self.dim, self.extras)
        clips: list[tuple[int, int]] = []  # (item index, its number of crops)
        cnn = _Chunks(self.embed)
        for i, got in enumerate(self.all_faces(items)):  # the CNN runs while clips decode
            if isinstance(got, EmptyClip):
                out.flags[i] |= FLAG_EMPTY
                continue
            if isinstance(got, MediaProblem):
                out.flags[i] |= FLAG_BAD_MEDIA
                out.problems[i] = str(got)
                continue
            crops, found = got
            out.extras["face_ratio"][i, 0] = found.mean() if len(found) else 0.0
            if len(crops) == 0:
                out.flags[i] |= FLAG_NO_FACE
                continue
            clips.append((i, len(crops)))
            cnn.add(crops)
        self._torch.set_num_threads(threads)  # the decoding is done: the last chunk has the cores
        emb, logits = cnn.finish()
        at = 0
        for i, n in clips:  # split back per clip
            out.features[i] = self.pool(emb[at : at + n])
            out.extras["logits"][i] = logits[at : at + n].mean(0)
            at += n
        return out


class _Chunks:
    """Crops gathered across clips and run through `embed` a full CROPS_PER_CALL chunk at a
    time as they come, the rest at `finish`: the same chunks, so the same numbers, as one call
    on all of them, with the CNN working while the next clips decode."""

    def __init__(self, embed) -> None:
        self.embed, self.waiting, self.done = embed, [], []

    def add(self, crops: np.ndarray) -> None:
        self.waiting.append(crops)
        if sum(len(c) for c in self.waiting) >= CROPS_PER_CALL:
            self._run(whole=False)

    def _run(self, whole: bool) -> None:
        crops = np.concatenate(self.waiting)
        k = len(crops) if whole else len(crops) // CROPS_PER_CALL * CROPS_PER_CALL
        self.done.append(self.embed(crops[:k]))
        self.waiting = [crops[k:]] if k < len(crops) else []

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, logits) of every crop added, in order."""
        if self.waiting:
            self._run(whole=True)
        if not self.done:
            return self.embed(np.zeros((0, 1, 1), np.uint8))
        return np.concatenate([e for e, _ in self.done]), np.concatenate(
            [lg for _, lg in self.done]
        )
