"""Outside text as data: the one function that makes a string safe to show.

Audit details, venue answers, labels, notes and file names all reach a terminal sooner
or later, through a pipe into `cat` or `less -R` as much as directly.  A terminal obeys
the control characters inside them: cursor moves that overwrite earlier lines, OSC 52
clipboard writes, title changes, bidi overrides that reorder what is read.  `printable`
turns every such character into a visible escape (`\\x1b`, `\\u202e`), so the text is
shown, whole and readable, and never acted on.
"""

from __future__ import annotations

import re

# Bidi controls: they reorder what is displayed without being seen (Trojan Source).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 (minus tab and newline, decided per call), DEL, C1 (CSI, OSC and ST among them).
_UNSAFE_ONE_LINE = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_MULTI_LINE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, newlines: bool = False) -> str:
    """`text` with every control character shown as an escape.  Tabs stay; newlines stay
    only with `newlines=True` (a block of output), else they are escaped too (one line:
    an error, a table cell, an audit detail)."""
    if not isinstance(text, str):
        text = str(text)
    pattern = _UNSAFE_MULTI_LINE if newlines else _UNSAFE_ONE_LINE
    return pattern.sub(_escape, text)


__all__ = ["printable"]
