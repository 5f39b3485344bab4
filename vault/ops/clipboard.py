"""One way to put a secret on the clipboard, and to take it off again.

Backends, in the order `choose_backend` tries them:

1. a system clipboard tool whose display is reachable: ``pbcopy`` on macOS, ``wl-copy``
   under Wayland, ``xclip`` or ``xsel`` under X11.  These can read the clipboard back,
   so keyward clears it after ``clipboard_clear_seconds`` (a vault setting, 30 s by
   default) *only if it still holds what keyward put there*: a detached helper process
   (``python -m vault.ops.clipboard clear``) waits, reads the clipboard, compares and clears.
   The helper never holds the secret: it gets a random salt and HMAC-SHA256(salt, value)
   on a pipe, and compares the clipboard's HMAC with that.
2. OSC 52, written to the controlling terminal (``/dev/tty``, never stdout, which may be a
   file): works over SSH and inside tmux (wrapped for passthrough).  A terminal's
   clipboard cannot be read back (terminals disable OSC 52 queries), so keyward cannot
   tell whether the user copied something else since, and therefore does **not** clear
   it: `copy_secret` says so.  The dashboard, which knows what it copied last, can send
   `osc52_clear()` itself.

``KEYWARD_CLIPBOARD`` overrides the choice: ``osc52``, ``pbcopy``, ``wl-copy``, ``xclip``,
``xsel``, or ``none`` (refuse to copy).  A value is handed to a tool on its stdin, never in
argv.  Clipboard managers (history tools) may keep their own copy; keyward cannot stop
that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from vault.core.errors import InputError

DEFAULT_CLEAR_SECONDS = 30
TOOL_TIMEOUT_S = 5.0


# --- OSC 52 ----------------------------------------------------------------------------------


def osc52(text: str, *, multiplexer: str | None = None) -> str:
    """The escape sequence that sets the terminal's clipboard to `text`.

    `multiplexer` is "tmux" or "screen" to wrap it for passthrough (see `detect_multiplexer`).
    """
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return _wrap(f"\x1b]52;c;{payload}\x07", multiplexer)


def osc52_clear(*, multiplexer: str | None = None) -> str:
    """The sequence that empties the terminal's clipboard ("!" is not base64: xterm and
    the terminals that follow it clear the selection on invalid data)."""
    return _wrap("\x1b]52;c;!\x07", multiplexer)


def _wrap(seq: str, multiplexer: str | None) -> str:
    if multiplexer == "tmux":  # DCS passthrough; every ESC inside doubled
        return "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    if multiplexer == "screen":
        return "\x1bP" + seq + "\x1b\\"
    return seq


def detect_multiplexer(env: Mapping[str, str]) -> str | None:
    if env.get("TMUX"):
        return "tmux"
    if env.get("STY") or env.get("TERM", "").startswith("screen"):
        return "screen"
    return None


class Osc52Backend:
    name = "osc52"
    can_read = False

    def __init__(self, tty_path: str = "/dev/tty", multiplexer: str | None = None) -> None:
        self.tty_path = tty_path
        self.multiplexer = multiplexer

    @classmethod
    def available(cls, env: Mapping[str, str], tty_path: str = "/dev/tty") -> bool:
        if env.get("TERM", "") in ("", "dumb"):
            return False
        try:
            with open(tty_path, "w"):
                return True
        except OSError:
            return False

    def _write(self, seq: str) -> None:
        try:
            with open(self.tty_path, "w") as tty:
                tty.write(seq)
                tty.flush()
        except OSError:
            raise InputError("cannot write to the terminal for OSC 52", hint="run it in a terminal, or install xclip/wl-clipboard") from None

    def copy(self, text: str) -> None:
        self._write(osc52(text, multiplexer=self.multiplexer))

    def clear(self) -> None:
        self._write(osc52_clear(multiplexer=self.multiplexer))

    def paste(self) -> str | None:
        return None


# --- system clipboard tools --------------------------------------------------------------------


@dataclass(frozen=True)
class ToolBackend:
    """A clipboard command-line tool: how to copy (value on stdin), read back and clear."""

    name: str
    copy_cmd: tuple[str, ...]
    paste_cmd: tuple[str, ...]
    clear_cmd: tuple[str, ...] | None  # None: clear by copying the empty string
    needs: str | None  # the environment variable naming the display it talks to
    can_read = True

    def copy(self, text: str) -> None:
        self._run(self.copy_cmd, text.encode("utf-8"))

    def paste(self) -> str | None:
        try:
            proc = subprocess.run(
                self.paste_cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=TOOL_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode != 0:
            return None
        return proc.stdout.decode("utf-8", "replace")

    def clear(self) -> None:
        if self.clear_cmd is not None:
            self._run(self.clear_cmd, b"")
        else:
            self._run(self.copy_cmd, b"")

    def _run(self, cmd: tuple[str, ...], data: bytes) -> None:
        try:
            # stdout/stderr to /dev/null: xclip and wl-copy fork a child that keeps serving
            # the selection, and a pipe it inherited would make us wait for it.
            proc = subprocess.run(
                cmd, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT_S, check=False
            )
        except FileNotFoundError:
            raise InputError(f"{self.name} is not installed", hint="install it, or unset KEYWARD_CLIPBOARD") from None
        except subprocess.TimeoutExpired:
            raise InputError(f"{self.name} did not finish in {TOOL_TIMEOUT_S:.0f} s", hint="check the display it talks to") from None
        if proc.returncode != 0:
            raise InputError(
                f"{self.name} failed (exit {proc.returncode})",
                hint=f"check that {self.needs or 'the clipboard'} is reachable" if self.needs else "check the clipboard",
            )


TOOLS: dict[str, ToolBackend] = {
    "pbcopy": ToolBackend("pbcopy", ("pbcopy",), ("pbpaste",), None, None),
    "wl-copy": ToolBackend("wl-copy", ("wl-copy",), ("wl-paste", "--no-newline"), ("wl-copy", "--clear"), "WAYLAND_DISPLAY"),
    "xclip": ToolBackend(
        "xclip", ("xclip", "-selection", "clipboard", "-in"), ("xclip", "-selection", "clipboard", "-out"), None, "DISPLAY"
    ),
    "xsel": ToolBackend(
        "xsel", ("xsel", "--clipboard", "--input"), ("xsel", "--clipboard", "--output"), ("xsel", "--clipboard", "--clear"), "DISPLAY"
    ),
}


def detect_tool(env: Mapping[str, str], which: Callable[[str], str | None] = shutil.which) -> ToolBackend | None:
    """The first tool that is installed and whose display is reachable."""
    order = ["pbcopy"] if sys.platform == "darwin" else []
    order += ["wl-copy", "xclip", "xsel"]
    for name in order:
        tool = TOOLS[name]
        if tool.needs and not env.get(tool.needs):
            continue
        if which(tool.copy_cmd[0], path=env.get("PATH")) and which(tool.paste_cmd[0], path=env.get("PATH")):
            return tool
    return None


def choose_backend(env: Mapping[str, str] | None = None, *, tty_path: str = "/dev/tty") -> ToolBackend | Osc52Backend | None:
    env = os.environ if env is None else env
    forced = env.get("KEYWARD_CLIPBOARD", "").strip().lower()
    if forced == "none":
        return None
    if forced == "osc52":
        return Osc52Backend(tty_path, detect_multiplexer(env))
    if forced:
        if forced not in TOOLS:
            raise InputError(f"unknown KEYWARD_CLIPBOARD {forced!r}", hint=f"use osc52, none or one of: {', '.join(TOOLS)}")
        return TOOLS[forced]
    tool = detect_tool(env)
    if tool is not None:
        return tool
    if Osc52Backend.available(env, tty_path):
        return Osc52Backend(tty_path, detect_multiplexer(env))
    return None


# --- copying, and clearing only what is still ours ----------------------------------------------


@dataclass
class CopyResult:
    backend: str
    clears_after: int | None  # seconds, None when it will not be cleared
    note: str  # one line for the user


def fingerprint(salt: bytes, text: str) -> bytes:
    return hmac.new(salt, text.encode("utf-8"), hashlib.sha256).digest()


def still_ours(current: str | None, salt: bytes, mac: bytes) -> bool:
    if current is None:
        return False
    # Tools add or drop one trailing newline on the way round; compare both ways.
    candidates = {current, current.rstrip("\n")}
    return any(hmac.compare_digest(fingerprint(salt, c), mac) for c in candidates)


def clear_if_unchanged(backend: ToolBackend, salt: bytes, mac: bytes) -> bool:
    """Clear the clipboard if it still holds the value fingerprinted by (salt, mac)."""
    if not still_ours(backend.paste(), salt, mac):
        return False
    backend.clear()
    return True


def spawn_clearer(backend: ToolBackend, text: str, seconds: int) -> None:
    """A detached process that clears the clipboard after `seconds` if it is unchanged.

    It outlives this command (its own session, no inherited descriptors) and receives only
    a salt and an HMAC of the value, on a pipe."""
    salt = os.urandom(16)
    mac = fingerprint(salt, text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vault.ops.clipboard", "clear", backend.name, str(int(seconds))],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        cwd="/",
        env=_helper_env(),
    )
    assert proc.stdin is not None
    proc.stdin.write(f"{salt.hex()} {mac.hex()}\n".encode())
    proc.stdin.close()


def _helper_env() -> dict[str, str]:
    env = dict(os.environ)
    # The helper imports vault.ops.clipboard from wherever this process did.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def default_clear_seconds(ctx: Any) -> int:
    service = getattr(ctx, "_service", None) if ctx is not None else None
    if service is not None and not service.locked:
        return int(service.data.settings.clipboard_clear_seconds)
    return DEFAULT_CLEAR_SECONDS


COPY_KINDS = ("token", "headers", "fields")


def record_copy(service: Any, label: str, what: object) -> int:
    """The "copy" audit entry, in `service`'s vault; returns the vault's
    clipboard_clear_seconds.  A copy through the unlock agent asks the agent for it (op
    "record_copy"), since only the agent holds the vault then."""
    if what not in COPY_KINDS:
        raise InputError("unknown kind of copy", hint=f"one of: {', '.join(COPY_KINDS)}")
    service.get(label)  # an entry names an account that exists
    service.record("copy", label, "ok", str(what))
    return int(service.data.settings.clipboard_clear_seconds)


def _record(ctx: Any, label: str, what: str) -> int:
    service = getattr(ctx, "_service", None)
    if service is not None and not service.locked:
        return record_copy(service, label, what)
    # The token came from the unlock agent: it alone holds the vault, so it records.
    recorder = getattr(ctx.ops(), "record_copy", None)
    if recorder is None:
        raise InputError("cannot record the copy in the audit trail", hint="run it without the unlock agent (`keyward lock`)")
    seconds = recorder(label, what)
    return int(seconds) if isinstance(seconds, int) and not isinstance(seconds, bool) else DEFAULT_CLEAR_SECONDS


def disabled(env: Mapping[str, str] | None = None) -> bool:
    """KEYWARD_CLIPBOARD=none: the user turned copying off."""
    env = os.environ if env is None else env
    return env.get("KEYWARD_CLIPBOARD", "").strip().lower() == "none"


def require_backend(env: Mapping[str, str] | None = None) -> ToolBackend | Osc52Backend:
    """The clipboard to use, or the one-line error: called before a token is minted for
    `--copy`, so that no token is made (and audited) for a copy that cannot happen."""
    backend = choose_backend(env)
    if backend is None:
        raise InputError(
            "no clipboard available",
            hint="install wl-clipboard, xclip or xsel, or use a terminal that supports OSC 52",
        )
    return backend


def copy_secret(
    text: str,
    ctx: Any = None,
    *,
    clear_after: int | None = None,
    env: Mapping[str, str] | None = None,
    label: str | None = None,
    what: str = "",
) -> CopyResult:
    """Copy `text` and arrange for it to be cleared; tell the user (on ctx.stderr) how.

    `ctx` is the CLI Context (its unlocked vault supplies clipboard_clear_seconds) or None
    (the dashboard).  `clear_after` overrides the setting; 0 means never clear.  With
    `label` (and a ctx), a "copy" audit entry (detail `what`, never the value) is recorded
    before the value leaves: in ctx's vault when this process has it unlocked, else by the
    unlock agent that handed out the token.  A copy that cannot be recorded is not made.
    """
    backend = require_backend(env)
    setting = default_clear_seconds(ctx)
    if label is not None and ctx is not None:
        setting = _record(ctx, label, what)  # before the value leaves, as for exports
    seconds = setting if clear_after is None else int(clear_after)
    backend.copy(text)
    if isinstance(backend, ToolBackend):
        if seconds > 0:
            spawn_clearer(backend, text, seconds)
            result = CopyResult(backend.name, seconds, f"copied to the clipboard ({backend.name}); cleared in {seconds} s unless it changes")
        else:
            result = CopyResult(backend.name, None, f"copied to the clipboard ({backend.name}); not cleared (clipboard_clear_seconds is 0)")
    else:
        result = CopyResult(
            backend.name,
            None,
            "copied through the terminal (OSC 52); keyward cannot read a terminal's clipboard back, "
            "so it will not clear it: copy something else when done",
        )
    if ctx is not None:
        ctx.warn(result.note)
    return result


# --- the detached helper ---------------------------------------------------------------------


def _helper_main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "clear" or argv[1] not in TOOLS:
        print("usage: python -m vault.ops.clipboard clear TOOL SECONDS (salt and HMAC on stdin)", file=sys.stderr)
        return 2
    line = sys.stdin.readline().split()
    sys.stdin.close()
    try:
        salt, mac = bytes.fromhex(line[0]), bytes.fromhex(line[1])
        seconds = float(argv[2])
    except (IndexError, ValueError):
        return 2
    time.sleep(max(0.0, seconds))
    return 0 if clear_if_unchanged(TOOLS[argv[1]], salt, mac) else 1


if __name__ == "__main__":
    raise SystemExit(_helper_main(sys.argv[1:]))
