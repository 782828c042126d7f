"""Property-based fuzz of the parsers every tool shares: NDJSON message streams and `--set`.

Whatever bytes arrive, a tool ends in one of two ways: exit 0 with a valid result, or exit 1/2
with one `error:` line and one `hint:` line, no traceback and nothing written.
"""

from __future__ import annotations

import json
import os

from er_testing.cli import run_inprocess
from er_testing.errors import assert_clean_outcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(
    max_examples=int(os.environ.get("ER_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # the same cases on every run (CI is repeatable); ER_FUZZ_EXAMPLES=5000 explores fresh ones
    derandomize="ER_FUZZ_EXAMPLES" not in os.environ,
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KINDS = ["dataset", "features", "run", "eval", "prediction", "", "x"]


@st.composite
def messages(draw) -> bytes:
    """Lines that look like er messages: a real kind, fields of any type, some broken lines."""
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            lines.append(draw(st.binary(max_size=60)))
        else:
            obj = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
            obj["kind"] = draw(st.sampled_from(KINDS))
            if choice == 2:
                obj |= {"dataset": "d", "task": "t", "table": draw(json_values)}
            lines.append(json.dumps(obj, allow_nan=True).encode())
    return b"\n".join(lines)


def _data_app():
    from er_data.cli import app

    return app


@SETTINGS
@given(stdin=messages())
def test_er_data_stats_on_any_stream(stdin):
    r = run_inprocess(_data_app(), "er-data", ["stats"], stdin)
    assert_clean_outcome(r)


@SETTINGS
@given(stdin=st.binary(max_size=200))
def test_read_stream_on_any_bytes(stdin):
    r = run_inprocess(_data_app(), "er-data", ["stats"], stdin)
    assert_clean_outcome(r)


set_keys = st.sampled_from(
    [
        "p_text",
        "noise",
        "fps",
        "size",
        "seconds",
        "dialogue_len",
        "split",
        "x",
        "p_text.y",
        "",
        "a..b",
    ]
)
set_values = st.text(max_size=30) | st.sampled_from(
    [
        "1.5",
        "-1",
        "nan",
        "inf",
        "-inf",
        "1e400",
        "0",
        "[1, 2]",
        '"x"',
        "{a = 1}",
        "1\nx = 2",
        "true",
    ]
)


@SETTINGS
@given(key=set_keys, value=set_values)
def test_set_values_on_synth(tmp_path_factory, key, value):
    out = tmp_path_factory.mktemp("synth") / "data"
    r = run_inprocess(
        _data_app(), "er-data", ["synth", "--out", str(out), "-n", "12", "--set", f"{key}={value}"]
    )
    assert_clean_outcome(r)
    if r.code != 0:
        assert not out.exists() or not any(out.iterdir()), "a refused synth left files"


@st.composite
def run_messages(draw) -> bytes:
    """RunManifest-shaped lines with fields of any type, some pointing at files that are not there."""
    obj = {
        "kind": "run",
        "dataset": draw(st.text(max_size=8)),
        "task": draw(st.sampled_from(["emotion", "", "x"])),
        "classes": draw(st.dictionaries(st.text(max_size=6), st.lists(st.text(max_size=4)))),
        "predictions": draw(
            st.dictionaries(
                st.sampled_from(["dev", "test", "x"]),
                st.fixed_dictionaries(
                    {"path": st.text(max_size=20), "sha256": st.text(max_size=8)}
                ),
                max_size=2,
            )
        ),
    }
    extra = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    return json.dumps(obj | extra, allow_nan=True).encode()


def _eval_app():
    from er_eval.cli import app

    return app


@SETTINGS
@given(stdin=run_messages())
def test_er_eval_score_on_any_run_message(stdin):
    r = run_inprocess(_eval_app(), "er-eval", ["score"], stdin)
    assert_clean_outcome(r)
