"""Rotation with generations against the real sandbox over loopback: store, verify,
retire; roll back when verification fails; TradeReady agents through the API; rollback on
request; a failed save after the venue issued a key leaves a rescue, not a loss; key age."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from vault.core.errors import VaultBusy, VaultError
from vault.core.model import Account, Health
from vault.ops.rotation import Rotation, store_or_rescue
from vault.core.service import VaultService

from .conftest import PASSPHRASE
from .test_lifecycle_capture import assert_no_secrets, canonical, ec_pem, secret_values, stored


def agent_key_works(sb, key: str) -> int:
    return httpx.get(sb.base_url("tradeready") + "/api/v1/account/info", headers={"X-API-Key": key}).status_code


# --- TradeReady agents: regenerate through the API ----------------------------------------------


def test_tradeready_agent_rotation_regenerates_verifies_and_retires(vault, sb, tmp_path):
    assert vault("register", "tradeready", "bot", "--display-name", "Rot", "--base-url", sb.base_url("tradeready")).code == 0
    before = stored(vault.vault_path, "bot")
    old_key = before.fields["agent_api_key"]
    r = vault("rotate", "bot")
    assert r.code == 0, r.err
    assert "new agent key works" in r.out
    after = stored(vault.vault_path, "bot")
    new_key = after.fields["agent_api_key"]
    assert new_key != old_key and after.fields["api_secret"] == before.fields["api_secret"]
    assert after.generations[-1].fields["agent_api_key"] == old_key
    assert after.rotated_at is not None
    # The venue: the new key works, the old one is dead.
    assert agent_key_works(sb, new_key) == 200
    assert agent_key_works(sb, old_key) == 401
    audit = json.loads(vault("audit", "bot", "--json").out)
    assert [(e["action"], e["outcome"]) for e in audit["entries"]][-3:] == [("rotate", "stored"), ("check", "ok"), ("rotate", "ok")]
    assert any(e["action"] == "login" for e in audit["entries"])
    secrets = secret_values("tradeready", before.fields) + [new_key]
    assert_no_secrets(secrets, r.out, r.err, json.dumps(audit), root=tmp_path)


def test_tradeready_rotation_keeps_the_new_key_when_the_old_one_is_revoked(service, sb):
    """Verification fails, but the venue has already revoked the old key: switching back
    would leave a dead key, so the new one stays and the outcome says so."""
    issued = sb.issue("tradeready", display_name="K")
    service.add_account(Account(label="bot", venue="tradeready", base_url=sb.base_url("tradeready"),
                                fields=canonical("tradeready", issued)))
    failing = lambda label: Health(ok=False, checked_at=time.time(), message="simulated outage")  # noqa: E731
    result = Rotation(service, failing).regenerate_tradeready("bot")
    assert (result.ok, result.outcome) == (False, "kept-new")
    assert "no longer accepts" in result.message
    acct = VaultService.unlock(service.file.path, PASSPHRASE).get("bot")
    assert acct.fields["agent_api_key"] != issued["agent_api_key"]
    assert agent_key_works(sb, acct.fields["agent_api_key"]) == 200
    assert agent_key_works(sb, issued["agent_api_key"]) == 401


def test_tradeready_rotation_goes_back_when_the_venue_still_takes_the_old_key(service, sb, monkeypatch):
    """The other branch: verification fails and the venue (against its documentation)
    still accepts the old key: the old key is current again, the new one kept."""
    issued = sb.issue("tradeready", display_name="B")
    service.add_account(Account(label="bot", venue="tradeready", base_url=sb.base_url("tradeready"),
                                fields=canonical("tradeready", issued)))
    failing = lambda label: Health(ok=False, checked_at=time.time(), message="simulated outage")  # noqa: E731
    probed = []
    monkeypatch.setattr(Rotation, "_key_works", lambda self, acct, key: probed.append(key) or True)
    result = Rotation(service, failing).regenerate_tradeready("bot")
    assert (result.ok, result.outcome) == (False, "rolled-back") and "still accepts the previous key" in result.message
    assert probed == [issued["agent_api_key"]]  # it asked about the old key, not the new one
    acct = VaultService.unlock(service.file.path, PASSPHRASE).get("bot")
    assert acct.fields["agent_api_key"] == issued["agent_api_key"]
    new = acct.generations[-1]
    assert new.reason == "failed verification" and new.fields["agent_api_key"] != issued["agent_api_key"]
    assert agent_key_works(sb, new.fields["agent_api_key"]) == 200  # the kept one is the venue's real new key
    trail = [(e.action, e.outcome) for e in VaultService.unlock(service.file.path, PASSPHRASE).data.audit]
    assert trail[-3:] == [("rotate", "stored"), ("rotate", "failed"), ("rollback", "ok")]


def test_tradeready_regenerate_refused_by_the_venue_changes_nothing(vault, sb):
    issued = sb.issue("tradeready", display_name="W")
    bad = canonical("tradeready", issued) | {"api_secret": "sk_live_" + "0" * 40}  # login will fail
    assert vault("capture", "tradeready", "bot", "--base-url", sb.base_url("tradeready"), input=json.dumps(bad)).code == 0
    r = vault("rotate", "bot")
    assert r.code == 32 and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1 and r.err.startswith("keyward: ")
    assert stored(vault.vault_path, "bot").fields == bad
    assert agent_key_works(sb, issued["agent_api_key"]) == 200
    # The failed login and the rotation it stopped are both in the trail.
    actions = [(e["action"], e["outcome"]) for e in json.loads(vault("audit", "bot", "--json").out)["entries"]]
    assert actions[-2:] == [("login", "failed"), ("rotate", "failed")]


def test_rotation_against_a_closed_port_keeps_the_old_credential(vault, sb, tmp_path):
    """A network error is a failed verification (web-UI venues) or stops the rotation
    before anything changes (TradeReady agents): one line, non-zero, nothing lost."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    first, second = sb.issue("powertrade"), sb.issue("powertrade")
    assert vault("capture", "powertrade", "pt", "--base-url", closed + "/powertrade", input=json.dumps(first)).code == 0
    r = vault("rotate", "pt", input=json.dumps(second))
    assert r.code == 30 and r.out == ""
    assert len(r.err.strip().splitlines()) == 1 and "cannot connect to PowerTrade" in r.err
    assert "keeps using the previous credential" in r.err
    acct = stored(vault.vault_path, "pt")
    assert acct.fields == first and acct.generations[-1].fields == second  # the new one kept, not lost

    tr = canonical("tradeready", sb.issue("tradeready", display_name="Closed"))
    assert vault("capture", "tradeready", "bot", "--base-url", closed + "/tradeready", input=json.dumps(tr)).code == 0
    r = vault("rotate", "bot")
    assert r.code == 31 and len(r.err.strip().splitlines()) == 1 and "cannot connect to TradeReady" in r.err
    assert stored(vault.vault_path, "bot").fields == tr and stored(vault.vault_path, "bot").generations == []
    actions = [(e["action"], e["outcome"]) for e in json.loads(vault("audit", "bot", "--json").out)["entries"]]
    assert actions[-2:] == [("login", "failed"), ("rotate", "failed")]
    assert agent_key_works(sb, tr["agent_api_key"]) == 200  # never reached the venue
    assert_no_secrets(secret_values("powertrade", first) + secret_values("powertrade", second)
                      + secret_values("tradeready", tr), r.out, r.err, root=tmp_path)


