"""er-core's shared guards: folder locks across processes, path confinement, finite checks,
ranges in the schema and one-line `--set` values."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import numpy as np
import pytest
from er_core import (
    Dropout,
    ErError,
    PositiveFloat,
    PositiveInt,
    UsageError,
    check_options,
    confine,
    folder_lock,
    is_locked,
    load_config,
    parse_override,
    require_finite,
    require_float32_range,
)

HOLDER = textwrap.dedent(
    """
    import sys, time
    from er_core import folder_lock
    with folder_lock(sys.argv[1], what="run folder"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def hold(folder: Path, seconds: float) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline() == "held\n"
    return p


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    p = hold(tmp_path / "run", 60)
    try:
        assert is_locked(tmp_path / "run")
        with pytest.raises(ErError) as e, folder_lock(tmp_path / "run", wait=False):
            pass
        assert (
            e.value.lines()[0]
            == f"error: another process is writing this folder, at {tmp_path / 'run'}"
        )
    finally:
        p.kill()
        p.wait()


def test_a_killed_holder_releases_the_lock(tmp_path):
    p = hold(tmp_path / "run", 60)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not is_locked(tmp_path / "run")
    with folder_lock(tmp_path / "run", wait=False):
        assert (tmp_path / "run" / ".lock").is_file()


def test_a_waiting_writer_proceeds_when_the_holder_ends(tmp_path, capfd):
    p = hold(tmp_path / "run", 1.5)
    began = time.monotonic()
    with folder_lock(tmp_path / "run", what="feature cache"):
        waited = time.monotonic() - began
    assert p.wait(timeout=30) == 0
    assert waited > 0.5  # the holder slept 1.5 s with the lock
    assert "waiting for another process writing the feature cache" in capfd.readouterr().err


def test_the_lock_is_reentrant_in_one_process(tmp_path):
    with folder_lock(tmp_path, wait=False), folder_lock(tmp_path, wait=False):
        pass
    with folder_lock(tmp_path, wait=False):  # fully released after the outer block
        pass


def test_confine_refuses_links_and_climbs_out_of_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "clips").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.wav").write_bytes(b"x")
    (root / "clips" / "ok.wav").write_bytes(b"x")
    (root / "clips" / "link.wav").symlink_to(outside / "secret.wav")
    (root / "away").symlink_to(outside, target_is_directory=True)
    (root / "inner.wav").symlink_to(root / "clips" / "ok.wav")

    assert confine(root, "clips/ok.wav") == root / "clips" / "ok.wav"
    assert confine(root, "inner.wav") == root / "inner.wav"  # a link that stays inside is fine
    for rel in ("clips/link.wav", "away/secret.wav"):
        with pytest.raises(ErError, match="leads out of the dataset root") as e:
            confine(root, rel, at="t.csv:row 2")
        assert e.value.at == "t.csv:row 2" and "--follow-links" in (e.value.hint or "")
        assert confine(root, rel, follow_links=True) == root / rel
    for rel in ("../outside/secret.wav", "/etc/passwd", "../../../../etc/passwd", "a/../../x"):
        with pytest.raises(ErError, match="escapes the dataset root"):
            confine(root, rel, follow_links=True)


def test_require_finite_names_the_first_bad_item():
    arr = np.ones((4, 3), dtype=np.float32)
    require_finite(arr, what="features")
    arr[2, 1] = np.nan
    arr[3, 0] = np.inf
    with pytest.raises(ErError) as e:
        require_finite(arr, what="text features", names=["a", "b", "c", "d"], at="x.safetensors")
    assert e.value.lines()[0] == (
        "error: text features is not finite (NaN or inf) for 'c' (and 1 more), at x.safetensors"
    )


def test_float32_cast_overflow_is_refused():
    big = np.array([[1.0, 1e300]], dtype=np.float64)
    with pytest.raises(ErError, match="not finite") as e:
        require_float32_range(big, what="imported features", names=["u1"])
    assert "float32" in (e.value.hint or "")
    assert require_float32_range(np.ones((2, 2)), what="x").dtype == np.float32


class Opts(msgspec.Struct, frozen=True):
    batch_size: PositiveInt = 8
    lr: PositiveFloat = 1e-3
    dropout: Dropout = 0.1
    turns: Annotated[int, msgspec.Meta(ge=0)] = 0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("batch_size", -1),
        ("batch_size", 0),
        ("lr", float("inf")),
        ("lr", float("nan")),
        ("lr", 0.0),
        ("dropout", 1.0),
        ("dropout", 2.0),
        ("turns", -3),
    ],
)
def test_ranges_refuse_bad_values_as_usage_errors(key, value):
    with pytest.raises(UsageError) as e:
        check_options(Opts, {key: value})
    option = "--" + key.replace("_", "-")
    assert e.value.at == option and option in e.value.what


def test_ranges_in_config_files_name_the_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("lr = inf\n")
    with pytest.raises(ErError) as e:
        load_config(Opts, [cfg])
    assert e.value.lines() == [
        f"error: bad value for 'lr': Expected a finite `float`, at {cfg}:$.lr",
        "hint: choose a value in the allowed range",
    ]
    with pytest.raises(ErError, match="'dropout'"):
        load_config(Opts, [], ["dropout=2.0"])
    assert load_config(Opts, [], ["batch_size=4"]).batch_size == 4


@pytest.mark.parametrize("value", ["1\nturns = 5", "1\r\nx = 2", "0.5\n"])
def test_a_set_value_spanning_lines_is_refused(value):
    with pytest.raises(UsageError, match="spans lines"):
        parse_override(f"dropout={value}")


def test_os_environ_untouched():
    # the guards never change the process environment (threads, locale) behind the user's back
    assert "OMP_NUM_THREADS" not in os.environ or os.environ["OMP_NUM_THREADS"]


class Train(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    decay: Literal["cosine", "linear"] = "cosine"


class Cfg(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    train: Train = Train()


def test_a_bad_choice_lists_the_choices():
    with pytest.raises(ErError) as e:
        load_config(Cfg, [], ["train.decay=cosin"])
    assert e.value.lines()[1] == "hint: choose one of: cosine, linear"
