"""ErError's two lines, and what er-core pulls in when imported."""

from __future__ import annotations

import subprocess
import sys

from er_core import ErError, UsageError


def test_lines():
    e = ErError("unknown label 'x'", at="train.csv:row 3", hint="use a known label")
    assert e.lines() == ["error: unknown label 'x', at train.csv:row 3", "hint: use a known label"]
    assert str(e) == "\n".join(e.lines())
    assert e.exit_code == 1
    assert ErError("no place").lines() == ["error: no place"]
    assert UsageError("bad flag").exit_code == 2
    assert isinstance(UsageError("x"), ErError)


def test_lines_stay_one_line_each():
    # a message quoting a multi-line library error must not break the two-line protocol
    e = ErError("cannot parse\n  column 3\n", at="a.csv\nrow 2", hint="fix\nit")
    assert e.lines() == ["error: cannot parse column 3, at a.csv row 2", "hint: fix it"]


def test_import_pulls_in_no_torch_or_polars():
    code = (
        "import sys, er_core, er_core.metrics, er_core.cli\n"
        "bad = [m for m in ('torch', 'polars', 'pandas') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
