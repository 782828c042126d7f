"""The package's public names resolve, lazily: importing er_features loads no torch."""

from __future__ import annotations

import subprocess
import sys

import er_features


def test_every_public_name_resolves():
    for name in er_features.__all__:
        assert getattr(er_features, name) is not None, name
    assert callable(er_features.extract_features) and callable(er_features.merge_slices)


def test_import_is_light():
    code = "import sys, er_features; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
