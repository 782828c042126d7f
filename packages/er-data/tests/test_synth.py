"""`er-data synth`: a MELD-layout synthetic dataset that prepares cleanly, is reproducible, and
whose modalities each carry part of the label, so that fusing them beats any one of them."""

from __future__ import annotations

import csv
import re
import wave
from pathlib import Path

import numpy as np
import pytest
from er_core import ErError
from er_data import synth_face
from er_data.adapters.meld import CLIP_DIRS, EMOTIONS, FILES
from er_data.preparation import prepare
from er_data.synthetic import CSV_COLUMNS, synth

cv2 = pytest.importorskip("cv2")
CASCADE = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 utterances, seed 0: shared by the tests that only read it."""
    return synth(tmp_path_factory.mktemp("synth") / "meld", utterances=300, seed=0)


def read_rows(root: Path) -> list[dict]:
    """Every CSV row with its split, id, true label and the media stem."""
    with open(root / "synth_cues.csv", encoding="utf-8", newline="") as f:
        cues = {r["id"]: r for r in csv.DictReader(f)}
    rows = []
    for split, name in FILES.items():
        with open(root / name, encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                stem = f"dia{r['Dialogue_ID']}_utt{r['Utterance_ID']}"
                uid = f"{split}/{stem}"
                rows.append(
                    {
                        **r,
                        "split": split,
                        "id": uid,
                        "dialogue": f"{split}/dia{r['Dialogue_ID']}",
                        "stem": root / CLIP_DIRS[split] / stem,
                        "cues": cues[uid],
                    }
                )
    return rows


def test_prepare_round_trip(data: Path, tmp_path: Path) -> None:
    rows = read_rows(data)
    assert len(rows) == 300
    m = prepare("meld", data, out=tmp_path / "out")
    assert m.splits == {s: sum(r["split"] == s for r in rows) for s in FILES}
    assert all(m.splits[s] > 0 for s in FILES)
    assert all(m.class_counts["train"][e] > 0 for e in EMOTIONS)
    assert m.modalities == ["text", "audio", "video"]
    assert m.media_issues == []
    assert "SYNTHETIC" in (data / "README.txt").read_text()


def test_csvs_look_like_meld(data: Path) -> None:
    with open(data / FILES["train"], encoding="utf-8", newline="") as f:
        assert next(csv.reader(f)) == CSV_COLUMNS
    sentiment = {"neutral": {"neutral"}, "joy": {"positive"}, "surprise": {"positive", "negative"}}
    dialogues: dict[str, set[str]] = {}
    for r in read_rows(data):
        assert r["Sentiment"] in sentiment.get(r["Emotion"], {"negative"})
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3}", r["StartTime"])
        dialogues.setdefault(r["dialogue"], set()).add(r["Speaker"])
    assert all(1 <= len(s) <= 3 for s in dialogues.values())
    assert sum(len(s) >= 2 for s in dialogues.values()) > 0.8 * len(dialogues)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b, c = (
        synth(tmp_path / n, utterances=24, seed=s) for n, s in (("a", 3), ("b", 3), ("c", 4))
    )
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert {p.suffix for p in files} >= {".csv", ".wav", ".mp4", ".txt"}
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / FILES["train"]).read_bytes() != (c / FILES["train"]).read_bytes()
    wav = next(p for p in files if p.suffix == ".wav")
    assert (a / wav).read_bytes() != (c / wav).read_bytes()


def test_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ErError, match="not empty"):
        synth(tmp_path, utterances=10)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_a_failed_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise OSError("disk full")

    monkeypatch.setattr(synth_face, "write_clip", broken)
    with pytest.raises(OSError):
        synth(tmp_path / "out", utterances=20)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary twin


def test_bad_options_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ErError, match="p_audio"):
        synth(tmp_path / "a", utterances=10, overrides=["p_audio=1.5"])
    with pytest.raises(ErError, match="unknown key 'colour'"):
        synth(tmp_path / "b", utterances=10, overrides=["colour=1"])


# --- the signal: crude features, nearest class means, and a fusion of the three -----------------


def audio_features(path: Path) -> np.ndarray:
    """log loudness, median log pitch (autocorrelation), pitch spread, syllable rate, voicing."""
    with wave.open(str(path)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0
    frames = x[: len(x) // 400 * 400].reshape(-1, 400)  # 25 ms
    rms = np.sqrt((frames**2).mean(1))
    voiced = rms > 0.3 * rms.max()
    centred = frames[voiced] - frames[voiced].mean(1, keepdims=True)
    ac = np.fft.irfft(
        np.abs(np.fft.rfft(centred, 1024)) ** 2
    )  # autocorrelation, all frames at once
    pitch = np.log(16000 / (40 + np.argmax(ac[:, 40:228], axis=1)))  # lags for 70-400 Hz
    spectrum = np.abs(np.fft.rfft(rms - rms.mean(), 256))
    rate = np.fft.rfftfreq(256, 0.025)[1 + np.argmax(spectrum[1:])]
    return np.array(
        [np.log(rms[voiced].mean()), np.median(pitch), np.std(pitch), rate, voiced.mean()]
    )


def video_features(path: Path, cascade) -> np.ndarray:
    """Edges of the first frame's face (Haar crop), 16 x 16: the expression without the skin."""
    ok, frame = cv2.VideoCapture(str(path)).read()
    assert ok, path
    g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    faces = cascade.detectMultiScale(g, 1.1, 3, minSize=(24, 24))
    if len(faces):
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        g = g[y : y + h, x : x + w]
    g = cv2.resize(g, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)
    v = np.concatenate(
        [
            np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)).ravel(),
            np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1)).ravel(),
        ]
    )
    return (v - v.mean()) / (v.std() + 1e-6)


