"""Questions on the terminal that a Ctrl-C always ends.

`input()` and `getpass.getpass()` write the prompt and then block in `read()`.  A Ctrl-C
that lands between the two (the moment a user, or a script driving a terminal, sees the
prompt) only sets CPython's "signal pending" flag: the read goes on blocking, and the
KeyboardInterrupt waits for the next Enter.  Here the wait is a `select()` with a short
timeout, so control returns to the interpreter a few times a second and a pending
Ctrl-C is raised at once.  Canonical mode is left on: the terminal still does the line
editing (backspace, Ctrl-U), and the descriptor becomes readable only with a whole line.
Here in the ground layer (standard library only) because the CLI and the Python API
both ask: a bot started at a terminal asks for its vault's passphrase too.
"""

from __future__ import annotations

import os
import select
from typing import IO

_TICK_S = 0.2  # how long a pending Ctrl-C may wait: well below what a person notices
MAX_LINE = 64 * 1024  # an answer longer than this is not typed by a person


def read_line(fd: int, encoding: str = "utf-8") -> str:
    """One line from the terminal `fd`, without its newline.  EOFError on end of input
    (Ctrl-D on an empty line); KeyboardInterrupt on Ctrl-C, however it is timed."""
    chunks: list[bytes] = []
    size = 0
    while True:
        ready, _, _ = select.select([fd], [], [], _TICK_S)
        if not ready:
            continue
        data = os.read(fd, 4096)
        if not data:
            if chunks:
                break
            raise EOFError
        chunks.append(data)
        size += len(data)
        if b"\n" in data or size > MAX_LINE:
            break
    line = b"".join(chunks).split(b"\n", 1)[0][:MAX_LINE]
    return line.decode(encoding or "utf-8", "replace").rstrip("\r")


def ask_line(prompt: str, tty_in: IO[str], tty_out: IO[str]) -> str:
    """Show `prompt` on `tty_out` and read the answer from the terminal `tty_in`."""
    tty_out.write(prompt)
    tty_out.flush()
    return read_line(tty_in.fileno(), getattr(tty_in, "encoding", None) or "utf-8")


def ask_secret(prompt: str) -> str:
    """Like getpass.getpass on the controlling terminal (echo off while typing), read
    with `read_line`.  OSError if there is no terminal."""
    import termios

    fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    try:
        old = termios.tcgetattr(fd)
        quiet = termios.tcgetattr(fd)
        quiet[3] &= ~termios.ECHO
        os.write(fd, prompt.encode("utf-8", "replace"))
        termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
        try:
            return read_line(fd)
        finally:
            termios.tcsetattr(fd, termios.TCSAFLUSH, old)
            os.write(fd, b"\n")
    finally:
        os.close(fd)
