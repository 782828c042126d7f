"""`er-data validate`: every media file decodes fully, or the bad ones are named."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest
from er_core import DatasetManifest, ErError, FileRef, TaskInfo, sha256_file
from er_core.stream import encode
from er_data import media
from er_data.preparation import prepare
from er_data.synthetic import synth
from er_data.table import finish
from er_data.validation import validate

av = pytest.importorskip("av")


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, DatasetManifest]:
    """A fresh 40-utterance synthetic MELD and its manifest (tests below damage the media)."""
    root = synth(tmp_path / "meld", utterances=40, seed=2)
    return root, prepare("meld", root, out=tmp_path / "out")


def stream_of(manifest: DatasetManifest) -> bytes:
    return encode(manifest) + b"\n"


def halve(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_sound_media_pass(dataset) -> None:
    _, manifest = dataset
    assert validate(manifest) == []


def test_cli_passes_the_stream_through(cli, dataset, tmp_path: Path) -> None:
    root, _ = dataset
    prepared = cli("prepare", "meld", "--root", str(root), "--out", str(tmp_path / "o"))
    assert prepared.returncode == 0, prepared.stderr.decode()
    checked = cli("validate", input=prepared.stdout)
    assert checked.returncode == 0, checked.stderr.decode()
    assert checked.stdout == prepared.stdout


def test_deleted_clip_is_named(cli, dataset, tmp_path: Path) -> None:
    root, manifest = dataset
    clip = next(iter(sorted((root / "train_splits").glob("*.mp4"))))
    clip.unlink()
    rel = f"train_splits/{clip.name}"
    # the manifest written before the deletion: validate looks at the files as they are now
    r = cli("validate", input=stream_of(manifest))
    assert r.returncode == 1
    assert rel in r.stderr.decode() and "missing" in r.stderr.decode()
    r = cli("validate", "--allow-missing", input=stream_of(manifest))
    assert r.returncode == 0, r.stderr.decode()
    assert rel in r.stderr.decode()
    assert r.stdout == stream_of(manifest)
    # a new prepare sees a different media listing, so a new manifest, which fails the same way
    fresh = prepare("meld", root, out=tmp_path / "out")
    assert fresh.id != manifest.id
    assert [i.path for i in validate(fresh)] == [rel]


def test_truncated_clip_is_named(cli, dataset) -> None:
    root, manifest = dataset
    clip = sorted((root / "output_repeated_splits_test").glob("*.mp4"))[-1]
    halve(clip)
    r = cli("validate", input=stream_of(manifest))
    assert r.returncode == 1
    assert f"output_repeated_splits_test/{clip.name}" in r.stderr.decode()


def test_truncated_wav_is_named(cli, dataset) -> None:
    root, manifest = dataset
    wav = sorted((root / "train_splits").glob("*.wav"))[1]
    halve(wav)  # PyAV decodes what is left without complaint; the RIFF header knows better
    r = cli("validate", input=stream_of(manifest))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert f"train_splits/{wav.name}" in err and "truncated" in err
    issues = validate(manifest)
    assert [(i.path, i.utterance) for i in issues] == [
        (f"train_splits/{wav.name}", f"train/{wav.stem}")
    ]


def test_cut_video_with_index_up_front(dataset, tmp_path: Path) -> None:
    """An mp4 whose index (moov) comes first still opens when cut: only a full decode sees it."""
    root, _ = dataset
    src = next(iter(sorted((root / "train_splits").glob("*.mp4"))))
    fast = tmp_path / "fast.mp4"
    with av.open(str(src)) as i, av.open(str(fast), "w", options={"movflags": "faststart"}) as o:
        out = o.add_stream_from_template(i.streams.video[0])
        for packet in i.demux(i.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                o.mux(packet)
    assert media.decode(fast, "video").problem is None
    halve(fast)
    assert media.probe(fast, "video") is None  # the header still opens
    assert "truncated" in (media.decode(fast, "video").problem or "")


def test_shared_file_is_decoded_once_and_segments_checked(
    dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IEMOCAP-style rows cut segments out of one file: decode it once, flag the row that asks
    for more than the file holds."""
    root, _ = dataset
    wav = "train_splits/dia0_utt0.wav"
    info = TaskInfo(type="classification", column="emotion", classes=["neutral"])
    table = finish(
        pl.DataFrame(
            {
                "id": ["a", "b", "c"],
                "dialogue": ["d", "d", "d"],
                "turn": [0, 1, 2],
                "text": ["x", "y", "z"],
                "split": ["train"] * 3,
                "emotion": [0, 0, 0],
                "emotion_name": ["neutral"] * 3,
                "audio": [wav, wav, wav],
                "audio_start": [0.0, 0.5, 3.0],
                "audio_end": [0.5, 1.0, 4.0],  # the WAV lasts 1 s: "c" is beyond it
                "source": ["t:row 1", "t:row 2", "t:row 3"],
            }
        ),
        {"emotion": info},
    )
    table.write_parquet(tmp_path / "t.parquet")
    manifest = DatasetManifest(
        dataset="x",
        task="emotion",
        tasks={"emotion": info},
        table=FileRef(path=str(tmp_path / "t.parquet"), sha256=sha256_file(tmp_path / "t.parquet")),
        source_root=str(root),
    )
    calls = []
    real = media.decode
    monkeypatch.setattr(media, "decode", lambda p, k: calls.append(p) or real(p, k))
    issues = validate(manifest)
    assert len(calls) == 1
    assert [i.utterance for i in issues] == ["c"]
    assert "beyond" in issues[0].problem or "reaches" in issues[0].problem


def test_without_pyav_says_what_to_install(dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    _, manifest = dataset
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` fails as if not installed
    with pytest.raises(ErError) as e:
        validate(manifest)
    assert e.value.what.startswith("validating media needs av")
    assert e.value.hint == "pip install 'er-data[media]'"