# --- keys made in the venue's web UI -------------------------------------------------------------


def _refused_set(sb, venue: str) -> dict[str, str]:
    """A well-formed credential set the venue refuses."""
    if venue == "powertrade":
        return {"api_key": "00000000-0000-4000-8000-000000000000", "private_key": ec_pem()}
    if venue == "hypersolutions":
        issued = sb.issue("hypersolutions")
        sb.disable_hyper_key(issued["api_key"])
        return issued
    issued = canonical("kiiex", sb.issue("kiiex"))
    return issued | {"api_secret": "f" * 32}


@pytest.mark.parametrize("venue", ["powertrade", "hypersolutions", "kiiex"])
def test_rotation_whose_verification_fails_rolls_back(vault, sb, tmp_path, venue):
    first = canonical(venue, sb.issue(venue))
    assert vault("capture", venue, "acct", "--base-url", sb.base_url(venue), input=json.dumps(first)).code == 0
    refused = _refused_set(sb, venue)
    r = vault("rotate", "acct", input=json.dumps(refused))
    assert r.code == 30, r.both
    lines = [x for x in r.err.splitlines() if x.startswith("keyward:")]
    assert len(lines) == 1 and "verification failed" in lines[0] and "keeps using the previous credential" in lines[0]
    acct = stored(vault.vault_path, "acct")
    assert acct.fields == first  # the old one is back in use
    assert acct.generations[-1].fields == refused and acct.generations[-1].reason == "failed verification"
    check = vault("check", "acct")
    assert check.code == 0, check.both  # and it still works, even for Kiiex after a failed login
    actions = [(e["action"], e["outcome"]) for e in json.loads(vault("audit", "acct", "--json").out)["entries"]]
    assert ("rollback", "ok") in actions and ("rotate", "ok") not in actions
    failed = actions.index(("rotate", "failed"))  # the rotation's own outcome, then the switch back
    assert actions[failed - 1] == ("check", "failed") and actions[failed + 1] == ("rollback", "ok")
    assert_no_secrets(secret_values(venue, first) + secret_values(venue, refused), r.out, r.err, check.both,
                      root=tmp_path)


