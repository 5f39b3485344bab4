"""keyward's argparse parser class: argparse's, asking the terminal's width once.

argparse makes a help formatter for every `add_argument` (to check the metavar), even
when no help is printed, and each one asked `shutil.get_terminal_size()`: an import of
shutil (with bz2, lzma and zlib, ~2 ms) and a system call per argument, on every command.
The width here is worked out as shutil works it out ($COLUMNS, else the size of the
terminal on standard output, else 80), once, when help is first formatted.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys


@functools.cache
def terminal_columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class HelpFormatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
        # (argparse, asking shutil itself, keeps two columns free)
        super().__init__(prog, indent_increment, max_help_position, terminal_columns() - 2 if width is None else width)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """For an epilog laid out by hand."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose default formatter is the one above; `add_subparsers` makes
    its subparsers of this class too (argparse uses the parser's own type)."""

    def __init__(self, *args, formatter_class: type[argparse.HelpFormatter] = HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)
