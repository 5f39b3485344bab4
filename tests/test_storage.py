"""Storage and the service layer: modes, atomic saves, .bak, locking, no lost updates."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from vault.core import fileformat as ff
from vault.core.errors import AccountExists, AccountNotFound, VaultBusy, VaultChanged, VaultExists, VaultNotFound, WrongPassphrase
from vault.core.model import Account
from vault.core.service import VaultService
from vault.core.storage import VaultFile, permission_warning

from .conftest import PASSPHRASE, SMALL_KDF


def acct(label: str, secret: str = "sk_live_SECRETVALUE123") -> Account:
    return Account(label, "tradeready", "https://api.tradeready.io", {"api_key": "ak_live_" + label, "api_secret": secret})


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_vault_and_directory_are_private(service, vault_path):
    assert mode(vault_path) == 0o600
    assert mode(vault_path.parent) == 0o700
    service.add_account(acct("a"))
    assert mode(vault_path) == 0o600
    assert mode(vault_path.with_name("vault.kw.bak")) == 0o600


def test_create_refuses_to_overwrite(service, vault_path):
    with pytest.raises(VaultExists):
        VaultService.create(vault_path, PASSPHRASE, SMALL_KDF)


def test_missing_vault_is_typed(tmp_path):
    with pytest.raises(VaultNotFound, match="keyward init"):
        VaultService.unlock(tmp_path / "nope.kw", PASSPHRASE)


def test_permission_warning_names_the_fix(service, vault_path):
    assert permission_warning(vault_path) is None
    vault_path.chmod(0o644)
    assert "chmod 600" in permission_warning(vault_path)


def test_wrong_passphrase_leaves_the_file_byte_for_byte(service, vault_path):
    service.add_account(acct("a"))
    before = vault_path.read_bytes()
    with pytest.raises(WrongPassphrase):
        VaultService.unlock(vault_path, "wrong")
    assert vault_path.read_bytes() == before


def test_every_save_bumps_generation_and_keeps_one_bak(service, vault_path):
    gens = []
    for i in range(3):
        service.add_account(acct(f"a{i}"))
        gens.append(ff.parse(vault_path.read_bytes()).generation)
    assert gens == [2, 3, 4]
    bak = vault_path.with_name("vault.kw.bak")
    assert ff.parse(bak.read_bytes()).generation == 3
    assert [a.label for a in VaultService.unlock(bak, PASSPHRASE).accounts] == ["a0", "a1"]
    leftovers = [p.name for p in vault_path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_save_removes_exactly_the_temp_files_a_killed_save_leaves(service, vault_path):
    """What a save clears before writing: `.vault.kw.<anything>.tmp` (the shell pattern it
    used to glob), never a file of the user's that merely looks alike."""
    import fnmatch

    names = [".vault.kw.abc123.tmp", ".vault.kw..tmp", ".vault.kw.x.y.tmp", ".vault.kw.tmp", "vault.kw.abc.tmp",
             ".vault.kw.abc.tmpx", ".vault.kwx.abc.tmp", "notes.tmp", ".other.kw.abc.tmp"]
    for name in names:
        (vault_path.parent / name).write_text("x")
    service.add_account(acct("after-a-crash"))
    left = sorted(p.name for p in vault_path.parent.iterdir() if p.name in names)
    assert left == sorted(n for n in names if not fnmatch.fnmatch(n, ".vault.kw.*.tmp"))
    assert ".vault.kw.abc123.tmp" not in left and ".vault.kw.tmp" in left


def test_a_saves_temp_file_is_created_private_and_never_through_a_planted_link(tmp_path, monkeypatch):
    from vault.core import storage

    target = tmp_path / "vault.kw"
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    planted = iter([bytes.fromhex("aaaaaaaaaaaa"), bytes.fromhex("bbbbbbbbbbbb")])
    (tmp_path / ".vault.kw.aaaaaaaaaaaa.tmp").symlink_to(victim)  # the first name drawn is taken
    monkeypatch.setattr(storage.os, "urandom", lambda n: next(planted))
    storage.write_private(target, b"new bytes")
    assert victim.read_bytes() == b"untouched"
    assert target.read_bytes() == b"new bytes" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not (tmp_path / ".vault.kw.bbbbbbbbbbbb.tmp").exists()


