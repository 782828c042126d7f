"""NDJSON message streams: read from stdin or files, pass everything through, append.

stdout carries messages and nothing else; each line is one JSON message. A `.safetensors` file
is a valid input too: its message sits in the file's metadata under `er.message`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import msgspec

from er_core.errors import ErError, UsageError, from_os_error
from er_core.messages import KINDS, Message

M = TypeVar("M", bound=Message)

METADATA_KEY = "er.message"
_encoder = msgspec.json.Encoder()
_decoders = {kind: msgspec.json.Decoder(cls) for kind, cls in KINDS.items()}


class _Kind(msgspec.Struct):
    kind: str = ""


_kind_decoder = msgspec.json.Decoder(_Kind)


@dataclass(frozen=True)
class Envelope:
    """One message as it arrived: the raw line (passed on byte for byte) and, if known, decoded."""

    raw: bytes
    kind: str
    message: Message | None


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode_line(raw: bytes, at: str) -> Envelope:
    try:
        kind = _kind_decoder.decode(raw).kind
    except msgspec.DecodeError as e:
        raise ErError(
            f"not a JSON message ({e})",
            at=at,
            hint="inputs are the NDJSON output of an er tool, or its .safetensors/.json files",
        ) from None
    if not kind:
        raise ErError("message has no 'kind'", at=at, hint="was this written by an er tool?")
    decoder = _decoders.get(kind)
    if decoder is None:  # a newer tool's message: pass it through untouched
        return Envelope(raw, kind, None)
    try:
        return Envelope(raw, kind, decoder.decode(raw))
    except msgspec.ValidationError as e:
        raise ErError(
            f"invalid {kind} message: {e}", at=at, hint="the file may be damaged"
        ) from None


def _lines(data: bytes, name: str) -> Iterable[Envelope]:
    for i, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            yield decode_line(line.strip(), f"{name}:{i}")


def read_safetensors_message(path: str | Path) -> Envelope:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types
        raise ErError(
            f"cannot read SafeTensors header ({e})",
            at=str(path),
            hint="the file is damaged or not SafeTensors; re-run the step that wrote it",
        ) from None
    raw = meta.get(METADATA_KEY)
    if raw is None:
        raise ErError(
            f"no '{METADATA_KEY}' in metadata",
            at=str(path),
            hint="only er's own files carry a message",
        )
    return decode_line(raw.encode(), f"{path}:{METADATA_KEY}")


def read_stream(sources: Sequence[str], stdin: IO[bytes] | None = None) -> list[Envelope]:
    """Read every message from `sources` ('-' is stdin); no sources means stdin.

    A TTY on stdin with no sources is a usage error: there is nothing to read.
    """
    stdin = stdin if stdin is not None else sys.stdin.buffer
    if not sources:
        if stdin.isatty():
            raise UsageError(
                "no input: nothing piped in and no files named",
                hint="pipe a stream in (er-data prepare ... | er-data stats) or name files",
            )
        sources = ["-"]
    out: list[Envelope] = []
    for src in sources:
        if src == "-":
            out.extend(_lines(stdin.read(), "<stdin>"))
            continue
        path = Path(src)
        if not path.is_file():
            raise ErError("input file not found", at=src, hint="check the path")
        if path.suffix == ".safetensors":
            out.append(read_safetensors_message(path))
        else:
            out.extend(_lines(path.read_bytes(), src))
    return out


def to_envelopes(stream: Any, what: str = "stream") -> list[Envelope]:
    """What a Python caller holds for a stream, as the envelopes `read_stream` returns.

    Accepted: a stream file's path (str or Path: NDJSON, a tool's .json, or a .safetensors file
    carrying its message), NDJSON bytes, read_stream's own list, messages, message dicts
    (`json.loads` of a line), or a list mixing them. Anything else is one ErError naming the
    type: a script that passes the wrong thing learns what to pass, instead of meeting an
    AttributeError deep inside a tool.
    """
    if isinstance(stream, (str, Path)):
        return read_stream([str(stream)])
    if isinstance(stream, (bytes, bytearray)):
        return list(_lines(bytes(stream), f"<{what}>"))
    if isinstance(stream, Envelope):
        return [stream]
    if isinstance(stream, Message):
        return [Envelope(encode(stream), stream.__struct_config__.tag or "", stream)]
    if isinstance(stream, dict):
        return [decode_line(_encoder.encode(stream), f"<{what}>")]
    if isinstance(stream, (list, tuple)):
        return [env for item in stream for env in to_envelopes(item, what)]
    raise ErError(
        f"{what}: cannot read messages from a value of type {type(stream).__name__}",
        at=what,
        hint="pass a stream file's path, read_stream's list, or er_core messages",
    )


def read_messages(stream: Any) -> list[Message]:
    """The decoded messages of a stream, in order (see `to_envelopes` for what `stream` may be).

    The Python face of a pipe: `read_messages("feats.ndjson")` gives the DatasetManifest and
    FeatureManifests that `find` picks from. Kinds this version does not know are left out.
    """
    return [env.message for env in to_envelopes(stream) if env.message is not None]


def find(envelopes: Any, cls: type[M], *, required: bool = True) -> M | None:
    """The last message of type `cls` in the stream (the most recent upstream step).

    `envelopes` is read_stream's list, or anything `to_envelopes` takes (a path, messages)."""
    for env in reversed(to_envelopes(envelopes, "find")):
        if isinstance(env.message, cls):
            return env.message
    if required:
        kind = cls.__struct_config__.tag
        raise ErError(
            f"no '{kind}' message in the input",
            at="<input>",
            hint="pipe in the output of the step that makes it, e.g. er-data prepare",
        )
    return None


def write_stream(
    envelopes: Iterable[Envelope], new: Iterable[Message] = (), out: IO[bytes] | None = None
) -> None:
    """Write the upstream messages unchanged, then the new ones, one per line."""
    to_stdout = out is None
    out = out if out is not None else sys.stdout.buffer
    try:
        for env in envelopes:
            out.write(env.raw + b"\n")
        for msg in new:
            out.write(encode(msg) + b"\n")
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        if not to_stdout or e.filename:
            raise
        raise from_os_error(e, at="<stdout>") from None
