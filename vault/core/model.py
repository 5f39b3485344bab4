"""The vault's content as typed dataclasses, and their JSON form (payload schema 1).

Times are POSIX seconds (float) inside the vault and ISO 8601 UTC at the edges (CLI JSON,
screens).  Credential values live only in `Account.fields`; which of them are secret is
the venue's decision (see vault.venues), never guessed here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Any

from vault.core.errors import InputError

SCHEMA_VERSION = 1


def iso(ts: float | None) -> str | None:
    """UTC, cut to the whole second: "2026-12-07T20:21:05Z".  (time.gmtime, not datetime:
    a third of the cost, and `list --json` prints two per account.)"""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_iso(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


_NAMES: dict[type, tuple[str, ...]] = {}
_NAME_SETS: dict[type, frozenset[str]] = {}

# --- values a venue sent, kept in range ---------------------------------------------------
# What a venue tells us (rate limits, expiries, dates) is stored and later printed, summed
# and compared: one inf, nan, millisecond or year-58000 value once broke every command
# that read it back.  The dataclasses below pass each such value through these on
# construction, so a value from a venue and a value loaded from an older vault alike end
# up in range, or None (unknown).

DAY_S = 86400.0
MAX_TIMESTAMP = 7258118400.0  # 2200-01-01: past that, a "time" is an error, not a date
MS_TIMESTAMPS = (946684800e3, MAX_TIMESTAMP * 1000)  # epoch milliseconds since 2000 (several exchanges send them)
MAX_COUNT = 10**12  # a rate limit or quota larger than this is not one
MAX_TOKEN_LIFE_S = 400 * DAY_S
MAX_LATENCY_MS = 3_600_000.0
MAX_SKEW_S = 10 * 365 * DAY_S
MAX_MESSAGE_CHARS = 2000
MAX_TOKEN_CHARS = 16384  # JWTs and session ids are far shorter; a header this long fails anyway


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int past float's range
        return None
    return number if math.isfinite(number) else None


def moment(value: object) -> float | None:
    """A POSIX time in range (epoch milliseconds converted), else None."""
    number = _finite(value)
    if number is None:
        return None
    if MS_TIMESTAMPS[0] <= number < MS_TIMESTAMPS[1]:
        number /= 1000.0
    return number if 0.0 <= number < MAX_TIMESTAMP else None


def count(value: object) -> int | None:
    """A whole count from 0 to MAX_COUNT (a float that is a whole number is accepted)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= MAX_COUNT else None
    number = _finite(value)
    if number is None or number != int(number) or not 0 <= number <= MAX_COUNT:
        return None
    return int(number)


def bounded(value: object, low: float, high: float) -> float | None:
    number = _finite(value)
    return number if number is not None and low <= number <= high else None


def check_label(label: object) -> str:
    """The one rule for account labels, wherever a label comes from: the command line,
    a paste, a bundle someone sent, or an agent client."""
    if (
        not isinstance(label, str)
        or not label
        or len(label) > 64
        or not all(c.isalnum() or c in "-_.@" for c in label)
    ):
        raise InputError(f"invalid label {str(label)[:80]!r}", hint="use 1-64 letters, digits and - _ . @")
    return label


def _new_id() -> str:
    import uuid  # only new accounts need it; uuid imports `platform`, a cost every command paid

    return uuid.uuid4().hex


def _names(cls) -> tuple[str, ...]:
    if cls not in _NAMES:
        _NAMES[cls] = tuple(f.name for f in fields(cls))
        _NAME_SETS[cls] = frozenset(_NAMES[cls])
    return _NAMES[cls]


def _name_set(cls) -> frozenset[str]:
    if cls not in _NAME_SETS:
        _names(cls)
    return _NAME_SETS[cls]


def _from(cls, raw: dict | None):
    """Build a dataclass from a dict, ignoring keys a newer keyward may have added."""
    if raw is None:
        return None
    names = _names(cls)
    return cls(**{k: v for k, v in raw.items() if k in names})


def _flat(obj) -> dict[str, Any] | None:
    """A dataclass of plain values as a dict, by reference: `asdict` deep-copies every
    value, which made saving 10,000 accounts cost most of a second.  An instance that
    holds its fields and nothing else (every one keyward makes) is copied from its
    `__dict__` in C, which is in field order: a fifth of the cost of reading each field
    by name, paid for every audit entry on every save."""
    if obj is None:
        return None
    held = obj.__dict__
    if held.keys() == _name_set(type(obj)):
        return held.copy()
    return {name: getattr(obj, name) for name in _names(type(obj))}