def test_failed_change_is_rolled_back(service, vault_path):
    service.add_account(acct("a"))
    before = vault_path.read_bytes()

    def half_change(data):
        data.accounts.clear()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        service.transact(half_change)
    assert [a.label for a in service.accounts] == ["a"]
    assert vault_path.read_bytes() == before


def test_no_lost_update_between_two_holders(service, vault_path):
    other = VaultService.unlock(vault_path, PASSPHRASE)  # the dashboard, say
    service.add_account(acct("from-cli"))
    other.add_account(acct("from-dashboard"))  # must reload, not overwrite
    assert sorted(a.label for a in VaultService.unlock(vault_path, PASSPHRASE).accounts) == ["from-cli", "from-dashboard"]
    assert other.generation == service.generation + 1


def test_reload_sees_other_process_changes(service, vault_path):
    other = VaultService.unlock(vault_path, PASSPHRASE)
    assert other.reload() is False
    service.add_account(acct("new"))
    assert other.changed_on_disk()
    assert other.reload() is True
    assert [a.label for a in other.accounts] == ["new"]


def test_duplicate_labels_are_refused(service):
    service.add_account(acct("a"))
    with pytest.raises(AccountExists):
        service.add_account(acct("a"))


def test_unknown_account_lists_known_ones(service):
    service.add_account(acct("alpha"))
    with pytest.raises(AccountNotFound, match="alpha"):
        service.get("beta")


def test_lock_times_out_with_vault_busy(service, vault_path):
    vfile = VaultFile(vault_path)
    held = threading.Event()
    release = threading.Event()

    def holder():
        with vfile.locked():
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(VaultBusy, match="busy"):
            with VaultFile(vault_path).locked(timeout=0.2):
                pass
    finally:
        release.set()
        t.join()


def test_passphrase_change_draws_a_new_data_key(service, vault_path):
    service.add_account(acct("a"))
    key_before = service._key
    report = service.change_passphrase("a whole new passphrase")
    with pytest.raises(WrongPassphrase):
        VaultService.unlock(vault_path, PASSPHRASE)
    reopened = VaultService.unlock(vault_path, "a whole new passphrase")
    assert reopened._key != key_before  # a new data key, not only a new wrap (issue 11)
    assert [a.label for a in reopened.accounts] == ["a"]
    assert report.resealed == [vault_path.with_name("vault.kw.bak")]


def test_passphrase_change_elsewhere_tells_an_open_holder_to_unlock_again(service, vault_path):
    other = VaultService.unlock(vault_path, PASSPHRASE)
    service.change_passphrase("changed elsewhere")
    with pytest.raises(VaultChanged, match="unlock it again"):  # its data key opens nothing any more
        other.add_account(acct("too-late"))
    assert VaultService.unlock(vault_path, "changed elsewhere").accounts == []


def test_rekey_changes_the_data_key_and_stale_holders_are_told(service, vault_path):
    service.add_account(acct("a"))
    other = VaultService.unlock(vault_path, PASSPHRASE)
    key_before = service._key
    service.rekey(PASSPHRASE)
    assert service._key != key_before
    assert [a.label for a in VaultService.unlock(vault_path, PASSPHRASE).accounts] == ["a"]
    with pytest.raises(VaultChanged, match="unlock it again"):
        other.add_account(acct("b"))


def test_kdf_upgrade_via_passphrase_change(service, vault_path):
    service.change_passphrase(PASSPHRASE, ff.KdfParams(2, 16 * 1024, 1))
    assert ff.parse(vault_path.read_bytes()).kdf == ff.KdfParams(2, 16 * 1024, 1)