def text_features(texts: list[str]) -> np.ndarray:
    words = [re.findall(r"[a-z']+", t.lower()) for t in texts]
    vocab = {w: i for i, w in enumerate(sorted({w for ws in words for w in ws}))}
    m = np.zeros((len(texts), len(vocab)))
    for i, ws in enumerate(words):
        for w in ws:
            m[i, vocab[w]] += 1
    return m


def lda_scores(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> np.ndarray:
    """Class log-likelihoods under shared-covariance Gaussians (shrunk; PCA first if wide)."""
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    if xtr.shape[1] > 30:
        vt = np.linalg.svd(xtr, full_matrices=False)[2][:30]
        xtr, xte = xtr @ vt.T, xte @ vt.T
    means = np.stack([xtr[ytr == c].mean(0) for c in range(7)])
    cov = np.cov((xtr - means[ytr]).T)
    cov = 0.7 * cov + 0.3 * np.eye(len(cov)) * np.trace(cov) / len(cov)
    d = xte[:, None, :] - means[None]
    return -0.5 * np.einsum("nci,ij,ncj->nc", d, np.linalg.inv(cov), d)


def cosine_scores(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> np.ndarray:
    unit = lambda m: m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-9)  # noqa: E731
    return unit(xte) @ unit(np.stack([unit(xtr)[ytr == c].mean(0) for c in range(7)])).T


def test_prosody_follows_the_audio_cue(data: Path) -> None:
    by_cue: dict[str, list[np.ndarray]] = {}
    for r in read_rows(data):
        by_cue.setdefault(r["cues"]["audio_cue"], []).append(
            audio_features(r["stem"].with_suffix(".wav"))
        )
    mean = {k: np.mean(v, axis=0) for k, v in by_cue.items()}
    loud, pitch = 0, 1
    assert mean["anger"][loud] > mean["sadness"][loud] + 1.0  # e-fold louder
    assert mean["surprise"][pitch] > mean["sadness"][pitch] + 0.5  # ~9 semitones higher
    assert mean["fear"][pitch] > mean["neutral"][pitch] + 0.2


def test_the_face_is_found_by_a_haar_cascade(data: Path) -> None:
    cascade = cv2.CascadeClassifier(CASCADE)
    clips = sorted(data.glob("*/*.mp4"))[::6][:50]
    found = 0
    for clip in clips:
        _, frame = cv2.VideoCapture(str(clip)).read()
        found += len(cascade.detectMultiScale(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 1.1, 3)) > 0
    assert found >= 0.8 * len(clips)


def test_each_modality_informs_and_fusion_beats_each(data: Path) -> None:
    """Five-fold by dialogue: every modality alone beats chance (1/7) clearly, and summing the
    three modalities' standardised class scores beats the best single one."""
    rows = read_rows(data)
    y = np.array([EMOTIONS.index(r["Emotion"]) for r in rows])
    cascade = cv2.CascadeClassifier(CASCADE)
    feats = {
        "text": text_features([r["Utterance"] for r in rows]),
        "audio": np.stack([audio_features(r["stem"].with_suffix(".wav")) for r in rows]),
        "video": np.stack([video_features(r["stem"].with_suffix(".mp4"), cascade) for r in rows]),
    }
    dialogues = sorted({r["dialogue"] for r in rows})
    fold = np.array([dialogues.index(r["dialogue"]) % 5 for r in rows])
    scores = {m: np.zeros((len(y), 7)) for m in feats}
    for k in range(5):
        te = fold == k
        for m, x in feats.items():
            score = cosine_scores if m == "text" else lda_scores
            scores[m][te] = score(x[~te], y[~te], x[te])
    acc = {m: float((s.argmax(1) == y).mean()) for m, s in scores.items()}
    z = sum(
        (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-9) for s in scores.values()
    )
    fused = float((z.argmax(1) == y).mean())
    assert min(acc.values()) > 1 / 7 + 0.12, acc
    assert fused > max(acc.values()) + 0.05, (fused, acc)


def test_cli_writes_only_to_stderr(cli, tmp_path: Path) -> None:
    r = cli("synth", "--out", str(tmp_path / "d"), "-n", "60", "--seed", "1")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b""
    assert b"SYNTHETIC" in r.stderr
    assert len(list((tmp_path / "d" / CLIP_DIRS["train"]).glob("*.wav"))) > 30
    r = cli("synth", "--out", str(tmp_path / "d"), "-n", "60")
    assert r.returncode == 1 and b"not empty" in r.stderr and b"hint:" in r.stderr
