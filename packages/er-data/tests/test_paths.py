"""Paths are resolved and confined to the dataset root at every reader (issue 12, class 5).

Real symlinks in tmp_path: a media file, a media folder and a data CSV that lead out of
--root are refused by `prepare` (and `validate`) unless `--follow-links`; a table with a valid
sha256 that names a path out of the root is refused before anything opens it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import msgspec
import polars as pl
import pytest
from er_core import DatasetManifest, ErError, FileRef, sha256_file
from er_core.stream import encode
from er_data import check_table
from er_data.preparation import prepare
from er_data.validation import validate

CSV = """conv,line,utterance,label,fold,wav
c1,0,Hi there.,neutral,train,audio/a.wav
c1,1,Terrible.,sad,train,audio/b.wav
c2,0,Fine.,neutral,dev,audio/a.wav
c3,0,Me too.,sad,test,audio/b.wav
"""
MAPPING = """
dataset = "toy"
file = "utts.csv"
[columns]
id = "{conv}_{line}"
dialogue = "conv"
turn = "line"
text = "utterance"
split = "fold"
audio = "wav"
[tasks.emotion]
column = "label"
classes = ["neutral", "sad"]
"""


@pytest.fixture
def layout(tmp_path: Path, tiny_media) -> tuple[Path, Path, Path]:
    """(root, mapping, outside): a dataset root whose files are all inside, and a folder beside
    it that links can point to (holding the same files)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    for base in (root, outside):
        tiny_media.wav(base / "audio" / "a.wav")
        tiny_media.wav(base / "audio" / "b.wav")
        (base / "utts.csv").write_text(CSV)
    mapping = tmp_path / "map.toml"
    mapping.write_text(MAPPING)
    return root, mapping, outside


def run(root: Path, mapping: Path, out: Path, **kw) -> DatasetManifest:
    return prepare("table", root, configs=[str(mapping)], out=out, **kw)


def refused_link(e: ErError, rel: str) -> None:
    lines = e.lines()
    assert len(lines) == 2, lines
    assert f"'{rel}' is a link that leads out of the dataset root" in lines[0]
    assert "--follow-links" in lines[1]


def no_output(out: Path) -> None:
    assert not list(out.rglob("utterances.parquet"))


def test_inside_links_are_fine(layout, tmp_path: Path) -> None:
    root, mapping, _ = layout
    (root / "audio" / "b.wav").unlink()
    os.symlink("a.wav", root / "audio" / "b.wav")  # relative, stays inside the root
    m = run(root, mapping, tmp_path / "out")
    assert not m.follow_links and m.media_issues == []
    assert validate(m) == []
    # the opt-in is part of the output's id, even where no link leads out
    followed = run(root, mapping, tmp_path / "out", follow_links=True)
    assert followed.follow_links and followed.id != m.id


def test_a_media_file_linking_out(layout, tmp_path: Path) -> None:
    root, mapping, outside = layout
    (root / "audio" / "b.wav").unlink()
    os.symlink(outside / "audio" / "b.wav", root / "audio" / "b.wav")
    with pytest.raises(ErError) as e:
        run(root, mapping, tmp_path / "out")
    refused_link(e.value, "audio/b.wav")
    assert e.value.at == "utts.csv:row 2" and "audio file" in e.value.what
    no_output(tmp_path / "out")
    m = run(root, mapping, tmp_path / "out", follow_links=True)
    assert m.follow_links and validate(m) == []


def test_a_folder_linking_out(layout, tmp_path: Path) -> None:
    root, mapping, outside = layout
    shutil.rmtree(root / "audio")
    os.symlink(outside / "audio", root / "audio")
    with pytest.raises(ErError) as e:
        run(root, mapping, tmp_path / "out")
    refused_link(e.value, "audio/a.wav")
    assert run(root, mapping, tmp_path / "out", follow_links=True).follow_links


def test_a_data_csv_linking_out(layout, tmp_path: Path, cli) -> None:
    root, mapping, outside = layout
    (root / "utts.csv").unlink()
    os.symlink(outside / "utts.csv", root / "utts.csv")
    with pytest.raises(ErError) as e:
        run(root, mapping, tmp_path / "out")
    refused_link(e.value, "utts.csv")
    assert "data file" in e.value.what
    args = [
        "prepare",
        "table",
        "--root",
        str(root),
        "-c",
        str(mapping),
        "--out",
        str(tmp_path / "o"),
    ]
    r = cli(*args)
    lines = r.stderr.decode().splitlines()
    assert r.returncode == 1 and r.stdout == b"" and len(lines) == 2, lines
    assert "leads out of the dataset root" in lines[0]
    r = cli(*args, "--follow-links")
    assert r.returncode == 0, r.stderr.decode()
    assert msgspec.json.decode(r.stdout)["follow_links"] is True


def test_validate_honours_the_manifest(layout, tmp_path: Path, cli) -> None:
    """A link planted after prepare: validate refuses it, unless prepare followed links."""
    root, mapping, outside = layout
    m = run(root, mapping, tmp_path / "out")
    (root / "audio" / "a.wav").unlink()
    os.symlink(outside / "audio" / "a.wav", root / "audio" / "a.wav")
    with pytest.raises(ErError) as e:
        validate(m)
    refused_link(e.value, "audio/a.wav")
    r = cli("validate", input=encode(m) + b"\n")
    assert r.returncode == 1 and len(r.stderr.decode().splitlines()) == 2
    assert validate(msgspec.structs.replace(m, follow_links=True)) == []


def planted(m: DatasetManifest, folder: Path, rel: str) -> DatasetManifest:
    """The manifest's table with every audio path set to `rel`, under a matching sha256."""
    path = folder / "planted.parquet"
    pl.read_parquet(m.table.path).with_columns(pl.lit(rel).alias("audio")).write_parquet(path)
    return msgspec.structs.replace(m, table=FileRef(path=str(path), sha256=sha256_file(path)))


def test_a_table_naming_etc_passwd(layout, tmp_path: Path, cli) -> None:
    root, mapping, _ = layout
    m = planted(run(root, mapping, tmp_path / "out"), tmp_path, "../../../../etc/passwd")
    with pytest.raises(ErError) as e:
        check_table(m)
    assert "'../../../../etc/passwd' escapes the dataset root" in e.value.what
    r = cli("validate", input=encode(m) + b"\n")
    lines = r.stderr.decode().splitlines()
    assert r.returncode == 1 and len(lines) == 2 and "escapes" in lines[0], lines


def test_a_table_naming_a_link_to_etc_passwd(layout, tmp_path: Path) -> None:
    root, mapping, _ = layout
    m = run(root, mapping, tmp_path / "out")
    os.symlink("/etc/passwd", root / "audio" / "p.wav")
    with pytest.raises(ErError) as e:
        validate(planted(m, tmp_path, "audio/p.wav"))
    refused_link(e.value, "audio/p.wav")
