"""Small helpers the screens share."""

from __future__ import annotations

from pathlib import Path


def display_path(path: Path) -> str:
    """The vault path as a person reads it: ~ for the home directory."""
    try:
        return "~/" + str(Path(path).resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)
