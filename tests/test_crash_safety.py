"""Real processes: SIGKILL in the middle of saves, and two writers at once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from vault.core.model import Account
from vault.core.service import VaultService

from .conftest import PASSPHRASE, REPO

pytestmark = pytest.mark.slow

SAVER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from vault.core.service import VaultService
    vault_path, passphrase = Path(sys.argv[1]), sys.stdin.readline().rstrip("\\n")
    def bump(data):
        acct = data.accounts[0]
        acct.notes = str(int(acct.notes) + 1)
        acct.fields["api_secret"] = "x" * (int(acct.notes) % 4000)  # vary the size
        return acct.notes
    VaultService.unlock(vault_path, passphrase)  # what an unlock imports, imported before the forks
    print("ready", flush=True)
    # One saver per line on stdin: a child forked from this process (keyward already
    # imported, so a run costs a fork, not an interpreter start) unlocks the vault and
    # saves until it is killed; then it is reaped and its end reported.
    while sys.stdin.readline():
        pid = os.fork()
        if pid == 0:
            try:
                svc = VaultService.unlock(vault_path, passphrase)
                print("ready", os.getpid(), flush=True)
                while True:
                    print(svc.transact(bump), flush=True)
            finally:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        # On a line of its own: the kill may have cut a number from its newline.
        print("\\nreaped", os.waitstatus_to_exitcode(status), flush=True)
    """
)

ADDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from vault.core.model import Account
    from vault.core.service import VaultService
    svc = VaultService.unlock(Path(sys.argv[1]), sys.stdin.readline().rstrip("\\n"))
    prefix = sys.argv[2]
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(50):
        svc.add_account(Account(f"{prefix}-{i}", "kiiex", "https://x", {"api_key": "k"}))
    """
)


def spawn(code: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    proc.stdin.write(PASSPHRASE + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "ready"
    return proc


def acknowledged(proc: subprocess.Popen) -> list[int]:
    """Every number the killed child printed.  Read through proc.stdout, never with
    communicate(): that reads the raw pipe, and loses what spawn()'s readline() had
    already buffered past "ready" (under load, the first acknowledgements; issue 14)."""
    proc.stdin.close()
    out = proc.stdout.read()
    proc.wait()
    return [int(line) for line in out.split()]


def test_the_harness_sees_acknowledgements_written_with_ready():
    """The child writes "ready" and two acknowledgements in one go, before the test
    reads anything: all of them must reach `acknowledged`."""
    child = 'import sys, time; sys.stdin.readline(); sys.stdout.write("ready\\n1\\n2\\n"); sys.stdout.flush(); time.sleep(60)'
    proc = spawn_when_written(child)
    os.kill(proc.pid, signal.SIGKILL)
    assert acknowledged(proc) == [1, 2]


def spawn_when_written(code: str) -> subprocess.Popen:
    """spawn(), after the child has written its lines (as under load)."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    proc.stdin.write(PASSPHRASE + "\n")
    proc.stdin.flush()
    import select

    select.select([proc.stdout], [], [], 30)
    time.sleep(0.2)  # the whole line batch is in the pipe
    assert proc.stdout.readline().strip() == "ready"
    return proc


def saved_until_killed(saver: subprocess.Popen, delay: float) -> list[int]:
    """One saver child of SAVER, SIGKILLed `delay` seconds after it is ready to save:
    every number it acknowledged (read through saver.stdout, as acknowledged() does)."""
    saver.stdin.write("go\n")
    saver.stdin.flush()
    line = saver.stdout.readline()
    assert line.startswith("ready "), ("the saver never got to save", line, saver.stdout.readline())
    pid = line.split()[1]
    time.sleep(delay)
    os.kill(int(pid), signal.SIGKILL)
    acked = []
    while not (line := saver.stdout.readline()).startswith("reaped"):
        assert line, "the saver process itself ended"
        acked += [int(number) for number in line.split()]  # as acknowledged() reads them
    assert int(line.split()[1]) == -signal.SIGKILL, line  # killed while saving, not ended any other way
    return acked


def test_sigkill_during_saves_never_loses_or_corrupts(service, vault_path):
    service.add_account(Account("counter", "tradeready", "https://x", {"api_key": "k", "api_secret": ""}, notes="0"))
    rng = random.Random(1234)
    saver = spawn(SAVER, str(vault_path))
    try:
        after = 0
        for _ in range(100):
            before = after  # nothing runs between one kill's check and the next saver
            acked = saved_until_killed(saver, rng.uniform(0, 0.03)) or [before]
            after = int(VaultService.unlock(vault_path, PASSPHRASE).get("counter").notes)
            # Either the last acknowledged save, or one more whose acknowledgement died with it.
            assert after in (acked[-1], acked[-1] + 1)
            assert after >= before
    finally:
        saver.kill()
        saver.wait()
    # A killed save may leave a temp file: the next save cleans it, none piles up.
    service.reload()
    service.update_account("counter", lambda a: None)
    assert not list(vault_path.parent.glob("*.tmp"))


def test_two_writers_adding_50_each_end_with_100(service, vault_path):
    procs = [spawn(ADDER, str(vault_path), name) for name in ("left", "right")]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    labels = {a.label for a in VaultService.unlock(vault_path, PASSPHRASE).accounts}
    assert labels == {f"{side}-{i}" for side in ("left", "right") for i in range(50)}
