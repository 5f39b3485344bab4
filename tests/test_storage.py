"""Storage and the service layer: modes, atomic saves, .bak, locking, no lost updates."""

from __future__ import annotations

import os
import stat
import threading

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


def test_passphrase_change_rewraps_only_the_key(service, vault_path):
    service.add_account(acct("a"))
    key_before = service._key
    service.change_passphrase("a whole new passphrase")
    with pytest.raises(WrongPassphrase):
        VaultService.unlock(vault_path, PASSPHRASE)
    reopened = VaultService.unlock(vault_path, "a whole new passphrase")
    assert reopened._key == key_before  # same data key, new wrap
    assert [a.label for a in reopened.accounts] == ["a"]


def test_passphrase_change_elsewhere_does_not_lock_out_an_open_holder(service, vault_path):
    other = VaultService.unlock(vault_path, PASSPHRASE)
    service.change_passphrase("changed elsewhere")
    other.add_account(acct("still-works"))  # same data key: reload succeeds
    assert [a.label for a in VaultService.unlock(vault_path, "changed elsewhere").accounts] == ["still-works"]


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