@pytest.mark.parametrize("venue", ["powertrade", "hypersolutions", "kiiex"])
def test_rotation_that_verifies_retires_the_old_set_and_rollback_brings_it_back(vault, sb, tmp_path, venue):
    first = canonical(venue, sb.issue(venue))
    assert vault("capture", venue, "acct", "--base-url", sb.base_url(venue), input=json.dumps(first)).code == 0
    second = canonical(venue, sb.issue(venue))
    src = tmp_path / "src"
    src.mkdir()
    (src / "new.json").write_text(json.dumps(second))
    r = vault("rotate", "acct", "--file", str(src / "new.json"), "--shred-source")
    assert r.code == 0, r.both
    assert "the new credential works" in r.out and not (src / "new.json").exists()
    acct = stored(vault.vault_path, "acct")
    assert acct.fields == second and acct.generations[-1].fields == first
    back = vault("rotate", "--rollback", "acct")
    assert back.code == 0, back.both
    assert stored(vault.vault_path, "acct").fields == first
    again = vault("rotate", "--rollback", "acct")  # a rollback is itself reversible
    assert again.code == 0 and stored(vault.vault_path, "acct").fields == second
    assert_no_secrets(secret_values(venue, first) + secret_values(venue, second), r.both, back.both, again.both,
                      root=tmp_path)


def test_rotate_user_errors(vault, sb):
    pt = sb.issue("powertrade")
    assert vault("capture", "powertrade", "pt", "--base-url", sb.base_url("powertrade"), input=json.dumps(pt)).code == 0
    same = vault("rotate", "pt", input=json.dumps(pt))
    assert same.code == 20 and "already uses" in same.err
    none = vault("rotate", "--rollback", "pt")
    assert none.code == 20 and "no earlier credential" in none.err
    other = vault("rotate", "pt", input=json.dumps(sb.issue("hypersolutions")))
    assert other.code == 20 and "Hyper Solutions credentials, not PowerTrade" in other.err
    missing = vault("rotate", "nope", input="{}")
    assert missing.code == 22
    assert stored(vault.vault_path, "pt").fields == pt and stored(vault.vault_path, "pt").generations == []


def test_no_verify_stores_and_says_so(vault, sb):
    a, b = sb.issue("powertrade"), sb.issue("powertrade")
    assert vault("capture", "powertrade", "pt", input=json.dumps(a)).code == 0  # prod URL: never contacted
    r = vault("rotate", "pt", "--no-verify", input=json.dumps(b))
    assert r.code == 0 and "NOT verified" in r.out
    assert stored(vault.vault_path, "pt").fields == b


# --- a save that fails after the venue issued a key ------------------------------------------------


