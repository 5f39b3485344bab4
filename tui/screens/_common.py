"""Small helpers the screens share."""

from __future__ import annotations

from pathlib import Path

from textual.screen import Screen
from textual.widgets import LoadingIndicator


def display_path(path: Path) -> str:
    """The vault path as a person reads it: ~ for the home directory."""
    try:
        return "~/" + str(Path(path).resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)


def show_deriving(screen: Screen, on: bool) -> None:
    """Show (the screen's -busy class) or hide its "deriving key…" line, #deriving.  Its
    LoadingIndicator exists only while shown: one redraws itself 16 times a second from
    the moment it is mounted, display: none or not (~0.5% of a core for an app left
    locked, where auto-lock leaves it)."""
    screen.set_class(on, "-busy")
    box = screen.query_one("#deriving")
    spinners = box.query(LoadingIndicator)
    if on and not spinners:
        box.mount(LoadingIndicator(), before=0)
    elif not on:
        spinners.remove()
