"""NDJSON streams: read from files and stdin, pass unknown kinds through, name bad lines."""

from __future__ import annotations

import io

import msgspec
import pytest
from er_core import (
    DatasetManifest,
    ErError,
    FileRef,
    UsageError,
    find,
    read_messages,
    read_stream,
    to_envelopes,
    write_stream,
)
from er_core.stream import encode


def manifest(task: str = "emotion") -> DatasetManifest:
    return DatasetManifest(
        id="c" * 64,
        tool="er-data 0.1.0",
        dataset="meld",
        task=task,
        classes=["neutral", "joy"],
        splits={"train": 3, "dev": 1, "test": 1},
        table=FileRef(path="/data/t.parquet", sha256="a" * 64, bytes=10),
    )


# a newer tool's message, with odd spacing and key order that must survive untouched
FUTURE = b'{"kind":"features_v9","z": 1,  "a":[3,2,1],"note":"\\u00e9 \xc3\xa9"}'


class TTY(io.BytesIO):
    def isatty(self) -> bool:
        return True


def test_read_from_file_decodes_known_and_passes_unknown_byte_identical(tmp_path):
    m = manifest()
    p = tmp_path / "in.jsonl"
    p.write_bytes(encode(m) + b"\n" + FUTURE + b"\n")
    envs = read_stream([str(p)])
    assert [e.kind for e in envs] == ["dataset", "features_v9"]
    assert envs[0].message == m
    assert envs[1].message is None
    assert envs[1].raw == FUTURE
    out = io.BytesIO()
    write_stream(envs, out=out)
    assert out.getvalue() == encode(m) + b"\n" + FUTURE + b"\n"


def test_read_from_stdin_and_dash(tmp_path):
    m1, m2 = manifest("emotion"), manifest("sentiment")
    p = tmp_path / "a.jsonl"
    p.write_bytes(encode(m1) + b"\n")
    # no sources: stdin (a pipe, not a TTY)
    envs = read_stream([], stdin=io.BytesIO(encode(m2) + b"\n"))
    assert [e.message for e in envs] == [m2]
    # '-' mixes stdin in among files, in order
    envs = read_stream([str(p), "-"], stdin=io.BytesIO(encode(m2) + b"\n"))
    assert [e.message.task for e in envs] == ["emotion", "sentiment"]


def test_blank_lines_and_crlf_are_tolerated():
    data = b"\n" + encode(manifest()) + b"\r\n\n  \n" + FUTURE + b"\r\n"
    envs = read_stream([], stdin=io.BytesIO(data))
    assert [e.kind for e in envs] == ["dataset", "features_v9"]
    assert envs[1].raw == FUTURE


def test_newer_fields_on_a_known_kind_are_accepted_and_kept():
    raw = encode(manifest())[:-1] + b',"added_later":{"x":1}}'
    envs = read_stream([], stdin=io.BytesIO(raw + b"\n"))
    assert envs[0].message == manifest()
    assert envs[0].raw == raw  # passed on with the field a newer tool will want


def test_bad_json_names_file_and_line(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_bytes(encode(manifest()) + b"\n\n{not json\n")
    with pytest.raises(ErError) as info:
        read_stream([str(p)])
    assert info.value.at == f"{p}:3"
    assert "not a JSON message" in info.value.what
    assert info.value.hint


@pytest.mark.parametrize(
    ("line", "what"),
    [
        (b'{"schema":1}', "no 'kind'"),
        (b"[1, 2]", "not a JSON message"),
        (b'{"kind":"dataset","dataset":"meld"}', "invalid dataset message"),
        (
            b'{"kind":"dataset","dataset":"meld","task":"x","table":{"path":1,"sha256":"a"}}',
            "invalid dataset message",
        ),
    ],
)
def test_bad_messages_on_stdin_name_the_line(line, what):
    with pytest.raises(ErError) as info:
        read_stream([], stdin=io.BytesIO(FUTURE + b"\n" + line + b"\n"))
    assert what in info.value.what
    assert info.value.at == "<stdin>:2"


def test_missing_input_file(tmp_path):
    with pytest.raises(ErError) as info:
        read_stream([str(tmp_path / "nope.jsonl")])
    assert info.value.at == str(tmp_path / "nope.jsonl")
    assert info.value.exit_code == 1


def test_tty_stdin_with_no_sources_is_a_usage_error():
    with pytest.raises(UsageError) as info:
        read_stream([], stdin=TTY(encode(manifest())))
    assert info.value.exit_code == 2
    assert info.value.hint
    # naming '-' explicitly reads the TTY anyway: the user asked for it
    assert len(read_stream(["-"], stdin=TTY(encode(manifest())))) == 1


def test_find_returns_the_last_of_its_type():
    first, last = manifest("emotion"), manifest("sentiment")
    data = b"\n".join([encode(first), FUTURE, encode(last), FUTURE])
    envs = read_stream([], stdin=io.BytesIO(data))
    assert find(envs, DatasetManifest) == last


def test_find_missing():
    envs = read_stream([], stdin=io.BytesIO(FUTURE))
    assert find(envs, DatasetManifest, required=False) is None
    with pytest.raises(ErError) as info:
        find(envs, DatasetManifest)
    assert "'dataset'" in info.value.what and info.value.hint


def test_write_stream_appends_new_messages():
    envs = read_stream([], stdin=io.BytesIO(FUTURE))
    out = io.BytesIO()
    write_stream(envs, [manifest()], out=out)
    lines = out.getvalue().split(b"\n")
    assert lines[0] == FUTURE
    assert msgspec.json.decode(lines[1], type=DatasetManifest) == manifest()
    assert lines[2:] == [b""]  # every line ends in a newline, nothing else follows


def test_read_messages_and_find_take_what_a_script_holds(tmp_path):
    """A path, read_stream's list, messages or message dicts all give the same messages, so
    `find` works on each; unknown kinds are left out of the messages."""
    m = manifest()
    p = tmp_path / "in.ndjson"
    p.write_bytes(FUTURE + b"\n" + encode(m) + b"\n")
    envs = read_stream([str(p)])
    as_dict = msgspec.json.decode(encode(m))
    for held in (str(p), p, envs, [m], as_dict, envs[1], p.read_bytes()):
        assert read_messages(held) == [m]
        assert find(held, DatasetManifest) == m
    assert [e.raw for e in to_envelopes(envs)] == [e.raw for e in envs]  # passed on byte for byte


@pytest.mark.parametrize("wrong", [3, None, {1, 2}, object()])
def test_read_messages_names_a_wrong_argument(wrong):
    with pytest.raises(
        ErError, match=f"cannot read messages from a value of type {type(wrong).__name__}"
    ) as e:
        read_messages(wrong)
    assert "stream file's path" in e.value.hint