def test_a_failed_save_leaves_a_rescue_vault_not_a_lost_key(service, monkeypatch):
    from contextlib import contextmanager

    secret_fields = {"api_key": "abcdef0123456789", "jwt_key": "ONE-TIME-JWT-KEY-0123456789"}

    @contextmanager
    def busy(timeout: float = 10.0):
        raise VaultBusy("the vault is busy", hint="retry")
        yield

    monkeypatch.setattr(service.file, "locked", busy)

    def change(data):
        data.accounts.append(Account(label="h", venue="hypersolutions", base_url="https://x.invalid", fields=secret_fields))

    with pytest.raises(VaultError) as info:
        store_or_rescue(service, change, "the venue issued a key")
    message = str(info.value)
    assert "rescue" in message and secret_fields["jwt_key"] not in message
    rescue = next(service.file.path.parent.glob("*.rescue-*"))
    assert rescue.stat().st_mode & 0o777 == 0o600
    assert secret_fields["jwt_key"].encode() not in rescue.read_bytes()
    assert VaultService.unlock(rescue, PASSPHRASE).get("h").fields == secret_fields  # same passphrase opens it
    assert VaultService.unlock(service.file.path, PASSPHRASE).data.find("h") is None


# --- key age ----------------------------------------------------------------------------------------


def test_keys_past_due_are_marked_and_the_maximum_is_per_account(vault, sb):
    for label in ("old", "young"):
        assert vault("capture", "hypersolutions", label, "--base-url", sb.base_url("hypersolutions"),
                     input=json.dumps(sb.issue("hypersolutions"))).code == 0
    service = VaultService.unlock(vault.vault_path, PASSPHRASE)
    service.update_account("old", lambda a: setattr(a, "created_at", time.time() - 100 * 86400))
    listing = vault("list").out
    assert any(line.startswith("old") and "100d!" in line for line in listing.splitlines())
    assert any(line.startswith("young") and "!" not in line for line in listing.splitlines())
    ages = vault("key-age").out
    assert "PAST DUE" in next(x for x in ages.splitlines() if x.startswith("old"))
    check = vault("check", "old")
    assert "rotate!" in check.out
    assert vault("key-age", "old", "--max-days", "365").code == 0
    assert json.loads(vault("key-age", "old", "--json").out)[0]["key_overdue"] is False
    assert not any(r["key_overdue"] for r in json.loads(vault("list", "--json").out))
    # A rotation restarts the clock.
    assert vault("key-age", "old", "--max-days", "0").code == 0
    assert json.loads(vault("key-age", "old", "--json").out)[0]["key_overdue"] is True
    assert vault("rotate", "old", input=json.dumps(sb.issue("hypersolutions"))).code == 0
    assert json.loads(vault("key-age", "old", "--json").out)[0]["key_overdue"] is False


# --- on a terminal ------------------------------------------------------------------------------------


def test_rotate_on_a_terminal_asks_for_the_passphrase_then_a_hidden_paste(vault, sb):
    """The interactive path: passphrase prompt first (a typo must not cost the one-time
    secret), then the new key pasted without echo, verified against the venue."""
    import os
    import sys

    import pexpect

    from .conftest import REPO

    first, second = sb.issue("powertrade"), sb.issue("powertrade")
    assert vault("capture", "powertrade", "pt", "--base-url", sb.base_url("powertrade"), input=json.dumps(first)).code == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {"PYTHONPATH": str(REPO)}
    child = pexpect.spawn(sys.executable, ["-m", "vault", "--vault", str(vault.vault_path), "rotate", "pt"],
                          env=env, encoding="utf-8", timeout=30)
    child.expect("Vault passphrase: ")
    child.sendline(PASSPHRASE)
    if child.expect([r"Paste the NEW credentials PowerTrade showed.*input is hidden", r"Upgrade\? \[y/N\] "]) == 1:
        child.sendline("n")  # the test vault's cheap KDF: keep it
        child.expect(r"Paste the NEW credentials PowerTrade showed.*input is hidden")
    child.send(f"API Key: {second['api_key']}\r\r{second['private_key']}".replace("\n", "\r"))
    child.send("\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "rotated pt: the new credential works" in child.before
    acct = stored(vault.vault_path, "pt")
    assert acct.fields == second and acct.generations[-1].fields == first
    assert_no_secrets(secret_values("powertrade", first) + secret_values("powertrade", second), child.before)
