"""The audit trail: who did what to which account, hash-chained, never holding a secret.

Entries live inside the encrypted payload.  Each entry's digest is SHA-256 over the
previous digest and the entry's own fields, so editing or deleting any entry (short of
rewriting every later one, which needs the data key anyway) breaks the chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from .model import AuditEntry, VaultData

GENESIS = "0" * 64
ACTIONS = frozenset(
    {"add", "import", "capture", "register", "remove", "mint", "login", "reveal", "copy", "export",
     "rotate", "rollback", "passwd", "rekey", "check"}
)


def _digest(entry: AuditEntry) -> str:
    body = asdict(entry)
    body.pop("digest")
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def append(data: VaultData, at: float, action: str, account: str | None, outcome: str = "ok", detail: str = "") -> AuditEntry:
    prev = data.audit[-1].digest if data.audit else GENESIS
    entry = AuditEntry(at=at, action=action, account=account, outcome=outcome, detail=detail, prev=prev)
    entry.digest = _digest(entry)
    data.audit.append(entry)
    return entry


def verify(entries: list[AuditEntry]) -> int | None:
    """Index of the first entry that breaks the chain, or None when it is intact."""
    prev = GENESIS
    for i, entry in enumerate(entries):
        if entry.prev != prev or _digest(entry) != entry.digest:
            return i
        prev = entry.digest
    return None
