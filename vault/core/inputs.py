"""The one bounded reader for what a person hands keyward: stdin, a paste, a credential file.

Everything read here is refused early rather than half-used: past MAX_INPUT_BYTES (a
one-time screen or a credential file is a few KiB), not UTF-8 (the error names the byte
offset, never the bytes), or JSON nested deeper than MAX_JSON_DEPTH (Python's parser
recurses once per level; a credential file is two or three levels deep).  Each refusal
is a typed one-line error; nothing read is ever quoted in it, since it may be a secret.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from vault.core.errors import FileUnusable, InputTooLarge, MalformedInput

MAX_INPUT_BYTES = 1 << 20  # 1 MiB
MAX_JSON_DEPTH = 32


def too_large(source: str, limit: int = MAX_INPUT_BYTES) -> InputTooLarge:
    return InputTooLarge(
        f"{source} holds more than {limit / (1 << 20):g} MiB; keyward reads credentials, not that",
        hint="pass the file or the JSON the venue gave you (a few KiB)",
    )


def decode(data: bytes, source: str) -> str:
    """Strict UTF-8, or a MalformedInput naming the offset of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput(
            f"{source} is not UTF-8 text: the byte at offset {exc.start} is not valid UTF-8",
            hint="save it as UTF-8 (or pass the file the venue gave you) and try again",
        ) from None


def read_stream(stream: IO[Any], source: str = "stdin", limit: int = MAX_INPUT_BYTES) -> str:
    """All of a stream (stdin), at most `limit` bytes, decoded strictly."""
    raw = getattr(stream, "buffer", None)
    if raw is not None:  # a real stdin: its bytes, so that decoding is ours (strict)
        data = raw.read(limit + 1)
        if len(data) > limit:
            raise too_large(source, limit)
        return decode(data, source)
    text = stream.read(limit + 1)  # a text stream (tests pass io.StringIO): decoded already
    if isinstance(text, str):
        try:
            # Undecodable bytes arrive as surrogate escapes: back to bytes, so the check
            # below finds them (and says where).
            text = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise MalformedInput(f"{source} is not UTF-8 text: the character at offset {exc.start} is not valid",
                                 hint="save it as UTF-8 and try again") from None
    if len(text) > limit:
        raise too_large(source, limit)
    return decode(text, source)


def read_file(path: str | Path, source: str | None = None, limit: int = MAX_INPUT_BYTES) -> str:
    """A credential file, at most `limit` bytes, decoded strictly."""
    name = source or str(path)
    return decode(read_bytes(path, name, limit), name)


def read_bytes(path: str | Path, source: str | None = None, limit: int = MAX_INPUT_BYTES) -> bytes:
    """A regular file's bytes, at most `limit`: a FIFO, a device or a directory is refused
    before anything is read (a FIFO would hang the command, /dev/zero fill memory)."""
    import os
    import stat

    name = source or str(path)
    try:
        fd = os.open(Path(path).expanduser(), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileUnusable(f"cannot read {name}: {exc.strerror}", hint="check the path") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileUnusable(f"{name} is not a regular file", hint="pass a file (for stdin, pass -)")
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise FileUnusable(f"cannot read {name}: {exc.strerror}", hint="check the path") from None
    if len(data) > limit:
        raise too_large(name, limit)
    return data


def check_size(data: bytes | str, source: str, limit: int = MAX_INPUT_BYTES) -> None:
    """For input gathered elsewhere (a paste read line by line)."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise too_large(source, limit)


def depth(value: Any) -> int:
    """How deeply parsed JSON nests (iteratively: no recursion to run out of)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _too_deep(source: str) -> MalformedInput:
    return MalformedInput(
        f"{source} is JSON nested deeper than {MAX_JSON_DEPTH} levels",
        hint="pass the flat JSON object the venue gave you",
    )


def load_json(text: str, source: str) -> Any:
    """json.loads with the nesting bounded.  A JSONDecodeError passes through (callers
    say where the JSON broke); deep nesting is a MalformedInput."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_deep(source) from None
    if depth(value) > MAX_JSON_DEPTH:
        raise _too_deep(source)
    return value


__all__ = ["MAX_INPUT_BYTES", "MAX_JSON_DEPTH", "check_size", "decode", "depth", "load_json", "read_file",
           "read_stream"]
