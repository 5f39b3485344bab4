"""What an account looks like to a person or a script: masking and summaries.

The CLI's JSON and the dashboard's table both come from here, so a secret is masked
in exactly one place.
"""

from __future__ import annotations

from typing import Any

from vault.core.model import Account, iso
from vault.venues import get_provider

ELLIPSIS = "…"


MASK_TAIL_FROM = 24  # a value this long also shows its last 4 characters
MASK_SHOWN = 4


def mask(value: str, *, tail: bool = False) -> str:
    """The first 4 characters and an ellipsis.  With `tail` (a stored credential), for a
    value of 24 characters or more its last 4 too ("ak_l…Q2zX", as AWS shows a key's last
    4): keys that share a prefix (TradeReady's account and agent keys are all "ak_live_…")
    can be told apart, and at least 16 characters stay hidden.  A token or header made
    per request gets no tail: there is nothing to tell apart, and a signature's last
    characters change each time.  Short values (a 4-of-8 prefix would give half of them
    away) and PEM blocks (whose first characters are dashes) show nothing."""
    if len(value) < 12 or value.startswith("-----"):
        return "••••" + ELLIPSIS
    if tail and len(value) >= MASK_TAIL_FROM:
        return value[:MASK_SHOWN] + ELLIPSIS + value[-MASK_SHOWN:]
    return value[:MASK_SHOWN] + ELLIPSIS


def masked_fields(acct: Account, reveal: bool = False) -> dict[str, str]:
    provider = get_provider(acct.venue)
    out = {}
    for spec in provider.fields:
        if spec.name in acct.fields:
            value = acct.fields[spec.name]
            out[spec.name] = value if (reveal or not spec.secret) else mask(value, tail=True)
    return out


def env_name(acct: Account) -> str:
    """The environment to show: its name, "sandbox" for a loopback URL, else "custom"."""
    return env_label(acct.env, acct.base_url)


def env_label(env: str | None, base_url: str) -> str:
    if env:
        return env
    from urllib.parse import urlsplit

    from vault.net.endpoints import is_loopback_host

    return "sandbox" if is_loopback_host(urlsplit(base_url).hostname) else "custom"


def key_display(acct: Account) -> str:
    """The identifying key for a table column: the API key, masked when it is secret."""
    value = acct.fields.get("api_key", "")
    provider = get_provider(acct.venue)
    secret = any(f.name == "api_key" and f.secret for f in provider.fields)
    return mask(value, tail=True) if secret else value


def signing_window(acct: Account) -> int | None:
    """Seconds each request's signature lives, for an account whose venue signs every
    request afresh (PowerTrade's ES256 JWT, Hyper's HS256 signatures: minted offline, so
    there is no session to expire between requests); None for one that logs in
    (TradeReady, Kiiex) or sends its key alone (Hyper without a JWT key)."""
    from vault.core.errors import KeywardError

    provider = get_provider(acct.venue)
    if provider.token_kind != "jwt":
        return None
    try:
        if not provider.needs_token(acct, None):
            return None
        return int(provider.lifetime(acct))
    except KeywardError:  # a broken setting: `doctor` and every use say so
        return None


def key_max_age(acct: Account, default_days: int) -> int:
    return int(acct.settings.get("key_max_age_days", default_days))


def summary(acct: Account, now: float, *, default_max_age: int = 90) -> dict[str, Any]:
    """The `list --json` object (no credential values at all)."""
    age = acct.key_age_days(now)
    max_age = key_max_age(acct, default_max_age)
    tok = acct.token
    rl = acct.rate_limit
    h = acct.health
    window = signing_window(acct)
    return {
        "label": acct.label,
        "venue": acct.venue,
        "env": acct.env,
        "base_url": acct.base_url,
        "created_at": iso(acct.created_at),
        "rotated_at": iso(acct.rotated_at),
        "key_age_days": round(age, 1),
        "key_max_age_days": max_age,
        "key_overdue": age > max_age,
        "generations": len(acct.generations),
        "tags": list(acct.tags),
        "token": None if tok is None else {"kind": tok.kind, "issued_at": iso(tok.issued_at), "expires_at": iso(tok.expires_at)},
        # Signed per request (PowerTrade, Hyper): "token" is only the last signature made, and
        # its expiry in the past is no problem: the next request is signed afresh.
        "signed_per_request": window is not None,
        "signature_window_s": window,
        "rate_limit": None if rl is None else {"limit": rl.limit, "remaining": rl.remaining, "reset_at": iso(rl.reset_at)},
        "health": None
        if h is None
        else {"ok": h.ok, "checked_at": iso(h.checked_at), "latency_ms": h.latency_ms, "message": h.message},
    }


def detail(acct: Account, now: float, *, reveal: bool = False, default_max_age: int = 90) -> dict[str, Any]:
    """The `show --json` object: the summary plus fields (masked unless revealed)."""
    out = summary(acct, now, default_max_age=default_max_age)
    out["id"] = acct.id
    out["fields"] = masked_fields(acct, reveal)
    out["notes"] = acct.notes
    out["settings"] = dict(acct.settings)
    return out
