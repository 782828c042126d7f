"""The error checks every suite leans on must reject what a user must never see: a check that
passes anything would make each test using it pass with it."""

from __future__ import annotations

import pytest
from er_testing.cli import Result
from er_testing.errors import (
    assert_clean_outcome,
    check_error,
    error_lines,
    files_under,
    one_error,
)

GOOD = "error: no such file, at data/x.csv\nhint: check the path\n"


def test_check_error_returns_both_lines_and_finds_fragments():
    assert check_error(GOOD, "no such file", "check the path") == (
        "error: no such file, at data/x.csv",
        "hint: check the path",
    )
    assert check_error(GOOD.encode(), "x.csv")[0].endswith("data/x.csv")


@pytest.mark.parametrize(
    ("stderr", "fragments", "at"),
    [
        ("error: no such file\nhint: check the path\n", (), True),  # no place
        ("error: no such file, at x\n", (), True),  # no hint
        ("error: no such file, at x\nhint: \n", (), True),  # empty hint
        ("error: a, at x\nerror: b, at y\nhint: h\n", (), True),  # two errors
        (GOOD + "Traceback (most recent call last):\n", (), True),
        (GOOD, ("not said",), True),
        ("", (), False),
    ],
)
def test_check_error_rejects(stderr, fragments, at):
    with pytest.raises(AssertionError):
        check_error(stderr, *fragments, at=at)


def test_check_error_without_place_when_told():
    assert check_error("error: bad\nhint: fix it\n", at=False) == ("error: bad", "hint: fix it")


def test_one_error_allows_nothing_else_on_stderr():
    assert one_error(GOOD.encode()) == (
        "error: no such file, at data/x.csv",
        "hint: check the path",
    )
    with pytest.raises(AssertionError):
        one_error(("progress 10/20\n" + GOOD).encode())
    with pytest.raises(AssertionError):
        one_error(b"hint: h\nerror: e\n")
    assert error_lines("progress\n" + GOOD) == GOOD.splitlines()


def test_clean_outcome_accepts_success_or_one_error_only():
    seen = []
    assert_clean_outcome(Result(0, b"{}", ""), seen.append)
    assert seen and seen[0].stdout == b"{}"
    assert_clean_outcome(Result(2, b"", "warning: slow\n" + GOOD))
    for bad in (
        Result(1, b"", GOOD + "a bug in er\n"),
        Result(3, b"", GOOD),
        Result(1, b"", "error: e\n"),
        Result(-9, b"", ""),
    ):
        with pytest.raises(AssertionError):
            assert_clean_outcome(bad)


def test_files_under(tmp_path):
    assert files_under(tmp_path / "absent") == set()
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.txt").write_text("x")
    assert files_under(tmp_path) == {"a", "a/b", "a/b/c.txt"}
