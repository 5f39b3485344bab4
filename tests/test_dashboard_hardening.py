"""The dashboard hardens itself the way the unlock agent does (issue 10, finding 5).

`keyward demo` runs for real in a pseudo-terminal, unlocked, holding the demo vault's key,
passphrase and secrets.  It runs without CAP_SYS_PTRACE, and so does the reader standing
in for another process of the same user: to the kernel, two processes of one ordinary
user.  The reader must not get at the dashboard's memory, while it can read a dumpable
process of the same standing (the control, so the test cannot pass by being unable to
read anything); and the dashboard must not be able to write a core file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_agent_attacks import as_another_process_of_this_user
from tests.test_tui_demo import Terminal

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

READER = r"""
import sys
for pid in sys.argv[1:]:
    try:
        with open(f"/proc/{pid}/mem", "rb"):
            print(pid, "open")
    except OSError as exc:
        print(pid, "refused", exc.errno)
"""


class UnprivilegedTerminal(Terminal):
    """Terminal, with the demo started as another process of an ordinary user."""

    def __init__(self, tmp: Path) -> None:
        real = subprocess.Popen

        def popen(*args, **kwargs):
            kwargs["preexec_fn"] = as_another_process_of_this_user
            return real(*args, **kwargs)

        subprocess.Popen = popen  # only for Terminal's own start, restored at once
        try:
            super().__init__(tmp)
        finally:
            subprocess.Popen = real


def core_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return " ".join(line.split()[4:6])
    raise AssertionError("no core limit line")


def test_an_unlocked_dashboard_cannot_be_read_by_another_process_or_dump_core(tmp_path: Path) -> None:
    term = UnprivilegedTerminal(tmp_path)
    control = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               preexec_fn=as_another_process_of_this_user)
    try:
        term.wait_for(b"accounts")  # unlocked: the status line counts the accounts
        term.wait_for(b"Passphrase:")
        assert core_limit(term.proc.pid) == "0 0"
        done = subprocess.run([sys.executable, "-c", READER, str(control.pid), str(term.proc.pid)], capture_output=True,
                              text=True, timeout=30, preexec_fn=as_another_process_of_this_user, cwd=REPO)
        verdict = dict(line.split(" ", 1) for line in done.stdout.splitlines())
        assert verdict[str(control.pid)] == "open", done.stdout + done.stderr
        assert verdict[str(term.proc.pid)].startswith("refused"), done.stdout
    finally:
        control.kill()
        control.wait()
        term.close()