@dataclass(repr=False)  # (its own __repr__ below)
class Token:
    """A minted JWT, a login's bearer token or a session: what a request carries."""

    value: str
    issued_at: float
    expires_at: float | None
    kind: str = "jwt"  # jwt | bearer | session

    def __post_init__(self) -> None:
        self.issued_at = moment(self.issued_at) or 0.0
        expires = moment(self.expires_at)
        # An expiry before the token was issued, or further out than any venue issues
        # them, is not one to plan refreshes by: unknown, so the next use renews it.
        if expires is not None and not (self.issued_at - DAY_S <= expires <= self.issued_at + MAX_TOKEN_LIFE_S):
            expires = None
        self.expires_at = expires

    def remaining(self, now: float) -> float | None:
        return None if self.expires_at is None else self.expires_at - now

    def __repr__(self) -> str:  # never let a token reach a log through repr()
        return f"Token(kind={self.kind!r}, expires_at={iso(self.expires_at)!r})"


@dataclass
class RateLimit:
    limit: int | None
    remaining: int | None
    reset_at: float | None
    observed_at: float

    def __post_init__(self) -> None:
        self.limit = count(self.limit)
        remaining = count(self.remaining)
        if remaining is not None and self.limit is not None and remaining > self.limit:
            remaining = self.limit
        self.remaining = remaining
        self.reset_at = moment(self.reset_at)
        self.observed_at = moment(self.observed_at) or 0.0


@dataclass
class Health:
    ok: bool
    checked_at: float
    latency_ms: float | None = None
    message: str = ""
    status: int | None = None
    skew_s: float | None = None

    def __post_init__(self) -> None:
        self.ok = self.ok is True
        self.checked_at = moment(self.checked_at) or 0.0
        self.latency_ms = bounded(self.latency_ms, 0.0, MAX_LATENCY_MS)
        self.message = self.message[:MAX_MESSAGE_CHARS] if isinstance(self.message, str) else ""
        status = self.status
        self.status = status if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599 else None
        self.skew_s = bounded(self.skew_s, -MAX_SKEW_S, MAX_SKEW_S)


@dataclass(repr=False)  # (its own __repr__ below)
class Generation:
    """A retired credential set, kept so that a failed rotation can roll back."""

    fields: dict[str, str]
    created_at: float
    retired_at: float
    reason: str = "rotated"
    # Where these credentials were used: a rollback restores them together, so a
    # credential is never sent to a host it was not stored for.  None in generations
    # written before keyward recorded it (they were retired at the account's own URL).
    base_url: str | None = None
    env: str | None = None

    def __repr__(self) -> str:
        return f"Generation(created_at={iso(self.created_at)!r}, retired_at={iso(self.retired_at)!r})"


@dataclass(repr=False)  # (its own __repr__ below)
class Account:
    label: str
    venue: str
    base_url: str
    fields: dict[str, str]
    env: str | None = None
    id: str = field(default_factory=lambda: _new_id())
    created_at: float = 0.0
    rotated_at: float | None = None
    generations: list[Generation] = field(default_factory=list)
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    token: Token | None = None
    rate_limit: RateLimit | None = None
    health: Health | None = None
    history: list[int] = field(default_factory=list)  # rate-limit remaining samples, for sparklines

    def __repr__(self) -> str:  # fields hold secrets: keep them out of reprs
        return f"Account(label={self.label!r}, venue={self.venue!r}, base_url={self.base_url!r})"

    def key_age_days(self, now: float) -> float:
        return (now - (self.rotated_at or self.created_at)) / 86400

    def to_dict(self) -> dict[str, Any]:
        out = _flat(self)
        out["generations"] = [_flat(g) for g in self.generations]
        out["token"] = _flat(self.token)
        out["rate_limit"] = _flat(self.rate_limit)
        out["health"] = _flat(self.health)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Account:
        if raw.keys() == (_ACCOUNT_KEYS if cls is Account else _name_set(cls)):
            # Written by this version: skip __init__'s per-field work (opening 10,000
            # accounts spent most of its time here).
            acct = object.__new__(cls)
            acct.__dict__.update(raw)
        else:
            acct = _from(cls, raw)
        # (Each part is tested for "absent" first: most accounts have no generations and
        # many no token or health, and 10,000 calls that return None still cost.)
        generations = raw.get("generations")
        acct.generations = [_from(Generation, g) for g in generations] if generations else []
        tok = raw.get("token")
        if tok is not None:
            tok = _from(Token, tok)
            if (
                not isinstance(tok.value, str)
                or len(tok.value) > MAX_TOKEN_CHARS
                or (tok.expires_at is None and raw["token"].get("expires_at") is not None)
            ):
                tok = None  # stored by a version that took any size or expiry: the next use renews it
        acct.token = tok
        rate_limit, health = raw.get("rate_limit"), raw.get("health")
        acct.rate_limit = None if rate_limit is None else _from(RateLimit, rate_limit)
        acct.health = None if health is None else _from(Health, health)
        history = acct.history
        if history and (not isinstance(history, list) or not all(type(x) is int and 0 <= x <= MAX_COUNT for x in history)):
            acct.history = [x for x in history if count(x) is not None] if isinstance(history, list) else []
        elif not isinstance(history, list):
            acct.history = []
        return acct


