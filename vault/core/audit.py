"""The audit trail: who did what to which account, hash-chained, never holding a secret.

Entries live inside the encrypted payload.  Each entry's digest is SHA-256 over the
previous digest and the entry's own fields, so editing or deleting any entry (short of
rewriting every later one, which needs the data key anyway) breaks the chain.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from vault.core.digest import sha256
from vault.core.model import AuditEntry, VaultData

GENESIS = "0" * 64
ACTIONS = frozenset(
    {"add", "import", "capture", "register", "remove", "mint", "login", "reveal", "copy", "export",
     "rotate", "rollback", "passwd", "rekey", "check", "open", "setting", "anchor", "restore"}
)
# Retention: the trail lives in the payload that every save rewrites, and a bot minting
# once a minute adds 1,440 entries a day.  Past MAX_ENTRIES the oldest tenth is dropped and an
# "anchor" entry goes first: its `prev` is the last dropped digest (where the kept chain
# continues from) and its detail counts everything dropped so far.  See docs/lifecycle.md.
MAX_ENTRIES = 10_000
ANCHOR = "anchor"


def _digest(entry: AuditEntry) -> str:
    body = asdict(entry)
    body.pop("digest")
    return sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hex()


def append(data: VaultData, at: float, action: str, account: str | None, outcome: str = "ok", detail: str = "") -> AuditEntry:
    if action not in ACTIONS:  # a typo here would hide an action from `keyward audit LABEL`
        raise ValueError(f"unknown audit action {action!r}")
    prev = data.audit[-1].digest if data.audit else GENESIS
    entry = AuditEntry(at=at, action=action, account=account, outcome=outcome, detail=detail, prev=prev)
    entry.digest = _digest(entry)
    data.audit.append(entry)
    if len(data.audit) > MAX_ENTRIES:
        trim(data, MAX_ENTRIES * 9 // 10)  # a tenth of headroom: not a trim per append
    return entry


def trim(data: VaultData, keep: int) -> None:
    """Keep the newest `keep - 1` entries behind an anchor that links them to what went."""
    entries = data.audit
    drop = len(entries) - (keep - 1)
    if drop <= 0:
        return
    dropped, kept = entries[:drop], entries[drop:]
    total = sum(dropped_count(e) if e.action == ANCHOR else 1 for e in dropped)
    anchor = AuditEntry(at=kept[0].at, action=ANCHOR, account=None, outcome="ok",
                        detail=f"{total} earlier entries removed by retention", prev=kept[0].prev)
    anchor.digest = _digest(anchor)
    data.audit = [anchor, *kept]


def dropped_count(anchor: AuditEntry) -> int:
    try:
        return int(anchor.detail.split()[0])
    except (IndexError, ValueError):
        return 0


def verify(entries: list[AuditEntry]) -> int | None:
    """Index of the first entry that breaks the chain, or None when it is intact."""
    prev = GENESIS
    for i, entry in enumerate(entries):
        if i == 0 and entry.action == ANCHOR and _digest(entry) == entry.digest:
            prev = entry.prev  # the kept chain continues from the last dropped entry
            continue
        if entry.prev != prev or _digest(entry) != entry.digest:
            return i
        prev = entry.digest
    return None
