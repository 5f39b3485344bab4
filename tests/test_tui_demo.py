"""`keyward demo` for real: in a pseudo-terminal, as a user runs it.

It starts the sandbox, builds its throwaway vault in the temporary directory, opens the
dashboard already unlocked, and leaves nothing behind when the terminal goes away
(SIGHUP) or it is killed (SIGTERM): Python's default for either ends the process without
running the clean-up that removes the vault.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")


class Terminal:
    """A 140x40 pseudo-terminal running `keyward demo`; collects what it draws."""

    def __init__(self, tmp: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYWARD_", "TEXTUAL"))}
        env |= {"TMPDIR": str(tmp), "HOME": str(tmp), "TERM": "xterm-256color", "PYTHONPATH": str(REPO),
                "XDG_RUNTIME_DIR": str(tmp / "run")}
        self.proc = subprocess.Popen([sys.executable, "-m", "vault", "demo"], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=REPO, start_new_session=True)
        os.close(slave)
        self.master = master
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def wait_for(self, text: bytes, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.proc.poll() is None, bytes(self.output[-2000:])
            assert time.monotonic() < deadline, f"{text!r} never drawn: {bytes(self.output[-2000:])!r}"
            time.sleep(0.1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_the_demo_opens_unlocked_and_leaves_no_vault_behind(tmp_path: Path, sig: signal.Signals) -> None:
    term = Terminal(tmp_path)
    try:
        term.wait_for(b"accounts")  # the dashboard's status line: "4 accounts · ..."
        term.wait_for(b"Passphrase:")
        demo_dirs = list(tmp_path.glob("keyward-demo-*"))
        assert len(demo_dirs) == 1 and (demo_dirs[0] / "demo.kw").exists()
        term.proc.send_signal(sig)
        term.proc.wait(timeout=30)
        assert not list(tmp_path.glob("keyward-demo-*")), "the throwaway vault outlived the demo"
    finally:
        term.close()
