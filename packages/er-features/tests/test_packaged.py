"""packaged.py without real weights: missing packages are clear errors, `available` is cheap."""

from __future__ import annotations

import pytest
from er_core import ErError
from er_features import packaged


def test_dist_files_and_available(monkeypatch):
    assert packaged.dist_files("no-such-distribution-er") is None
    assert packaged.dist_files("numpy") is not None
    assert (packaged.dist_files("numpy") / "numpy" / "__init__.py").is_file()
    assert packaged.available("no-such-alias") is False
    monkeypatch.setitem(packaged.OFFLINE, "whisper-base", ("numpy", "no-such-distribution-er"))
    assert packaged.available("whisper-base") is False


@pytest.mark.parametrize("alias", ["minilm", "mpnet-base", "whisper-tiny.en", "whisper-base"])
def test_missing_package_names_it(alias, monkeypatch, tmp_path):
    monkeypatch.setitem(packaged.OFFLINE, alias, ("no-such-distribution-er",))
    with pytest.raises(ErError, match="no-such-distribution-er") as err:
        packaged.resolve(alias, tmp_path)
    assert f"er-features weights install {alias}" in err.value.hint
    assert not (tmp_path / "weights").exists()


def test_unknown_alias():
    with pytest.raises(ErError, match="no offline weights"):
        packaged.resolve("bert-large", None)
