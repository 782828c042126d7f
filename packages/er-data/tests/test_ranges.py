"""Every er-data config field and numeric CLI option has its range (issue 12, class 8): a value
out of it is an error with a hint before any work, never a crash or a silent odd dataset."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from er_core import ErError, UsageError, validate
from er_data.adapters.iemocap import Options as IemocapOptions
from er_data.adapters.table_mapping import Options as MappingOptions
from er_data.synthetic import SynthOptions, synth

BAD_SYNTH = [
    "p_text=1.5",
    "p_audio=-0.1",
    "p_video=nan",
    "persistence=2",
    "noise=-1",
    "noise=inf",
    "fps=0",
    "size=10",
    "seconds=0.05",
    "seconds=inf",
    "dialogue_len=[0,3]",
    "dialogue_len=[5,3]",
    "split=[-1,0.5,0.5]",
    "split=[0,0,0]",
]


def one_error(e: ErError, *needles: str) -> None:
    lines = e.lines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    assert "bug in er" not in lines[1]
    for n in needles:
        assert n in lines[0], lines


@pytest.mark.parametrize("setting", BAD_SYNTH)
def test_every_synth_field_is_ranged(tmp_path: Path, setting: str) -> None:
    with pytest.raises(UsageError) as e:
        synth(tmp_path / "d", utterances=10, overrides=[setting])
    one_error(e.value, setting.split("=")[0])
    assert not (tmp_path / "d").exists()


def test_every_synth_field_has_a_range_or_a_check() -> None:
    """A new field must be added to BAD_SYNTH (so it has a range that a test exercises)."""
    fields = {f.name for f in msgspec.structs.fields(SynthOptions)}
    assert fields == {s.split("=")[0] for s in BAD_SYNTH}


def test_synth_cli_usage_errors(tmp_path: Path, cli) -> None:
    for args, needle in [
        (["--set", "p_text=1.5"], "p_text"),
        (["-n", "0"], "--utterances"),
        (["-n", "-5"], "--utterances"),
        (["--seed", "-1"], "--seed"),
    ]:
        r = cli("synth", "--out", str(tmp_path / "d"), *args)
        lines = r.stderr.decode().splitlines()
        assert r.returncode == 2 and r.stdout == b"", (args, lines)
        assert len(lines) == 2 and needle in lines[0] and lines[1].startswith("hint: "), lines
        assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"test_session": 0}, "test_session"),
        ({"test_session": 6}, "test_session"),
        ({"dev_fraction": 1.0}, "dev_fraction"),
        ({"dev_fraction": -0.1}, "dev_fraction"),
        ({"seed": -1}, "seed"),
    ],
)
def test_iemocap_options(data: dict, key: str) -> None:
    with pytest.raises(ErError) as e:
        validate(data, IemocapOptions)
    one_error(e.value, f"'{key}'")


MAPPING = {
    "dataset": "x",
    "file": "a.csv",
    "columns": {"id": "i", "dialogue": "d", "text": "t"},
    "tasks": {"emotion": {"column": "e", "classes": ["a"]}},
}


@pytest.mark.parametrize(
    ("split", "key"),
    [({"dev": 1.0}, "split.dev"), ({"test": -0.5}, "split.test"), ({"seed": -3}, "split.seed")],
)
def test_mapping_split_options(split: dict, key: str) -> None:
    assert validate({**MAPPING, "split": {}}, MappingOptions).split is not None
    with pytest.raises(ErError) as e:
        validate({**MAPPING, "split": split}, MappingOptions)
    one_error(e.value, f"'{key}'")


@pytest.mark.parametrize(
    ("value", "needle"),
    [('["utf-99"]', "unknown encoding 'utf-99'"), ("[]", "no encoding to try")],
)
def test_a_bad_encodings_value_names_the_key(tmp_path: Path, cli, value: str, needle: str) -> None:
    synth(tmp_path / "data", utterances=12, seed=0)
    r = cli("prepare", "meld", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "o"),
            "--set", f"encodings={value}")  # fmt: skip
    lines = r.stderr.decode().splitlines()
    assert r.returncode == 1 and r.stdout == b"", lines
    assert (
        lines[0].startswith(f"error: {needle}, at --set encodings=") and "$.encodings" in lines[0]
    )
    assert lines[1].startswith("hint: name Python codecs")
    assert not (tmp_path / "o").exists()
