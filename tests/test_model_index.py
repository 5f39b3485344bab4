"""VaultData.find answers through a position index: whatever changes the account list,
it must answer as a scan of the list would."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from vault.core.model import Account, VaultData


def scan(data: VaultData, label: str) -> Account | None:
    return next((a for a in data.accounts if a.label == label), None)


def test_find_agrees_with_a_scan_through_every_kind_of_change() -> None:
    rng = random.Random(14)
    data = VaultData(accounts=[Account(label=f"a{i}", venue="kiiex", base_url="x", fields={}) for i in range(20)])
    labels = [f"a{i}" for i in range(40)]
    for step in range(2000):
        for label in rng.sample(labels, 3):
            assert data.find(label) is scan(data, label), (step, label)
        change = rng.randrange(6)
        accounts = data.accounts
        fresh = Account(label=rng.choice(labels), venue="kiiex", base_url="x", fields={})
        if change == 0 and scan(data, fresh.label) is None:
            accounts.insert(rng.randrange(len(accounts) + 1), fresh)
        elif change == 1 and accounts:
            accounts.pop(rng.randrange(len(accounts)))
        elif change == 2 and accounts:  # replaced in place under the same label (an import's "replace")
            i = rng.randrange(len(accounts))
            accounts[i] = Account(label=accounts[i].label, venue="hypersolutions", base_url="y", fields={})
        elif change == 3 and accounts:  # renamed
            acct = rng.choice(accounts)
            if scan(data, fresh.label) is None:
                acct.label = fresh.label
        elif change == 4:
            data.accounts = [a for a in accounts if rng.random() < 0.8]
        elif change == 5 and accounts:
            rng.shuffle(accounts)


@given(st.one_of(st.floats(min_value=-1e10, max_value=2e10), st.integers(min_value=-10**10, max_value=2 * 10**10),
                 st.sampled_from([0, -0.5, 1.7, 0.999999, 7258118399.999, 253402300799])))
def test_iso_is_what_datetime_prints(ts: float) -> None:
    """model.iso formats with time.gmtime: it must print what datetime prints for the
    whole second (fractions are cut, before 1970 too)."""
    import math
    from datetime import datetime, timezone

    from vault.core.model import iso

    assert iso(ts) == datetime.fromtimestamp(math.floor(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert iso(None) is None


def test_a_saved_object_holds_its_fields_in_order_and_nothing_set_on_it_besides() -> None:
    """The payload is built from each object's __dict__ when it holds exactly its fields
    (vault.core.model._flat): it must be what reading each field by name gives, in field
    order, and a copy (Account.to_dict adds keys to it).  An attribute set on an object
    besides its fields must never reach the vault file."""
    import dataclasses

    from vault.core import audit
    from vault.core.model import Health, RateLimit, Settings, Token, _flat

    data = VaultData(accounts=[Account(label="a", venue="kiiex", base_url="x", fields={"api_key": "k"},
                                       token=Token("t", 1.0, 2.0), rate_limit=RateLimit(5, 4, 3.0, 1.0),
                                       health=Health(True, 1.0, 12.5, "ok"))])
    audit.append(data, 1.5, "reveal", "a")
    objects = [data.settings, data.audit[0], data.accounts[0].token, data.accounts[0].rate_limit,
               data.accounts[0].health, Settings()]
    for obj in objects:
        by_name = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        flat = _flat(obj)
        assert list(flat.items()) == list(by_name.items()), type(obj).__name__
        assert flat is not obj.__dict__
    acct = data.accounts[0]
    acct.to_dict()
    assert set(vars(acct)) == {f.name for f in dataclasses.fields(acct)}  # to_dict added nothing to the account
    data.audit[0].note_to_self = "not a field"
    saved = data.to_dict()
    assert "note_to_self" not in saved["audit"][0]
    assert list(saved["audit"][0]) == [f.name for f in dataclasses.fields(data.audit[0])]


def test_the_trail_opens_to_the_same_entries_by_the_fast_path_and_the_general_one() -> None:
    """An entry written by this version (exactly its fields) skips __init__ on open
    (vault.core.model._audit_entries), as an account does; one from another version
    (a key more, a key less) goes through the general path.  Both give AuditEntry
    objects equal to what __init__ makes, with nothing else set on them."""
    import dataclasses

    from vault.core.model import AuditEntry, _audit_entries, _from

    exact = {"at": 1.5, "action": "reveal", "account": "a", "outcome": "ok", "detail": "d", "prev": "0" * 64,
             "digest": "f" * 64}
    newer = exact | {"signed_by": "a later keyward"}
    older = {k: v for k, v in exact.items() if k != "detail"}
    opened = _audit_entries([exact, newer, older])
    assert opened == [_from(AuditEntry, exact), _from(AuditEntry, newer), _from(AuditEntry, older)]
    assert opened[0] == AuditEntry(**exact) and type(opened[0]) is AuditEntry
    names = {f.name for f in dataclasses.fields(AuditEntry)}
    assert all(set(vars(entry)) == names for entry in opened)
    assert opened[2].detail == ""
