"""Rollback detection (issue 11): an older vault file put in place of the current one is
refused, by the CLI and by a running agent, and `keyward restore` brings one back on
purpose, saying what is lost and leaving it in the audit trail."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from vault.core.errors import VaultRolledBack
from vault.core.model import Account
from vault.core.service import VaultService

from .conftest import PASSPHRASE, SMALL_KDF

ROLLED_BACK = VaultRolledBack.exit_code


def kiiex(label: str) -> Account:
    return Account(label, "kiiex", "https://alphaprod.proxy.kiiex.io/ap",
                   {"api_key": "k-" + label, "api_secret": "s-" + label, "nonce": "n", "user_id": "1"})


def add(kw, label: str) -> None:
    done = kw("add", "kiiex", label, "--base-url", "https://alphaprod.proxy.kiiex.io/ap", "--from-json", "-",
              input=json.dumps({"api_key": "k-" + label, "api_secret": "s-" + label, "nonce": "n", "user_id": "1"}))
    assert done.code == 0, done.both


def one_line(done) -> str:
    lines = [line for line in done.err.splitlines() if line.startswith("keyward:")]
    assert len(lines) == 1 and "Traceback" not in done.both, done.both
    return lines[0]


def labels(kw) -> list[str]:
    done = kw("list", "--json")
    assert done.code == 0, done.both
    return [row["label"] for row in json.loads(done.out)]


def test_an_older_copy_put_in_place_is_refused_by_the_cli(vault, tmp_path):
    add(vault, "a")
    add(vault, "gone")
    old = tmp_path / "old.kw"
    shutil.copy2(vault.vault_path, old)
    assert vault("remove", "gone", "--yes").code == 0
    shutil.copy2(old, vault.vault_path)  # what `mv` does for anyone who can write the directory
    done = vault("list")
    assert done.code == ROLLED_BACK
    line = one_line(done)
    assert "older than generation" in line and f"keyward restore {vault.vault_path}" in line
    assert done.out == ""  # the removed account does not come back
    assert vault("audit").code == ROLLED_BACK  # nor does `audit` call it intact


def test_the_bak_copied_over_the_vault_is_refused(vault):
    add(vault, "a")
    add(vault, "b")
    shutil.copy2(vault.vault_path.with_name("vault.kw.bak"), vault.vault_path)
    assert vault("list").code == ROLLED_BACK


def test_another_history_at_the_same_generation_is_refused(service, vault_path):
    """Two files can claim one generation (a rescue file and the next save): the audit
    head tells them apart."""
    service.add_account(kiiex("a"))
    fork = vault_path.with_name("fork.kw")
    other = VaultService.unlock(vault_path, PASSPHRASE)
    shutil.copy2(vault_path, fork)
    service.add_account(kiiex("here"))  # generation 3 at the vault path
    forked = VaultService.unlock(fork, PASSPHRASE)
    forked.add_account(kiiex("elsewhere"))  # generation 3 of another history
    shutil.copy2(fork, vault_path)
    with pytest.raises(VaultRolledBack, match="another history"):
        VaultService.unlock(vault_path, PASSPHRASE)
    with pytest.raises(VaultRolledBack):
        other.reload()


def test_a_holder_that_saw_a_newer_generation_refuses_even_without_the_state_dir(service, vault_path, monkeypatch, tmp_path):
    service.add_account(kiiex("a"))
    old = vault_path.read_bytes()
    service.add_account(kiiex("b"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "elsewhere"))  # the record is gone
    vault_path.write_bytes(old)
    with pytest.raises(VaultRolledBack):
        service.reload()


def test_restore_brings_an_older_file_back_on_purpose_and_says_what_is_lost(vault, tmp_path):
    add(vault, "a")
    old = tmp_path / "old.kw"
    shutil.copy2(vault.vault_path, old)
    add(vault, "later")
    refused = vault("restore", str(old))  # no terminal to confirm on, and no --yes
    assert refused.code != 0 and "--yes" in refused.err
    assert labels(vault) == ["a", "later"]

    done = vault("restore", str(old), "--yes")
    assert done.code == 0, done.both
    assert "later" in done.out and "lost" in done.out
    assert labels(vault) == ["a"]
    trail = json.loads(vault("audit", "--json").out)
    assert trail["intact"] is True
    assert trail["entries"][-1]["action"] == "restore" and "old.kw" in trail["entries"][-1]["detail"]
    add(vault, "after")  # and the vault carries on from there
    assert labels(vault) == ["a", "after"]


def test_restore_accepts_the_rolled_back_file_itself(vault, tmp_path):
    add(vault, "a")
    old = tmp_path / "old.kw"
    shutil.copy2(vault.vault_path, old)
    add(vault, "b")
    shutil.copy2(old, vault.vault_path)
    assert vault("list").code == ROLLED_BACK
    done = vault("restore", str(vault.vault_path), "--yes")
    assert done.code == 0, done.both
    assert "generation" in done.out
    assert labels(vault) == ["a"]


def test_init_at_a_path_starts_a_new_history(vault):
    add(vault, "a")
    add(vault, "b")
    for name in ("vault.kw", "vault.kw.bak"):
        os.unlink(vault.vault_path.with_name(name))
    assert vault.init().code == 0
    assert labels(vault) == []


# --- a running agent ---------------------------------------------------------------------------


@pytest.fixture
def agent_runtime(kw):
    from .test_agent import short_private_dir

    with short_private_dir() as run:
        kw.env["XDG_RUNTIME_DIR"] = str(run)
        yield run
    kw("lock", passphrase=False)


def test_a_running_agent_refuses_a_file_older_than_the_one_it_holds(vault, agent_runtime, tmp_path):
    add(vault, "a")
    add(vault, "gone")
    old = tmp_path / "old.kw"
    shutil.copy2(vault.vault_path, old)
    assert vault("remove", "gone", "--yes").code == 0
    started = vault("unlock", "--ttl", "10m", "--json")
    assert started.code == 0, started.both
    pid = json.loads(started.out)["pid"]
    try:
        assert labels(vault) == ["a"]
        shutil.copy2(old, vault.vault_path)
        done = vault("list", passphrase=False)  # served by the agent, which reloads first
        assert done.code == ROLLED_BACK, done.both
        one_line(done)
        assert "gone" not in done.out

        restored = vault("restore", str(old), "--yes")
        assert restored.code == 0, restored.both
        assert sorted(labels(vault)) == ["a", "gone"]
    finally:
        vault("lock", passphrase=False)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_unlock_refuses_to_start_an_agent_on_a_rolled_back_vault(vault, agent_runtime, tmp_path):
    add(vault, "a")
    old = tmp_path / "old.kw"
    shutil.copy2(vault.vault_path, old)
    add(vault, "b")
    shutil.copy2(old, vault.vault_path)
    done = vault("unlock", "--ttl", "10m")
    assert done.code == ROLLED_BACK, done.both
    one_line(done)
    assert "unlocked" not in done.out


RACER = r"""
import json, sys
from vault.core.errors import KeywardError
from vault.core.service import VaultService
path, passphrase, role, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
errors = []
service = VaultService.unlock(path, passphrase)
for i in range(n):
    try:
        if role == "writer":
            service.transact(lambda data: setattr(data.settings, "key_max_age_days", 30 + i % 50))
        else:
            service.reload()
            VaultService.unlock(path, passphrase)  # a fresh process's open, as every command's
    except KeywardError as exc:
        errors.append(type(exc).__name__ + ": " + exc.message[:120])
print(json.dumps(errors))
"""


def test_saves_by_other_processes_are_never_taken_for_a_rollback(service, vault_path):
    """Found by running the hostile suite's calls side by side: a process that read
    generation N while another saved N+1 (and recorded it as seen) was refused as rolled
    back.  Two writers and two readers, for real, for a while: no error at all."""
    import subprocess
    import sys

    from .conftest import REPO

    service.add_account(kiiex("a"))
    cmd = [sys.executable, "-c", RACER, str(vault_path), PASSPHRASE]
    procs = [subprocess.Popen(cmd + [role, "40"], stdout=subprocess.PIPE, text=True, cwd=REPO,
                              env=os.environ | {"PYTHONPATH": str(REPO)})
             for role in ("writer", "writer", "reader", "reader")]
    errors = [json.loads(p.communicate(timeout=240)[0] or "[]") for p in procs]
    assert errors == [[], [], [], []], errors