_ACCOUNT_KEYS = _name_set(Account)  # looked up once per account opened


def _audit_entries(raw: list) -> list[AuditEntry]:
    """The trail, up to 10,000 entries decoded by every open.  An entry written by this
    version (exactly its fields) is made as Account.from_dict makes an account, without
    __init__'s per-field work; AuditEntry checks nothing in __init__, so it is the same
    object.  Anything else goes through _from (unknown keys dropped, missing ones
    defaulted)."""
    keys = _name_set(AuditEntry)
    new = object.__new__
    out = []
    for e in raw:
        if e.keys() == keys:
            entry = new(AuditEntry)
            entry.__dict__.update(e)
        else:
            entry = _from(AuditEntry, e)
        out.append(entry)
    return out


# Bounds on a venue's answer (vault.net.http enforces them; the vault may override).
DEFAULT_MAX_RESPONSE_BYTES = 1 << 20  # on the wire: real answers are a few KiB
DEFAULT_MAX_DECODED_BYTES = 4 << 20  # once decompressed (gzip bombs)
DEFAULT_REQUEST_DEADLINE_S = 60.0  # one call: connect, every byte, every retry
_HTTP_BOUNDS = {  # name: (low, high): a stored value outside is ignored, not obeyed
    "max_response_bytes": (64 << 10, 256 << 20),
    "max_decoded_bytes": (64 << 10, 1 << 30),
    "request_deadline_s": (1.0, 600.0),
}


@dataclass
class Settings:
    auto_lock_minutes: int = 5
    clipboard_clear_seconds: int = 30
    key_max_age_days: int = 90
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    request_deadline_s: float = DEFAULT_REQUEST_DEADLINE_S

    def __post_init__(self) -> None:
        defaults = {f.name: f.default for f in fields(self)}
        for name, (low, high) in _HTTP_BOUNDS.items():
            value = bounded(getattr(self, name), low, high)
            setattr(self, name, defaults[name] if value is None else type(defaults[name])(value))


@dataclass
class AuditEntry:
    """One line of the audit trail.  `digest` chains it to the entry before it."""

    at: float
    action: str
    account: str | None
    outcome: str
    detail: str = ""
    prev: str = ""
    digest: str = ""


@dataclass
class VaultData:
    accounts: list[Account] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)
    audit: list[AuditEntry] = field(default_factory=list)
    schema: int = SCHEMA_VERSION

    def to_dict(self, *, with_audit: bool = True) -> dict[str, Any]:
        """The payload's object.  The trail comes last; `with_audit=False` leaves it out
        for a caller that encodes it itself (vault.core.service.AuditTexts)."""
        out = {
            "schema": self.schema,
            "settings": _flat(self.settings),
            "accounts": [a.to_dict() for a in self.accounts],
        }
        if with_audit:
            out["audit"] = [_flat(e) for e in self.audit]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> VaultData:
        return cls(
            accounts=[Account.from_dict(a) for a in raw.get("accounts", [])],
            settings=_from(Settings, raw.get("settings")) or Settings(),
            audit=_audit_entries(raw.get("audit", [])),
            schema=raw.get("schema", SCHEMA_VERSION),
        )

    def find(self, label: str) -> Account | None:
        """The account labelled `label`.  Through a position index checked on each use:
        every signed request looks its account up, and a scan of 10,000 accounts was
        several times the signature's cost.  The list stays the one truth: a position
        that no longer holds that label (an account added, removed, replaced or
        renamed) rebuilds the index, so no change elsewhere has to keep it."""
        accounts = self.accounts
        where = self.__dict__.get("_where")
        i = where.get(label) if where is not None else None
        if i is None or i >= len(accounts) or accounts[i].label != label:
            where = {}
            for n, acct in enumerate(accounts):
                where.setdefault(acct.label, n)
            self.__dict__["_where"] = where
            i = where.get(label)
            if i is None:
                return None
        return accounts[i]


@dataclass(repr=False)  # (its own __repr__ below)
class Credentials:
    """What a script receives for one account: the live token and the headers a request
    needs now.  Built by vault.ops.venue_ops locally or returned by the unlock agent, so it must
    stay a plain dataclass that costs nothing to import."""

    account: str
    venue: str
    base_url: str
    token: Token | None
    headers: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)  # venue-specific KEYWARD_* variables for `exec`

    def __repr__(self) -> str:
        return f"Credentials(account={self.account!r}, venue={self.venue!r}, token={self.token!r})"
