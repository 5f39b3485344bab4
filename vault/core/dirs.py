"""keyward's default directories: the XDG rule on Linux, platformdirs elsewhere.

platformdirs costs every command that opens a vault a few milliseconds of imports (it
is asked twice: the vault's default path and the state directory).  On Linux its answer
is the XDG Base Directory rule, written out here; tests/test_agent.py pins the two to
platformdirs' own answers.  Standard library only: the agent's hot path uses it too.
"""

from __future__ import annotations

import os
import sys

APP = "keyward"


def _xdg(variable: str, fallback: str) -> str | None:
    """$variable (unless unset or blank) or ~/fallback, then keyward; None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    base = os.environ.get(variable, "")
    if not base.strip():
        base = os.path.expanduser(fallback)
    return os.path.join(base, APP)


def user_data_dir() -> str:
    """Where the vault lives by default ($XDG_DATA_HOME/keyward, ~/.local/share/keyward)."""
    found = _xdg("XDG_DATA_HOME", "~/.local/share")
    if found is None:
        from platformdirs import user_data_dir as other

        found = other(APP, appauthor=False)
    return found


def user_state_dir() -> str:
    """What keyward remembers of each vault ($XDG_STATE_HOME/keyward, ~/.local/state/keyward)."""
    found = _xdg("XDG_STATE_HOME", "~/.local/state")
    if found is None:
        from platformdirs import user_state_dir as other

        found = other(APP, appauthor=False)
    return found


def linux_data_dir() -> str | None:
    """user_data_dir() where it needs no import (Linux), else None."""
    return _xdg("XDG_DATA_HOME", "~/.local/share")