def test_lock_drops_decrypted_state(service):
    from vault.core.errors import VaultLocked

    service.add_account(acct("a"))
    service.lock()
    assert service.locked
    with pytest.raises(VaultLocked):
        service.accounts


def test_every_venue_round_trips(service, vault_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    accounts = [
        Account("pt", "powertrade", "https://api.rest.test.power.trade", {"api_key": "k", "private_key": pem}, env="test"),
        Account("tr", "tradeready", "https://api.tradeready.io", {"api_key": "ak_live_1", "api_secret": "sk_live_1", "agent_id": "a1"}),
        Account("hy", "hypersolutions", "https://api.hypersolutions.co", {"api_key": "h", "jwt_key": "j", "app_key": "ak", "app_secret": "as"}),
        Account("ki", "kiiex", "https://alphaprod.proxy.kiiex.io/ap", {"api_key": "k", "api_secret": "s", "nonce": "n", "user_id": "7", "username": "u"}),
    ]
    for a in accounts:
        a.tags, a.notes = ["t"], "note"
        service.add_account(a)
    reopened = VaultService.unlock(vault_path, PASSPHRASE)
    assert [(a.label, a.venue, a.fields, a.env, a.tags, a.notes, a.id) for a in reopened.accounts] == [
        (a.label, a.venue, a.fields, a.env, a.tags, a.notes, a.id) for a in accounts
    ]


def test_a_save_killed_between_backup_and_rename_leaves_nothing_behind(service, vault_path):
    """Simulate the kill: .bak already names the current file (linked, then SIGKILL
    before the rename).  The next save must keep .bak sound and leave no link file."""
    service.add_account(acct("a"))
    bak = vault_path.with_name("vault.kw.bak")
    os.unlink(bak)
    os.link(vault_path, bak)
    service.add_account(acct("b"))
    assert not list(vault_path.parent.glob("*.tmp"))
    assert [a.label for a in VaultService.unlock(bak, PASSPHRASE).accounts] == ["a"]
    assert [a.label for a in VaultService.unlock(vault_path, PASSPHRASE).accounts] == ["a", "b"]


# --- files without surprises (issue 11 item 5, issue 14 item 6) ------------------------------------


def test_a_symlink_planted_at_the_lock_file_creates_nothing(service, vault_path, tmp_path):
    from vault.core.errors import UnsafeVaultPath

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lock = vault_path.with_name("vault.kw.lock")
    lock.unlink(missing_ok=True)
    lock.symlink_to(elsewhere / "created-by-keyward")
    before = vault_path.read_bytes()
    with pytest.raises(UnsafeVaultPath, match="symbolic link"):
        service.add_account(acct("a"))
    assert list(elsewhere.iterdir()) == []
    assert vault_path.read_bytes() == before


def test_the_cli_refuses_the_lock_symlink_in_one_line(vault, tmp_path):
    assert vault("add", "kiiex", "a", "--base-url", "https://alphaprod.proxy.kiiex.io/ap", "--from-json", "-",
                 input=json.dumps({"api_key": "k", "api_secret": "s", "nonce": "n", "user_id": "1"})).code == 0
    elsewhere = tmp_path / "target"
    lock = vault.vault_path.with_name("vault.kw.lock")
    lock.unlink(missing_ok=True)
    lock.symlink_to(elsewhere)
    before = vault.vault_path.read_bytes()
    done = vault("remove", "a", "--yes")
    assert done.code == 52, done.both
    assert len(done.err.strip().splitlines()) == 1 and "symbolic link" in done.err and "Traceback" not in done.both
    assert not elsewhere.exists() and vault.vault_path.read_bytes() == before


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_fifos_devices_and_directories_are_refused_before_reading(kw, tmp_path, kind):
    if kind == "fifo":
        target = tmp_path / "fifo.kw"
        os.mkfifo(target)
    elif kind == "device":
        target = Path("/dev/zero")
    else:
        target = tmp_path / "adir"
        target.mkdir()
    done = kw("--vault", str(target), "list", timeout=30)  # a FIFO must not hang, /dev/zero must not fill memory
    assert done.code == 52, done.both
    lines = done.err.strip().splitlines()
    assert lines[-1].startswith("keyward: ") and "Traceback" not in done.both and "internal error" not in done.err
    assert {"fifo": "a FIFO", "device": "a device", "directory": "a directory"}[kind] in lines[-1]


def test_a_symlinked_vault_path_is_followed_everywhere(vault, tmp_path):
    """One rule: the link is resolved once, and the target is the vault (saves replace the
    target and leave the link, .bak and lock live beside the target)."""
    real = vault.vault_path
    link_dir = tmp_path / "links"
    link_dir.mkdir(mode=0o700)
    link = link_dir / "vault.kw"
    link.symlink_to(real)
    done = vault("--vault", str(link), "add", "kiiex", "a", "--base-url", "https://alphaprod.proxy.kiiex.io/ap",
                 "--from-json", "-", input=json.dumps({"api_key": "k", "api_secret": "s", "nonce": "n", "user_id": "1"}))
    assert done.code == 0, done.both
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert sorted(p.name for p in link_dir.iterdir()) == ["vault.kw"]  # no .bak or lock beside the link
    bak = real.with_name("vault.kw.bak")
    assert bak.is_file() and not bak.is_symlink()
    assert [a.label for a in VaultService.unlock(real, PASSPHRASE).accounts] == ["a"]
    assert VaultFile(link).path == VaultFile(real).path
    from vault.agent import resolved_vault

    assert str(VaultFile(link).path) == resolved_vault(link)  # the agent's name for it


def test_permission_warnings_name_the_right_fix_for_files_and_directories(service, vault_path, tmp_path):
    assert permission_warning(vault_path) is None
    vault_path.parent.chmod(0o755)
    warning = permission_warning(vault_path)
    assert f"chmod 700 {vault_path.parent}" in warning and "chmod 600" not in warning
    vault_path.chmod(0o644)
    warning = permission_warning(vault_path)
    assert f"chmod 600 {vault_path}" in warning and f"chmod 700 {vault_path.parent}" in warning
    # --vault DIR: a directory is never told to chmod 600
    assert "chmod 600" not in permission_warning(vault_path.parent)
    assert f"chmod 700 {vault_path.parent}" in permission_warning(vault_path.parent)
    vault_path.parent.chmod(0o700)


def test_init_in_an_existing_open_directory_warns(kw, tmp_path):
    kw.vault_path.parent.mkdir(mode=0o755)
    kw.vault_path.parent.chmod(0o755)
    done = kw.init()
    assert done.code == 0, done.both
    assert f"chmod 700 {kw.vault_path.parent}" in done.err
    done = kw("--vault", str(kw.vault_path.parent), "list")
    assert "chmod 600" not in done.err and done.code == 52


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs: a real full disk (needs root; skipped otherwise)."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the ENOSPC path is covered by the tmpfs test as root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(directory: Path) -> None:
    """Fill the file system to its last byte (unbuffered: nothing left to flush on close)."""
    with open(directory / "filler", "wb", buffering=0) as fh:
        for size in (65536, 4096, 1):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError:
                pass


def test_a_full_disk_loses_nothing_and_says_what_was_not_stored(kw, small_disk):
    from .conftest import KeywardCLI

    cli = KeywardCLI(small_disk / "vaultdir" / "vault.kw", kw.passphrase_file, Path(kw.env["HOME"]))
    assert cli.init().code == 0
    creds = {"api_key": "k", "api_secret": "one-time-secret", "nonce": "n", "user_id": "1"}
    assert cli("add", "kiiex", "first", "--base-url", "https://alphaprod.proxy.kiiex.io/ap", "--from-json", "-",
               input=json.dumps(creds)).code == 0
    before = {p.name: p.read_bytes() for p in cli.vault_path.parent.iterdir() if p.is_file()}
    fill(small_disk)
    done = cli("add", "kiiex", "second", "--base-url", "https://alphaprod.proxy.kiiex.io/ap", "--from-json", "-",
               input=json.dumps(creds))
    assert done.code == 51, done.both
    lines = done.err.strip().splitlines()
    assert len(lines) == 1 and "internal error" not in done.err and "Traceback" not in done.err
    assert "'second'" in lines[0] and "not stored" in lines[0].lower() and "space" in lines[0]
    assert "one-time-secret" not in done.both
    after = {p.name: p.read_bytes() for p in cli.vault_path.parent.iterdir() if p.is_file()}
    assert after == before  # the vault, its .bak and lock untouched; no temp or rescue file
    (small_disk / "filler").unlink()
    assert [a.label for a in VaultService.unlock(cli.vault_path, PASSPHRASE).accounts] == ["first"]


def test_a_read_only_file_system_is_a_typed_error(kw, small_disk):
    import subprocess

    from .conftest import KeywardCLI

    cli = KeywardCLI(small_disk / "vaultdir" / "vault.kw", kw.passphrase_file, Path(kw.env["HOME"]))
    assert cli.init().code == 0
    before = cli.vault_path.read_bytes()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    done = cli("remove", "nosuch", "--yes")
    assert done.code == 22  # reading still works
    done = cli("setting", "x", "token_lifetime", "30")
    done = cli("add", "kiiex", "x", "--base-url", "https://alphaprod.proxy.kiiex.io/ap", "--from-json", "-",
               input=json.dumps({"api_key": "k", "api_secret": "s", "nonce": "n", "user_id": "1"}))
    assert done.code == 51, done.both
    assert "read-only" in done.err and "internal error" not in done.err and len(done.err.strip().splitlines()) == 1
    assert cli.vault_path.read_bytes() == before


def test_a_directory_at_the_lock_path_is_a_typed_error(service, vault_path):
    from vault.core.errors import UnsafeVaultPath

    lock = vault_path.with_name("vault.kw.lock")
    lock.unlink(missing_ok=True)
    lock.mkdir()
    with pytest.raises(UnsafeVaultPath, match="not a regular file"):
        service.add_account(acct("a"))


@pytest.mark.parametrize("code", ["ENOSPC", "EDQUOT", "EROFS", "EACCES"])
def test_a_save_refused_by_the_file_system_is_typed_and_changes_nothing(service, vault_path, monkeypatch, code):
    """The same, injected where a real disk reports it (a delayed-allocation ENOSPC comes
    from fsync): for machines where the tmpfs tests cannot mount."""
    import errno

    from vault.core.errors import VaultSaveFailed

    service.add_account(acct("a"))
    before = {p.name: p.read_bytes() for p in vault_path.parent.iterdir()}
    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(VaultSaveFailed, match="unchanged") as err:
        service.add_account(acct("b"))
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert "\n" not in str(err.value) and str(vault_path) in str(err.value)
    assert {p.name: p.read_bytes() for p in vault_path.parent.iterdir()} == before  # no temp file left either
    assert [a.label for a in service.accounts] == ["a"]
    assert [a.label for a in VaultService.unlock(vault_path, PASSPHRASE).accounts] == ["a"]


def test_an_unlock_checksums_the_file_once(service, vault_path, monkeypatch):
    """The checksum is SHA-256 over the whole file: at 10,000 accounts a second pass was
    10 ms.  Choosing the KDF budget reads only the cost (fileformat.peek_cost)."""
    from vault.core import digest

    for i in range(50):
        service.add_account(acct(f"a{i}"))
    size = vault_path.stat().st_size
    passes = []
    real = digest.sha256
    monkeypatch.setattr(digest, "sha256", lambda data: passes.append(len(data)) or real(data))
    VaultService.unlock(vault_path, PASSPHRASE)
    assert [n for n in passes if n >= size - 32] == [size - 32]
