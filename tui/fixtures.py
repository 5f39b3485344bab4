"""Deterministic vaults for snapshot tests, screenshots and the benchmark.

Every value is fixed (credentials, times, token strings, rate limits) so that two runs
render the same screen; every secret contains the marker SECRET_MARKER so a leak test can
look for it.  The PowerTrade key is a real P-256 key made for this file only (derived from a
fixed scalar): it signs tokens for the sandbox, and nothing else accepts it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Callable

from vault.core.model import Account, Health, RateLimit, Token

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z: far from the real clock, so nothing passes by accident
SECRET_MARKER = "S3CR3T"

# The PowerTrade key is derived from a fixed scalar rather than committed as a PEM: the
# same key every run, and no private-key block in the shipped package.
_PT_SCALAR = 93784327663648011000721072682862653722284386401015292036877948464164409392718


def _pt_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.derive_private_key(_PT_SCALAR, ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


PT_KEY = _pt_key()


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


def fake_jwt(header: dict, claims: dict, signature: str = "c2lnbmF0dXJlLW5vdC12YWxpZA") -> str:
    """A JWT-shaped string with fixed content (its signature verifies nowhere)."""
    return f"{_b64(header)}.{_b64(claims)}.{signature}"


def sample_accounts(now: float = T0) -> list[Account]:
    """One account per venue, in every state the dashboard draws: live, near expiry,
    expired, failing with clock skew, key past its maximum age."""
    pt = Account(
        label="pt-desk", venue="powertrade", base_url="https://api.rest.test.power.trade", env="test",
        fields={"api_key": "5f0c9a9e-2b1d-4c51-9d0e-7a3b8c1d2e3f", "private_key": PT_KEY},
        id="0" * 32, created_at=now - 12 * 86400,
    )
    pt.token = Token(fake_jwt({"alg": "ES256", "typ": "JWT"},
                              {"sub": pt.fields["api_key"], "iat": int(now) - 5, "exp": int(now) + 25, "client": "api",
                               "nonce": int(now * 1000)}), now - 5, now + 25, "jwt")
    pt.rate_limit = RateLimit(limit=600, remaining=512, reset_at=now + 42, observed_at=now - 3)
    pt.health = Health(ok=True, checked_at=now - 3, latency_ms=84.0, message="ok", status=200, skew_s=0.4)

    tr = Account(
        label="tr-agent", venue="tradeready", base_url="https://api.tradeready.io", env="prod",
        fields={"api_key": f"ak_live_{SECRET_MARKER}7c1e9d2a4b6f8", "api_secret": f"sk_live_{SECRET_MARKER}d4e5f6a7b8c9",
                "account_id": "acc-0001", "agent_id": "agt-0001", "agent_api_key": f"ak_live_{SECRET_MARKER}agent99"},
        id="1" * 32, created_at=now - 40 * 86400, settings={"auto_refresh": True},
    )
    tr.token = Token(fake_jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "acc-0001", "iat": int(now) - 3300,
                                                                 "exp": int(now) + 300}),
                     now - 3300, now + 300, "bearer")
    tr.rate_limit = RateLimit(limit=600, remaining=88, reset_at=now + 17, observed_at=now - 8)
    tr.health = Health(ok=True, checked_at=now - 125, latency_ms=212.0, message="ok", status=200, skew_s=-0.2)

    hs = Account(
        label="hyper-solver", venue="hypersolutions", base_url="https://api.hypersolutions.co", env="prod",
        fields={"api_key": f"hs_{SECRET_MARKER}0a1b2c3d4e5f", "jwt_key": f"jk_{SECRET_MARKER}9z8y7x6w5v"},
        id="2" * 32, created_at=now - 120 * 86400,
    )
    hs.token = Token(fake_jwt({"alg": "HS256", "typ": "JWT"}, {"key": hs.fields["api_key"], "exp": int(now) - 20}),
                     now - 35, now - 20, "jwt")
    hs.rate_limit = RateLimit(limit=1000, remaining=31, reset_at=None, observed_at=now - 600)
    hs.health = Health(ok=False, checked_at=now - 600, latency_ms=None,
                       message="Hyper Solutions refused the signature (invalid signature): check the clock",
                       status=401, skew_s=-47.0)

    kx = Account(
        label="kiiex-spot", venue="kiiex", base_url="https://apstage.proxy.kiiex.io/ap", env="staging",
        fields={"api_key": "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", "api_secret": f"{SECRET_MARKER}f0e1d2c3b4a59687",
                "nonce": f"{SECRET_MARKER}424242", "user_id": "1042", "username": "desk-two"},
        id="3" * 32, created_at=now - 85 * 86400, rotated_at=now - 85 * 86400,
    )
    kx.token = Token(f"sess-{SECRET_MARKER}-0011223344556677", now - 600, now + 3000, "session")
    kx.health = Health(ok=True, checked_at=now - 30, latency_ms=65.0, message="ok", status=200, skew_s=1.1)
    return [pt, tr, hs, kx]


def sample_vault(path: Path, passphrase: str, kdf, clock: Callable[[], float], *, extra: int = 0):
    """A new vault at `path` holding `sample_accounts()` (plus `extra` generated ones),
    with a short audit trail; every time comes from `clock`."""
    from vault.core.model import Generation
    from vault.core.service import VaultService

    service = VaultService.create(path, passphrase, kdf, clock=clock)
    now = clock()
    accounts = sample_accounts(now) + [generated_account(i, now) for i in range(extra)]
    kx = accounts[3]
    kx.generations = [Generation(fields={k: f"{SECRET_MARKER}old{v[::-1]}" for k, v in kx.fields.items()},
                                 created_at=now - 200 * 86400, retired_at=now - 85 * 86400)]

    def change(data) -> None:
        for acct in accounts:
            data.accounts.append(acct)
            service.audit(data, "capture", acct.label, "ok", "fixture")
        service.audit(data, "check", "hyper-solver", "failed", "HTTP 401 INVALID_SIGNATURE")
        service.audit(data, "login", "tr-agent", "ok", "bearer")

    service.transact(change)
    return service


def generated_account(i: int, now: float = T0) -> Account:
    """A TradeReady-shaped account numbered `i` (for the 1,000-account benchmark)."""
    acct = Account(
        label=f"acct-{i:04d}", venue="tradeready", base_url="https://api.tradeready.io", env="prod",
        fields={"api_key": f"ak_live_{SECRET_MARKER}{i:08d}", "api_secret": f"sk_live_{SECRET_MARKER}{i:08d}"},
        id=f"{i:032x}", created_at=now - (i % 120) * 86400,
    )
    acct.token = Token(f"tok-{SECRET_MARKER}-{i}", now - 60, now + 60 + (i * 7) % 3600, "bearer")
    acct.rate_limit = RateLimit(limit=600, remaining=(i * 37) % 600, reset_at=now + (i % 60), observed_at=now)
    acct.health = Health(ok=i % 17 != 0, checked_at=now - (i % 300), latency_ms=float(20 + i % 200), message="ok")
    return acct


async def settle(pilot, *, still_cursors: bool = False) -> None:
    """Under Pilot: let screens switch and every background job finish, without sleeping
    on the clock.  `still_cursors` stops input cursors blinking, for pictures that must
    come out the same every run (snapshots, screenshots)."""
    app = pilot.app
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    if still_cursors:
        from textual.widgets import Input

        for box in app.screen.query(Input):
            box.cursor_blink = False
    await pilot.pause()
