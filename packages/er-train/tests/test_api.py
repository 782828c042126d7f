"""`er_train.train` from Python makes the run the command line makes; `load_run` gives it back."""

from __future__ import annotations

from pathlib import Path

import pytest
from er_core import ErError, read_messages, sha256_file


def test_python_train_is_the_cli_run_and_loads_back(tmp_path, toy, fast_config, train_run):
    import er_train

    m = er_train.train(toy.stream, fast_config, seed=0, runs=tmp_path / "a", quiet=True)
    here = train_run(toy.stream, tmp_path / "b")  # the steps of the command line, in-process
    assert m.id == here.id and m.weights.sha256 == here.weights.sha256
    assert (m.dev, m.test, m.best_epoch) == (here.dev, here.test, here.best_epoch)
    # the messages instead of the file: the same run, found finished (nothing retrained)
    run_json = Path(m.run_dir) / "run.json"
    stamp = (sha256_file(run_json), run_json.stat().st_mtime_ns)
    again = er_train.train(
        read_messages(toy.stream), [fast_config], runs=tmp_path / "a", quiet=True
    )
    assert again.id == m.id
    assert (sha256_file(run_json), run_json.stat().st_mtime_ns) == stamp

    loaded = er_train.load_run(m.run_dir)
    assert loaded.classes == m.classes and loaded.manifest.id == m.id
    assert not loaded.model.training


def test_python_train_names_a_bad_argument(tmp_path, toy, fast_config):
    import er_train

    with pytest.raises(ErError, match="cannot read messages from a value of type int"):
        er_train.train(3, fast_config, runs=tmp_path)
    with pytest.raises(ErError) as e:
        er_train.train(toy.stream, fast_config, seed=-1, runs=tmp_path)
    assert e.value.at == "seed:$.seed"  # the argument as a Python caller named it, and the key
    with pytest.raises(ErError, match="epochs"):
        er_train.train(toy.stream, fast_config, "train.epochs=0", runs=tmp_path)
