"""The audit trail: every lifecycle action recorded (time, account, action, outcome, never a
secret), inside the encrypted payload, hash-chained so that an edited, inserted or deleted
entry is detected; bounded retention that keeps the chain verifiable."""

from __future__ import annotations

import json

import pytest

from vault.core import audit
from vault.core.errors import InputError
from vault.core.model import VaultData
from vault.core.service import VaultService

from .conftest import PASSPHRASE
from .test_lifecycle_capture import assert_no_secrets, canonical, secret_values


def open_vault(kw) -> VaultService:
    return VaultService.unlock(kw.vault_path, PASSPHRASE)


def test_every_lifecycle_action_is_recorded_and_none_holds_a_secret(vault, sb, tmp_path):
    first, second = sb.issue("powertrade"), sb.issue("powertrade")
    url = sb.base_url("powertrade")
    assert vault("capture", "powertrade", "pt", "--base-url", url, input=json.dumps(first)).code == 0
    assert vault("token", "pt").code == 0  # a mint (its output is the token, not a key)
    assert vault("show", "pt", "--reveal").code == 0
    assert vault("export", "pt", "--format", "json", "--yes").code == 0
    assert vault("rotate", "pt", input=json.dumps(second)).code == 0
    assert vault("rotate", "--rollback", "pt").code == 0
    assert vault("register", "tradeready", "tr", "--display-name", "Aud", "--base-url", sb.base_url("tradeready")).code == 0
    assert vault("login", "tr").code == 0
    tr_fields = open_vault(vault).get("tr").fields
    assert vault("remove", "tr", "--yes").code == 0
    r = vault("audit", "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["intact"] is True and report["broken_at"] is None
    actions = {(e["action"], e["account"]) for e in report["entries"]}
    for expected in [("capture", "pt"), ("mint", "pt"), ("reveal", "pt"), ("export", "pt"), ("rotate", "pt"),
                     ("rollback", "pt"), ("register", "tr"), ("login", "tr"), ("remove", "tr")]:
        assert expected in actions, expected
    for e in report["entries"]:
        assert e["at"].endswith("Z") and e["outcome"] and len(e["digest"]) == 64
    # The trail inside the payload holds no secret value (nor does the rendered one).
    service = open_vault(vault)
    trail = json.dumps([vars(e) for e in service.data.audit])
    secrets = secret_values("powertrade", first) + secret_values("powertrade", second)
    assert_no_secrets(secrets + secret_values("tradeready", tr_fields), trail, r.out)
    text = vault("audit", "pt")
    assert text.code == 0 and "audit trail intact" in text.out and "head " in text.out
    assert all(" pt " in line for line in text.out.splitlines()[:-1])
    assert len(vault("audit", "--limit", "2").out.splitlines()) == 3


@pytest.mark.parametrize("tamper", ["edit", "delete", "swap", "insert", "drop_head"])
def test_a_tampered_trail_is_detected(vault, sb, tamper):
    issued = canonical("kiiex", sb.issue("kiiex"))
    assert vault("capture", "kiiex", "kx", input=json.dumps(issued)).code == 0
    for _ in range(2):
        assert vault("show", "kx", "--reveal").code == 0
    assert vault("export", "kx", "--format", "env", "--yes").code == 0
    assert vault("audit").code == 0
    service = open_vault(vault)

    def change(data: VaultData) -> None:
        entries = data.audit
        if tamper == "edit":  # hide what an export was
            entries[3].detail = "nothing to see"
        elif tamper == "delete":  # make a reveal disappear
            del entries[2]
        elif tamper == "swap":
            entries[1], entries[2] = entries[2], entries[1]
        elif tamper == "insert":
            forged = audit.AuditEntry(at=entries[1].at, action="check", account="kx", outcome="ok",
                                      prev=entries[1].digest)
            forged.digest = audit._digest(forged)
            entries.insert(2, forged)
        else:  # drop the oldest entry, as a careless "retention" would
            del entries[0]

    service.transact(change)  # sealed with the real key: only the chain can tell
    r = vault("audit")
    assert r.code == 14, r.both
    lines = [x for x in r.err.splitlines() if x.startswith("keyward:")]
    assert len(lines) == 1 and "audit trail is broken at entry" in lines[0]
    assert json.loads(vault("audit", "--json").out)["intact"] is False
    assert vault("list").code == 0  # the accounts are unaffected


def test_expect_head_detects_a_rewritten_history(vault, sb):
    assert vault("capture", "hypersolutions", "h", input=json.dumps(sb.issue("hypersolutions"))).code == 0
    head = json.loads(vault("audit", "--json").out)["head"]
    assert vault("show", "h", "--reveal").code == 0
    assert vault("audit", "--expect-head", head[:16]).code == 0
    # Someone holding the data key rewrites the whole chain consistently...
    service = open_vault(vault)

    def rewrite(data: VaultData) -> None:
        old = data.audit
        data.audit = []
        for e in old:
            audit.append(data, e.at, e.action, e.account, e.outcome, "rewritten" if e.action == "capture" else e.detail)

    service.transact(rewrite)
    assert vault("audit").code == 0  # ...which the chain alone cannot see,
    r = vault("audit", "--expect-head", head)  # but the head noted earlier can
    assert r.code == 14 and "history was rewritten" in r.err
    assert vault("audit", "--expect-head", "xyz").code == InputError.exit_code


def test_a_truncated_tail_needs_the_noted_head(vault, sb):
    """Dropping the newest entries leaves a valid chain: only a head noted outside the
    vault shows it (docs/lifecycle.md says so)."""
    assert vault("capture", "hypersolutions", "h", input=json.dumps(sb.issue("hypersolutions"))).code == 0
    assert vault("export", "h", "--format", "json", "--yes").code == 0
    head = json.loads(vault("audit", "--json").out)["head"]
    service = open_vault(vault)
    service.transact(lambda data: data.audit.pop())  # the export vanishes
    assert vault("audit").code == 0
    assert vault("audit", "--expect-head", head).code == 14


def test_retention_keeps_the_newest_entries_behind_a_verifiable_anchor(monkeypatch):
    monkeypatch.setattr(audit, "MAX_ENTRIES", 50)
    data = VaultData()
    for i in range(400):
        audit.append(data, 1_000_000.0 + i, "mint", "bot", "ok", f"n={i}")
    assert len(data.audit) <= 50
    anchor = data.audit[0]
    assert anchor.action == audit.ANCHOR
    assert audit.dropped_count(anchor) + len(data.audit) - 1 == 400  # every entry accounted for
    assert data.audit[-1].detail == "n=399"
    assert audit.verify(data.audit) is None
    # Tampering after a trim is still detected...
    edited = [audit.AuditEntry(**vars(e)) for e in data.audit]
    edited[10].detail = "edited"
    assert audit.verify(edited) == 10
    # ...and so is removing the anchor, or forging one that lies about its count.
    assert audit.verify(data.audit[1:]) == 0
    forged = [audit.AuditEntry(**vars(e)) for e in data.audit]
    forged[0].detail = "0 earlier entries removed by retention"
    assert audit.verify(forged) == 0


def test_retention_applies_through_the_service(service, monkeypatch):
    monkeypatch.setattr(audit, "MAX_ENTRIES", 20)
    for _ in range(60):
        service.record("check", None)
    again = VaultService.unlock(service.file.path, PASSPHRASE)
    assert len(again.data.audit) <= 20 and audit.verify(again.data.audit) is None
    assert again.data.audit[0].action == audit.ANCHOR


def test_a_save_reuses_the_trail_it_encoded_and_writes_the_same_bytes(tmp_path) -> None:
    """Each save rewrites the whole trail; a service keeps each entry's JSON text from its
    last save (vault.core.service.AuditTexts) and encodes only new entries.  The payload
    must be byte for byte what encoding everything gives, after appends, a trim (the
    entries move), a reload of another process's save, and an entry changed in place
    (which no code does: its new values must be what is saved, never the old text)."""
    import json
    import time

    from vault.core import audit, fileformat as ff
    from vault.core.service import VaultService, encode_payload

    from .conftest import PASSPHRASE, SMALL_KDF

    path = tmp_path / "vault.kw"
    service = VaultService.create(path, PASSPHRASE, SMALL_KDF)

    def saved_payload() -> bytes:
        blob = path.read_bytes()
        return ff.decrypt(blob, PASSPHRASE)[2]

    for step in range(30):
        service.record("reveal", f"acct-{step}", "ok", f"step {step} ☃")
        assert saved_payload() == encode_payload(service.data), step
    service.transact(lambda d: [audit.append(d, time.time(), "mint", "a") for _ in range(audit.MAX_ENTRIES)])
    service.record("reveal", "after-trim")
    assert saved_payload() == encode_payload(service.data)
    assert service.data.audit[0].action == audit.ANCHOR and audit.verify(service.data.audit) is None
    other = VaultService.unlock(path, PASSPHRASE)
    other.record("copy", "elsewhere")
    service.record("reveal", "after-reload")
    assert saved_payload() == encode_payload(service.data)
    assert [e.account for e in service.data.audit[-2:]] == ["elsewhere", "after-reload"]
    service.data.audit[5].detail = "changed in place"
    service.record("reveal", "last")
    saved = json.loads(saved_payload())
    assert saved["audit"][5]["detail"] == "changed in place"
    assert saved_payload() == encode_payload(service.data)
