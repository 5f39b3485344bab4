"""The sandbox over real loopback HTTP.

Tokens and signatures are minted here with PyJWT and hmac directly, so these tests pin the
wire contract the client code is written against, independently of keyward's own minting.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import io
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vault.sandbox import Sandbox, SandboxConfig, SandboxError
from vault.sandbox.server import describe

from .conftest import T0, FakeClock


@pytest.fixture
def sb(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(clock=clock, rate_limit_every_venue=True)) as sandbox:
        yield sandbox


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # trust_env=False: a proxy variable in the environment must not divert loopback traffic.
    with httpx.Client(trust_env=False, timeout=5) as client:
        yield client


# --- PowerTrade ----------------------------------------------------------------------


def pt_token(key: dict[str, str], *, iat: float, exp: float, **extra: Any) -> str:
    claims = {"sub": key["api_key"], "iat": int(iat), "exp": int(exp), "client": "api", **extra}
    return jwt.encode(claims, key["private_key"], algorithm="ES256")


def pt_get(http: httpx.Client, sb: Sandbox, token: str | None, path: str = "/v1/position/funds") -> httpx.Response:
    headers = {"X-Power-Trade": token} if token is not None else {}
    return http.get(sb.base_url("powertrade") + path, headers=headers)


def test_powertrade_issuance_hands_out_a_fresh_p256_pkcs8_key(sb: Sandbox, http: httpx.Client) -> None:
    first = http.post(sb.base_url("powertrade") + "/_sandbox/api-keys")
    second = http.post(sb.base_url("powertrade") + "/_sandbox/api-keys")
    assert first.status_code == 201
    body = first.json()
    assert set(body) == {"api_key", "private_key"}
    assert body["private_key"].startswith("-----BEGIN PRIVATE KEY-----")  # PKCS8, not SEC1
    key = serialization.load_pem_private_key(body["private_key"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert second.json()["api_key"] != body["api_key"]
    assert second.json()["private_key"] != body["private_key"]


@pytest.mark.parametrize("path", ["/v1/position/funds", "/v1/balance/funds_holdings"])
def test_powertrade_accepts_a_valid_token(sb: Sandbox, http: httpx.Client, clock: FakeClock, path: str) -> None:
    key = sb.issue("powertrade")
    response = pt_get(http, sb, pt_token(key, iat=clock() - 5, exp=clock() + 25), path)
    assert response.status_code == 200, response.text
    assert response.json()
    assert response.headers["X-RateLimit-Limit"] == "600"
    assert response.headers["X-RateLimit-Remaining"] == "599"


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] += 1
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "missing_token"),
        ("garbage", "malformed_token"),
        ("tampered", "bad_signature"),
        ("wrong_key", "bad_signature"),
        ("unknown_key", "unknown_key"),
        ("expired", "expired"),
        ("future_iat", "not_yet_valid"),
        ("too_long", "window_too_long"),
        ("client_web", "bad_client"),
        ("no_client", "missing_claim"),
        ("hs256", "bad_algorithm"),
        ("no_exp", "missing_claim"),
    ],
)
def test_powertrade_refuses_bad_tokens(
    sb: Sandbox, http: httpx.Client, clock: FakeClock, case: str, reason: str
) -> None:
    key, other = sb.issue("powertrade"), sb.issue("powertrade")
    now = clock()
    good = {"sub": key["api_key"], "iat": int(now) - 5, "exp": int(now) + 25, "client": "api"}
    tokens: dict[str, str | None] = {
        "missing": None,
        "garbage": "not-a-jwt",
        "tampered": _tamper(jwt.encode(good, key["private_key"], algorithm="ES256")),
        "wrong_key": jwt.encode(good, other["private_key"], algorithm="ES256"),
        "unknown_key": jwt.encode({**good, "sub": "nobody"}, key["private_key"], algorithm="ES256"),
        "expired": pt_token(key, iat=now - 40, exp=now - 11),
        "future_iat": pt_token(key, iat=now + 10, exp=now + 30),
        "too_long": pt_token(key, iat=now - 5, exp=now + 60),  # the support page's 60 s example
        "client_web": jwt.encode({**good, "client": "web"}, key["private_key"], algorithm="ES256"),
        "no_client": jwt.encode({k: v for k, v in good.items() if k != "client"}, key["private_key"], algorithm="ES256"),
        "hs256": jwt.encode(good, "a-shared-secret-that-is-long-enough!!", algorithm="HS256"),
        "no_exp": jwt.encode({k: v for k, v in good.items() if k != "exp"}, key["private_key"], algorithm="ES256"),
    }
    response = pt_get(http, sb, tokens[case])
    assert response.status_code == 401
    assert response.json()["error"] == reason
    # And the untouched token does pass, so the refusal is about the defect alone.
    assert pt_get(http, sb, jwt.encode(good, key["private_key"], algorithm="ES256")).status_code == 200


def test_powertrade_window_limit_is_inclusive_and_configurable(sb: Sandbox, http: httpx.Client, clock: FakeClock) -> None:
    key = sb.issue("powertrade")
    assert pt_get(http, sb, pt_token(key, iat=clock() - 5, exp=clock() + 25)).status_code == 200
    assert pt_get(http, sb, pt_token(key, iat=clock() - 5, exp=clock() + 26)).json()["error"] == "window_too_long"
    sb.config.powertrade_max_window_s = 300
    assert pt_get(http, sb, pt_token(key, iat=clock() - 5, exp=clock() + 295)).status_code == 200


def test_powertrade_token_reuse_and_any_integer_nonce_pass_by_default(
    sb: Sandbox, http: httpx.Client, clock: FakeClock
) -> None:
    """No source says a token is single-use or that nonces have a per-key high-water mark
    (the official connector reuses one token for 270 s)."""
    key = sb.issue("powertrade")
    now = clock()
    token = pt_token(key, iat=now - 5, exp=now + 25, nonce=1000)
    assert [pt_get(http, sb, token).status_code for _ in range(2)] == [200, 200]
    assert pt_get(http, sb, pt_token(key, iat=now - 5, exp=now + 25, nonce=999)).status_code == 200
    assert pt_get(http, sb, pt_token(key, iat=now - 5, exp=now + 25, nonce=1.5)).json()["error"] == "bad_nonce"


def test_powertrade_nonce_must_rise_per_key_behind_the_fault_switch(
    sb: Sandbox, http: httpx.Client, clock: FakeClock
) -> None:
    sb.configure(powertrade_nonce_high_water=True)
    key, other = sb.issue("powertrade"), sb.issue("powertrade")
    now = clock()
    token = pt_token(key, iat=now - 5, exp=now + 25, nonce=1000)
    assert pt_get(http, sb, token).status_code == 200
    replay = pt_get(http, sb, token)
    assert replay.status_code == 401 and replay.json()["error"] == "replayed_nonce"
    assert pt_get(http, sb, pt_token(key, iat=now - 5, exp=now + 25, nonce=999)).json()["error"] == "replayed_nonce"
    assert pt_get(http, sb, pt_token(key, iat=now - 5, exp=now + 25, nonce=1001)).status_code == 200
    # Nonces are tracked per api key: another key starts afresh.
    assert pt_get(http, sb, pt_token(other, iat=now - 5, exp=now + 25, nonce=5)).status_code == 200


def test_powertrade_market_summary_is_public(sb: Sandbox, http: httpx.Client) -> None:
    response = http.get(sb.base_url("powertrade") + "/v1/market_data/tradeable_entity/all/summary")
    assert response.status_code == 200
    assert isinstance(response.json(), list) and response.json()[0]["symbol"]
    assert "X-RateLimit-Limit" not in response.headers


# --- TradeReady ----------------------------------------------------------------------


def tr(sb: Sandbox, path: str) -> str:
    return sb.base_url("tradeready") + "/api/v1" + path


def tr_login(http: httpx.Client, sb: Sandbox, account: dict[str, Any]) -> str:
    response = http.post(tr(sb, "/auth/login"), json={"api_key": account["api_key"], "api_secret": account["api_secret"]})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def test_tradeready_register_issues_credentials_once(sb: Sandbox, http: httpx.Client) -> None:
    response = http.post(tr(sb, "/auth/register"), json={"display_name": "AlphaBot", "email": "a@example.com"})
    assert response.status_code == 201
    body = response.json()
    assert {"account_id", "api_key", "api_secret", "display_name", "starting_balance", "message"} <= set(body)
    assert {"agent_id", "agent_api_key"} <= set(body)
    assert body["api_key"].startswith("ak_live_") and body["api_secret"].startswith("sk_live_")
    assert body["agent_api_key"].startswith("ak_live_") and body["agent_api_key"] != body["api_key"]
    assert body["starting_balance"] == "10000.00"
    assert body["message"] == "Save your API secret now. It will not be shown again."


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "display_name"),
        ({"display_name": "x" * 101}, "display_name"),
        ({"display_name": "ok", "email": "not-an-email"}, "email"),
        ({"display_name": "ok", "starting_balance": "-1"}, "starting_balance"),
    ],
)
def test_tradeready_register_validation_fails_as_fastapi_does(
    sb: Sandbox, http: httpx.Client, payload: dict[str, Any], field: str
) -> None:
    """The backend's request validation: FastAPI's 422 {"detail": [{loc, msg, type}]}."""
    response = http.post(tr(sb, "/auth/register"), json=payload)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", field] and problem["msg"] and problem["type"]
    assert http.post(tr(sb, "/auth/register"), content=b"{nope").json()["detail"][0]["type"] == "json_invalid"


def test_tradeready_register_takes_display_names_as_the_backend_does(sb: Sandbox, http: httpx.Client) -> None:
    """Empty and up to 100 characters (the backend; the seed page says 1-64)."""
    for name in ("", "x" * 100):
        assert http.post(tr(sb, "/auth/register"), json={"display_name": name}).status_code == 201
    sb.issue("tradeready", display_name="first", email="taken@example.com")
    dup = http.post(tr(sb, "/auth/register"), json={"display_name": "dup", "email": "Taken@example.com"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "DUPLICATE_ACCOUNT"


def test_tradeready_in_process_issue_raises_like_the_endpoint(sb: Sandbox) -> None:
    with pytest.raises(SandboxError) as refused:
        sb.issue("tradeready")
    assert refused.value.status == 422


def test_tradeready_login_returns_a_server_signed_one_hour_jwt(sb: Sandbox, http: httpx.Client, clock: FakeClock) -> None:
    account = sb.issue("tradeready", display_name="bot")
    response = http.post(tr(sb, "/auth/login"), json={"api_key": account["api_key"], "api_secret": account["api_secret"]})
    body = response.json()
    assert response.status_code == 200 and body["token_type"] == "Bearer"
    assert jwt.get_unverified_header(body["token"])["alg"] == "HS256"
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == account["account_id"]
    assert claims["exp"] == int(clock()) + 3600
    assert body["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(clock()) + 3600))
    assert "X-RateLimit-Limit" not in response.headers  # /auth/* is not rate limited


@pytest.mark.parametrize(
    ("change", "status", "code", "message"),
    [
        # src/api/routes/auth.py: an unknown key (or an agent's) is ACCOUNT_NOT_FOUND, a wrong secret INVALID_API_KEY
        ({"api_key": "ak_live_unknown"}, 404, "ACCOUNT_NOT_FOUND", "Account not found."),
        ({"api_key": "agent"}, 404, "ACCOUNT_NOT_FOUND", "Account not found."),
        ({"api_secret": "sk_live_wrong"}, 401, "INVALID_API_KEY", "API secret is invalid."),
    ],
)
def test_tradeready_login_refusals(
    sb: Sandbox, http: httpx.Client, change: dict[str, Any], status: int, code: str, message: str
) -> None:
    account = sb.issue("tradeready", display_name="bot")
    if change.get("api_key") == "agent":
        change = {"api_key": account["agent_api_key"]}
    payload = {"api_key": account["api_key"], "api_secret": account["api_secret"], **change}
    response = http.post(tr(sb, "/auth/login"), json=payload)
    assert response.status_code == status
    assert response.json()["error"] == {"code": code, "message": message}
    assert "X-RateLimit-Limit" not in response.headers  # none on auth failures


def test_tradeready_wrong_secret_code_follows_the_seed_page_when_switched(sb: Sandbox, http: httpx.Client) -> None:
    account = sb.issue("tradeready", display_name="bot")
    sb.configure(tradeready_wrong_secret_code="INVALID_TOKEN")
    response = http.post(tr(sb, "/auth/login"), json={"api_key": account["api_key"], "api_secret": "sk_live_wrong"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "INVALID_TOKEN"
    with pytest.raises(ValueError):
        sb.configure(tradeready_wrong_secret_code="WRONG")


def test_tradeready_login_missing_fields_fail_as_fastapi_does(sb: Sandbox, http: httpx.Client) -> None:
    response = http.post(tr(sb, "/auth/login"), json={"api_key": "ak_live_x"})
    assert response.status_code == 422
    assert response.json()["detail"] == [{"type": "missing", "loc": ["body", "api_secret"], "msg": "Field required"}]


def test_tradeready_login_limit_per_client_ip_when_switched_on(sb: Sandbox, http: httpx.Client, clock: FakeClock) -> None:
    """One version of the backend limits /auth/* per client IP (5 logins a minute)."""
    account = sb.issue("tradeready", display_name="bot")
    sb.configure(tradeready_auth_limit_per_min=5)
    body = {"api_key": account["api_key"], "api_secret": account["api_secret"]}
    assert [http.post(tr(sb, "/auth/login"), json=body).status_code for _ in range(6)] == [200] * 5 + [429]
    refused = http.post(tr(sb, "/auth/login"), json=body)
    assert refused.headers["Retry-After"] == "60" and refused.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    clock.advance(60)
    assert http.post(tr(sb, "/auth/login"), json=body).status_code == 200


def test_tradeready_account_endpoints_take_key_or_bearer(sb: Sandbox, http: httpx.Client) -> None:
    account = sb.issue("tradeready", display_name="bot")
    token = tr_login(http, sb, account)
    by_key = http.get(tr(sb, "/account/info"), headers={"X-API-Key": account["api_key"]})
    by_jwt = http.get(tr(sb, "/account/balance"), headers={"Authorization": f"Bearer {token}"})
    by_agent = http.get(tr(sb, "/account/info"), headers={"X-API-Key": account["agent_api_key"]})
    assert by_key.status_code == by_jwt.status_code == by_agent.status_code == 200
    assert by_key.json()["account_id"] == account["account_id"]
    assert by_jwt.json()["balances"][0]["asset"] == "USDT"
    assert by_agent.json()["agent_id"] == account["agent_id"]
    for response in (by_key, by_jwt, by_agent):
        assert all(name in response.headers for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"))
    scoped = http.get(
        tr(sb, "/account/info"), headers={"Authorization": f"Bearer {token}", "X-Agent-Id": account["agent_id"]}
    )
    assert scoped.json()["agent_id"] == account["agent_id"]
    # An unknown X-Agent-Id beside a bearer is ignored, as the backend's get_current_agent does.
    unknown = http.get(tr(sb, "/account/info"), headers={"Authorization": f"Bearer {token}", "X-Agent-Id": "nope"})
    assert unknown.status_code == 200 and "agent_id" not in unknown.json()
    assert by_jwt.json()["balances"][0]["total"] == "10000.00000000"  # the backend's 8 decimals


def test_tradeready_refuses_bad_keys_and_expired_or_forged_jwts(
    sb: Sandbox, http: httpx.Client, clock: FakeClock
) -> None:
    account = sb.issue("tradeready", display_name="bot")
    token = tr_login(http, sb, account)
    bad_key = http.get(tr(sb, "/account/info"), headers={"X-API-Key": "ak_live_nope"})
    assert bad_key.status_code == 401 and bad_key.json()["error"]["code"] == "INVALID_API_KEY"
    forged = jwt.encode({"sub": account["account_id"], "exp": int(clock()) + 60}, "x" * 32, algorithm="HS256")
    response = http.get(tr(sb, "/account/info"), headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "INVALID_TOKEN"

    clock.advance(3599)
    assert http.get(tr(sb, "/account/info"), headers={"Authorization": f"Bearer {token}"}).status_code == 200
    clock.advance(1)
    expired = http.get(tr(sb, "/account/info"), headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "INVALID_TOKEN"


def test_tradeready_jwt_lifetime_is_configurable(sb: Sandbox, http: httpx.Client, clock: FakeClock) -> None:
    sb.config.tradeready_jwt_lifetime_s = 60
    token = tr_login(http, sb, sb.issue("tradeready", display_name="bot"))
    assert jwt.decode(token, options={"verify_signature": False})["exp"] == int(clock()) + 60
    clock.advance(61)
    assert http.get(tr(sb, "/account/info"), headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_tradeready_agents_take_any_credential_and_regenerating_kills_the_old_key(sb: Sandbox, http: httpx.Client) -> None:
    account = sb.issue("tradeready", display_name="bot")
    # The backend: /agents takes the account key and an agent's key too, not only the bearer.
    for key in (account["api_key"], account["agent_api_key"]):
        assert http.get(tr(sb, "/agents"), headers={"X-API-Key": key}).status_code == 200
    nobody = http.get(tr(sb, "/agents"))
    assert nobody.status_code == 401 and nobody.json()["error"]["code"] == "INVALID_API_KEY"
    bearer = {"Authorization": f"Bearer {tr_login(http, sb, account)}"}

    body = http.get(tr(sb, "/agents"), headers=bearer).json()
    assert [a["id"] for a in body["agents"]] == [account["agent_id"]] and body["total"] == 1
    assert body["agents"][0]["api_key_preview"] == account["agent_api_key"][:12] + "..."
    created = http.post(tr(sb, "/agents"), headers=bearer, json={"display_name": "second"})
    assert created.status_code == 201 and created.json()["api_key"].startswith("ak_live_")
    assert len(http.get(tr(sb, "/agents"), headers=bearer).json()["agents"]) == 2

    old_key = account["agent_api_key"]
    assert http.get(tr(sb, "/account/info"), headers={"X-API-Key": old_key}).status_code == 200
    rotated = http.post(tr(sb, f"/agents/{account['agent_id']}/regenerate-key"), headers=bearer)
    assert rotated.status_code == 200
    new_key = rotated.json()["api_key"]
    assert new_key != old_key and rotated.json()["agent_id"] == account["agent_id"]
    gone = http.get(tr(sb, "/account/info"), headers={"X-API-Key": old_key})
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "INVALID_API_KEY"
    assert http.get(tr(sb, "/account/info"), headers={"X-API-Key": new_key}).status_code == 200
    missing = http.post(tr(sb, "/agents/no-such-agent/regenerate-key"), headers=bearer)
    assert missing.status_code == 404
    other = sb.issue("tradeready", display_name="other")
    foreign = http.post(tr(sb, f"/agents/{other['agent_id']}/regenerate-key"), headers=bearer)
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "PERMISSION_DENIED"  # not your agent


def test_tradeready_rate_limit_429_then_recovers_after_the_window(
    sb: Sandbox, http: httpx.Client, clock: FakeClock
) -> None:
    sb.config.rate_limit, sb.config.rate_window_s = 3, 60
    account = sb.issue("tradeready", display_name="bot")
    headers = {"X-API-Key": account["api_key"]}
    remaining = [http.get(tr(sb, "/account/info"), headers=headers).headers["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    refused = http.get(tr(sb, "/account/info"), headers=headers)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["X-RateLimit-Reset"] == str(int(T0) + 60)
    error = refused.json()["error"]
    assert error["code"] == "RATE_LIMIT_EXCEEDED"
    assert error["details"] == {"limit": 3, "window_seconds": 60.0, "retry_after_seconds": 60}
    # The window is per account (the backend): the agent's key and the bearer share it.
    assert http.get(tr(sb, "/account/info"), headers={"X-API-Key": account["agent_api_key"]}).status_code == 429
    # /auth/* is not limited (by default: see tradeready_auth_limit_per_min).
    for _ in range(6):
        token = tr_login(http, sb, account)
    assert http.get(tr(sb, "/account/info"), headers={"Authorization": f"Bearer {token}"}).status_code == 429
    other = sb.issue("tradeready", display_name="other")
    assert http.get(tr(sb, "/account/info"), headers={"X-API-Key": other["api_key"]}).status_code == 200
    clock.advance(60)
    assert http.get(tr(sb, "/account/info"), headers=headers).status_code == 200


# --- Hyper Solutions -----------------------------------------------------------------


def hyper_sig(key: str, secret: str, exp: float) -> str:
    return jwt.encode({"key": key, "exp": int(exp)}, secret, algorithm="HS256")


def hyper_usage(http: httpx.Client, sb: Sandbox, headers: dict[str, str]) -> httpx.Response:
    return http.get(sb.base_url("hypersolutions") + "/usage", headers=headers)


def test_hyper_issuance_plain_and_organisation(sb: Sandbox, http: httpx.Client) -> None:
    url = sb.base_url("hypersolutions") + "/_sandbox/api-keys"
    plain = http.post(url, json={"organization": False})
    org = http.post(url, json={"organization": True})
    assert plain.status_code == org.status_code == 201
    assert set(plain.json()) == {"api_key", "jwt_key"}
    assert set(org.json()) == {"api_key", "jwt_key", "app_key", "app_secret"}


def test_hyper_signed_usage_reports_and_spends_quota(sb: Sandbox, http: httpx.Client, clock: FakeClock) -> None:
    sb.config.hyper_quota = 2
    key = sb.issue("hypersolutions")

    def call() -> httpx.Response:
        sig = hyper_sig(key["api_key"], key["jwt_key"], clock() + 15)
        return hyper_usage(http, sb, {"x-api-key": key["api_key"], "x-signature": sig})

    first = call()
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["balanceEuro"] == 12.5
    plan = body["plans"][0]
    assert set(plan) == {"product", "requestsUsed", "requestsQuota", "requestsRemaining", "expiresAt", "numRequests"}
    assert (plan["requestsUsed"], plan["requestsQuota"], plan["requestsRemaining"]) == (1, 2, 1)
    assert "X-RateLimit-Remaining" in first.headers
    call()
    exhausted = call().json()["plans"][0]
    assert (exhausted["requestsRemaining"], exhausted["numRequests"]) == (0, 3)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "missing signature"),
        ("expired", "signature expired"),
        ("wrong_secret", "invalid signature"),
        ("key_mismatch", "signature key mismatch"),
    ],
)
def test_hyper_refuses_bad_signatures(
    sb: Sandbox, http: httpx.Client, clock: FakeClock, case: str, message: str
) -> None:
    key = sb.issue("hypersolutions")
    now = clock()
    signatures = {
        "missing": None,
        "expired": hyper_sig(key["api_key"], key["jwt_key"], now - 1),
        "wrong_secret": hyper_sig(key["api_key"], "another-jwt-key-of-sufficient-length", now + 15),
        "key_mismatch": hyper_sig("someone-else", key["jwt_key"], now + 15),
    }
    headers = {"x-api-key": key["api_key"]}
    if signatures[case] is not None:
        headers["x-signature"] = signatures[case]
    response = hyper_usage(http, sb, headers)
    assert response.status_code == 401
    assert response.json() == {"error": message}
    good = hyper_sig(key["api_key"], key["jwt_key"], now + 60)  # the SDKs' 60 s is still accepted
    assert hyper_usage(http, sb, {"x-api-key": key["api_key"], "x-signature": good}).status_code == 200


def test_hyper_has_no_ceiling_on_exp_unless_the_fault_switch_adds_one(sandbox: Sandbox, clock: FakeClock) -> None:
    """No published source states one: an SDK signature (now + 60) must pass a venue clock
    a few seconds behind.  The switch keeps the old rule for tests of keyward's hint."""
    sandbox.config.clock = clock
    key = sandbox.issue("hypersolutions")
    far = {"x-api-key": key["api_key"], "x-signature": hyper_sig(key["api_key"], key["jwt_key"], clock() + 3600)}
    with httpx.Client() as http:
        assert hyper_usage(http, sandbox, far).status_code == 200
        sandbox.configure(hyper_max_signature_ahead_s=60)
        assert hyper_usage(http, sandbox, far).json() == {"error": "signature expires too far in the future"}


def test_hyper_signature_expires_as_the_clock_moves(sb: Sandbox, http: httpx.Client, clock: FakeClock) -> None:
    key = sb.issue("hypersolutions")
    headers = {"x-api-key": key["api_key"], "x-signature": hyper_sig(key["api_key"], key["jwt_key"], clock() + 15)}
    assert hyper_usage(http, sb, headers).status_code == 200
    clock.advance(15)
    assert hyper_usage(http, sb, headers).json() == {"error": "signature expired"}


def test_hyper_unsigned_key_and_bad_or_disabled_keys(sb: Sandbox, http: httpx.Client) -> None:
    unsigned = sb.issue("hypersolutions", require_signature=False)
    assert hyper_usage(http, sb, {"x-api-key": unsigned["api_key"]}).status_code == 200
    unknown = hyper_usage(http, sb, {"x-api-key": "nope"})
    assert unknown.status_code == 401 and "error" in unknown.json()
    sb.disable_hyper_key(unsigned["api_key"])
    disabled = hyper_usage(http, sb, {"x-api-key": unsigned["api_key"]})
    assert disabled.status_code == 403 and disabled.json() == {"error": "api key disabled"}


def test_hyper_organisation_headers(sb: Sandbox, http: httpx.Client, clock: FakeClock) -> None:
    org, other_org = sb.issue("hypersolutions", organization=True), sb.issue("hypersolutions", organization=True)
    now = clock()
    headers = {
        "x-api-key": org["api_key"],
        "x-app-key": org["app_key"],
        "x-app-signature": hyper_sig(org["app_key"], org["app_secret"], now + 60),
    }
    assert hyper_usage(http, sb, headers).status_code == 200  # no x-signature needed
    wrong_secret = {**headers, "x-app-signature": hyper_sig(org["app_key"], org["jwt_key"], now + 60)}
    assert hyper_usage(http, sb, wrong_secret).json() == {"error": "invalid app signature"}
    foreign = {**headers, "x-app-key": other_org["app_key"],
               "x-app-signature": hyper_sig(other_org["app_key"], other_org["app_secret"], now + 60)}
    assert hyper_usage(http, sb, foreign).json() == {"error": "invalid app key"}
    missing = {k: v for k, v in headers.items() if k != "x-app-signature"}
    assert hyper_usage(http, sb, missing).status_code == 401
    # Every signature sent is checked: a bad x-signature beside valid app headers fails.
    beside = {**headers, "x-signature": hyper_sig(org["api_key"], "not-the-jwt-key-" + "x" * 30, now + 60)}
    assert hyper_usage(http, sb, beside).json() == {"error": "invalid signature"}
    both = {**headers, "x-signature": hyper_sig(org["api_key"], org["jwt_key"], now + 60)}
    assert hyper_usage(http, sb, both).status_code == 200
    clock.advance(60)
    assert hyper_usage(http, sb, headers).json() == {"error": "app signature expired"}


# --- Kiiex ---------------------------------------------------------------------------


def kx(sb: Sandbox, path: str) -> str:
    return sb.base_url("kiiex") + path


def kx_signature(creds: dict[str, str], nonce: str | None = None) -> str:
    nonce = creds["Nonce"] if nonce is None else nonce
    message = nonce + creds["UserId"] + creds["APIKey"]
    return hmac.new(creds["APISecret"].encode(), message.encode(), hashlib.sha256).hexdigest()


def kx_headers(creds: dict[str, str], signature: str | None = None) -> dict[str, str]:
    return {
        "APIKey": creds["APIKey"],
        "Signature": kx_signature(creds) if signature is None else signature,
        "UserId": creds["UserId"],
        "Nonce": creds["Nonce"],
    }


def kx_login(http: httpx.Client, sb: Sandbox, creds: dict[str, str]) -> str:
    response = http.post(kx(sb, "/AuthenticateUser"), headers=kx_headers(creds))
    assert response.status_code == 200, response.text
    return response.json()["SessionToken"]


def test_kiiex_issuance_is_the_export_to_json_shape(sb: Sandbox, http: httpx.Client) -> None:
    response = http.post(kx(sb, "/_sandbox/api-keys"), json={"UserName": "alice"})
    assert response.status_code == 201
    creds = response.json()
    assert set(creds) == {"APIKey", "APISecret", "Nonce", "UserId", "UserName"}
    assert isinstance(creds["UserId"], str) and creds["UserId"].isdigit()
    assert creds["UserName"] == "alice"


def test_kiiex_authenticate_user_with_headers_or_body(sb: Sandbox, http: httpx.Client) -> None:
    creds = sb.issue("kiiex")
    by_headers = http.post(kx(sb, "/AuthenticateUser"), headers=kx_headers(creds))
    assert by_headers.status_code == 200
    body = by_headers.json()
    assert body["Authenticated"] is True and body["Locked"] is False and body["Requires2FA"] is False
    assert body["SessionToken"]
    assert set(body["User"]) == {"UserId", "UserName", "Email", "EmailVerified", "AccountId", "OMSId", "Use2FA"}
    assert str(body["User"]["UserId"]) == creds["UserId"]
    by_body = http.post(kx(sb, "/AuthenticateUser"), json=kx_headers(creds))
    assert by_body.json()["Authenticated"] is True
    assert by_body.json()["SessionToken"] != body["SessionToken"]


@pytest.mark.parametrize("defect", ["wrong_secret", "uppercase_hex", "wrong_order", "other_nonce", "no_signature"])
def test_kiiex_refuses_bad_signatures(sb: Sandbox, http: httpx.Client, defect: str) -> None:
    creds = sb.issue("kiiex")
    good = kx_signature(creds)
    signature = {
        "wrong_secret": kx_signature({**creds, "APISecret": "0" * 32}),
        "uppercase_hex": good.upper(),
        "wrong_order": hmac.new(
            creds["APISecret"].encode(), (creds["UserId"] + creds["Nonce"] + creds["APIKey"]).encode(), hashlib.sha256
        ).hexdigest(),
        "other_nonce": kx_signature(creds, nonce=creds["Nonce"] + "1"),
        "no_signature": "",
    }[defect]
    response = http.post(kx(sb, "/AuthenticateUser"), headers=kx_headers(creds, signature))
    assert response.status_code == 401
    assert response.json() == {"Authenticated": False, "Locked": False, "errormsg": "Invalid API key or signature"}


def test_kiiex_any_signed_nonce_is_accepted(sb: Sandbox, http: httpx.Client) -> None:
    creds = sb.issue("kiiex")
    fresh = {**creds, "Nonce": "42"}
    assert http.post(kx(sb, "/AuthenticateUser"), headers=kx_headers(fresh)).json()["Authenticated"] is True


def test_kiiex_private_calls_take_the_four_signed_headers_as_ccxts_ndax_sends_them(sb: Sandbox, http: httpx.Client) -> None:
    """Per-request signing on the APEX gateway: no AuthenticateUser, no session."""
    creds = sb.issue("kiiex")
    signed = kx_headers(creds, kx_signature(creds, "1800000000001")) | {"Nonce": "1800000000001"}
    query = {"omsId": 1, "UserId": creds["UserId"]}
    for method in ("GET", "POST"):
        response = http.request(method, kx(sb, "/GetUserAccounts"), headers=signed, params=query)
        assert response.status_code == 200 and response.json() == [int(creds["UserId"]) + 5000]
        assert "X-RateLimit-Remaining" in response.headers
    bad = {**signed, "Signature": "0" * 64}
    assert http.get(kx(sb, "/GetUserAccountInfos"), headers=bad).json()["errorcode"] == 20
    assert sb.kiiex_attempts(creds["UserId"]) == 0
    for _ in range(6):  # failed signed calls do not count towards the lock-out (no source says so)
        http.get(kx(sb, "/GetUserAccounts"), headers=bad)
    assert http.post(kx(sb, "/AuthenticateUser"), headers=kx_headers(creds)).status_code == 200


def test_kiiex_session_token_is_accepted_as_ccxts_aptoken_header(sb: Sandbox, http: httpx.Client) -> None:
    token = kx_login(http, sb, sb.issue("kiiex"))
    assert http.get(kx(sb, "/GetUserAccounts"), headers={"APToken": token}).status_code == 200


def test_kiiex_locks_after_five_failures_until_unlocked(sb: Sandbox, http: httpx.Client) -> None:
    creds = sb.issue("kiiex")
    bad = kx_headers(creds, "0" * 64)
    locked_flags = [http.post(kx(sb, "/AuthenticateUser"), headers=bad).json()["Locked"] for _ in range(5)]
    assert locked_flags == [False, False, False, False, True]
    refused = http.post(kx(sb, "/AuthenticateUser"), headers=kx_headers(creds))
    assert refused.status_code == 401
    assert refused.json()["Authenticated"] is False and refused.json()["Locked"] is True
    assert sb.kiiex_attempts(creds["UserId"]) == 6

    unlock = http.post(kx(sb, "/_sandbox/unlock"), json={"UserId": creds["UserId"]})
    assert unlock.status_code == 200
    assert kx_login(http, sb, creds)

    for _ in range(5):
        http.post(kx(sb, "/AuthenticateUser"), headers=bad)
    assert http.post(kx(sb, "/AuthenticateUser"), headers=kx_headers(creds)).json()["Locked"] is True
    sb.unlock_kiiex(creds["UserId"])
    assert kx_login(http, sb, creds)
    assert sb.kiiex_attempts(creds["UserId"]) == 14


def test_kiiex_a_success_resets_the_failure_count(sb: Sandbox, http: httpx.Client) -> None:
    sb.config.kiiex_lockout_after = 3
    creds = sb.issue("kiiex")
    bad = kx_headers(creds, "0" * 64)
    for _ in range(2):
        http.post(kx(sb, "/AuthenticateUser"), headers=bad)
    kx_login(http, sb, creds)
    for _ in range(2):
        assert http.post(kx(sb, "/AuthenticateUser"), headers=bad).json()["Locked"] is False
    assert http.post(kx(sb, "/AuthenticateUser"), headers=bad).json()["Locked"] is True


def test_kiiex_two_factor_and_token_key_variants(sb: Sandbox, http: httpx.Client) -> None:
    creds = sb.issue("kiiex")
    sb.config.kiiex_requires_2fa = True
    two_fa = http.post(kx(sb, "/AuthenticateUser"), headers=kx_headers(creds)).json()
    assert two_fa["Authenticated"] is False and two_fa["Requires2FA"] is True
    assert "SessionToken" not in two_fa
    sb.config.kiiex_requires_2fa = False

    sb.config.kiiex_token_key = "Token"
    assert "Token" in http.post(kx(sb, "/AuthenticateUser"), headers=kx_headers(creds)).json()

    sb.config.kiiex_camel_case, sb.config.kiiex_token_key = True, "sessionToken"
    camel = http.post(kx(sb, "/AuthenticateUser"), headers=kx_headers(creds)).json()
    assert camel["authenticated"] is True and camel["sessionToken"]
    assert {"userId", "omsId", "use2FA", "accountId"} <= set(camel["user"])


def test_kiiex_private_calls_need_a_live_aptoken(sb: Sandbox, http: httpx.Client) -> None:
    creds = sb.issue("kiiex")
    not_authorized = {"result": False, "errormsg": "Not Authorized", "errorcode": 20}
    for path in ("/GetUserAccounts", "/GetUserAccountInfos"):
        for headers in ({}, {"aptoken": "forged"}):
            response = http.post(kx(sb, path), headers=headers)
            assert response.status_code == 401
            assert not_authorized.items() <= response.json().items()
    token = kx_login(http, sb, creds)
    accounts = http.post(kx(sb, "/GetUserAccounts"), headers={"aptoken": token})
    assert accounts.status_code == 200 and isinstance(accounts.json()[0], int)
    infos = http.get(kx(sb, "/GetUserAccountInfos"), headers={"aptoken": token})
    assert infos.json()[0]["AccountId"] == accounts.json()[0]
    assert "X-RateLimit-Remaining" in accounts.headers
    assert http.get(kx(sb, "/Ping")).json() == {"msg": "PONG"}


def test_kiiex_session_expires_after_idle_time_and_each_use_slides_it(
    sb: Sandbox, http: httpx.Client, clock: FakeClock
) -> None:
    token = kx_login(http, sb, sb.issue("kiiex"))
    call = lambda: http.post(kx(sb, "/GetUserAccounts"), headers={"aptoken": token}).status_code  # noqa: E731
    clock.advance(3500)
    assert call() == 200
    clock.advance(3500)  # 7000 s after login, but only 3500 s after the last use
    assert call() == 200
    clock.advance(3601)
    assert call() == 401
    clock.advance(-3601)  # the session was dropped, not just judged stale
    assert call() == 401


def test_kiiex_session_is_bound_to_the_client_ip(sb: Sandbox, http: httpx.Client) -> None:
    token = kx_login(http, sb, sb.issue("kiiex"))
    # 127.0.0.2 is another loopback address: a different client IP without leaving the host.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, trust_env=False, timeout=5) as elsewhere:
        assert elsewhere.post(kx(sb, "/GetUserAccounts"), headers={"aptoken": token}).status_code == 401
    assert http.post(kx(sb, "/GetUserAccounts"), headers={"aptoken": token}).status_code == 200


def test_kiiex_logout_ends_the_session(sb: Sandbox, http: httpx.Client) -> None:
    token = kx_login(http, sb, sb.issue("kiiex"))
    assert http.post(kx(sb, "/LogOut"), headers={"aptoken": token}).json()["result"] is True
    assert http.post(kx(sb, "/GetUserAccounts"), headers={"aptoken": token}).status_code == 401
    assert http.post(kx(sb, "/LogOut"), headers={"aptoken": token}).status_code == 401


# --- rate limits on every venue ------------------------------------------------------


def _private_call(venue: str, sb: Sandbox, http: httpx.Client, clock: FakeClock) -> Any:
    """A zero-argument function making one authenticated call to ``venue``."""
    if venue == "powertrade":
        key = sb.issue("powertrade")
        return lambda: pt_get(http, sb, pt_token(key, iat=clock() - 5, exp=clock() + 25))
    if venue == "tradeready":
        account = sb.issue("tradeready", display_name="bot")
        return lambda: http.get(tr(sb, "/account/info"), headers={"X-API-Key": account["api_key"]})
    if venue == "hypersolutions":
        key = sb.issue("hypersolutions", require_signature=False)
        return lambda: hyper_usage(http, sb, {"x-api-key": key["api_key"]})
    token = kx_login(http, sb, sb.issue("kiiex"))
    return lambda: http.post(kx(sb, "/GetUserAccounts"), headers={"aptoken": token})


@pytest.mark.parametrize("venue", ["powertrade", "tradeready", "hypersolutions", "kiiex"])
def test_every_venue_answers_429_with_retry_after(
    sb: Sandbox, http: httpx.Client, clock: FakeClock, venue: str
) -> None:
    sb.config.rate_limit, sb.config.rate_window_s = 2, 10
    call = _private_call(venue, sb, http, clock)
    assert [call().status_code for _ in range(2)] == [200, 200]
    clock.advance(4)
    refused = call()
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "6"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    clock.advance(6)  # the first two calls leave the sliding window
    assert call().status_code == 200


# --- faults, clock, config -----------------------------------------------------------


def test_latency_fault_delays_venue_responses(sb: Sandbox, http: httpx.Client) -> None:
    url = kx(sb, "/Ping")
    started = time.monotonic()
    http.get(url)
    assert time.monotonic() - started < 0.25
    sb.config.latency_ms = 300
    started = time.monotonic()
    assert http.get(url).status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("venue", "path", "expected"),
    [
        ("tradeready", "/api/v1/account/info", {"error": {"code": "INTERNAL_ERROR"}}),
        ("powertrade", "/v1/position/funds", {"error": "internal_error"}),
        ("hypersolutions", "/usage", {}),
        ("kiiex", "/Ping", {"result": False, "errorcode": 102}),
    ],
)
def test_fail_500_answers_with_each_venues_envelope(
    sb: Sandbox, http: httpx.Client, venue: str, path: str, expected: dict[str, Any]
) -> None:
    sb.config.fail_500 = True
    response = http.get(sb.base_url(venue) + path)
    assert response.status_code == 500
    body = response.json()
    assert "error" in body or "errormsg" in body
    for key, value in expected.items():
        if isinstance(value, dict):
            assert value.items() <= body[key].items()
        else:
            assert body[key] == value
    sb.config.fail_500 = False
    assert http.get(sb.base_url(venue) + path).status_code != 500


def test_fail_503_is_service_unavailable(sb: Sandbox, http: httpx.Client) -> None:
    sb.config.fail_503 = True
    response = http.get(tr(sb, "/account/info"))
    assert response.status_code == 503 and response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"


def test_faults_spare_the_control_endpoints(sb: Sandbox, http: httpx.Client) -> None:
    sb.config.fail_500 = sb.config.malformed_json = True
    assert http.post(sb.base_url("powertrade") + "/_sandbox/api-keys").json()["api_key"]
    assert http.post(sb.url + "/_sandbox/config", json={"fail_500": False}).json()["fail_500"] is False


def test_malformed_json_cuts_bodies_off(sb: Sandbox, http: httpx.Client) -> None:
    sb.config.malformed_json = True
    response = http.get(kx(sb, "/Ping"))
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.content and '{"msg":"PONG"}'.startswith(response.text)
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_clock_offset_shows_in_the_date_header_and_in_validation(
    sb: Sandbox, http: httpx.Client, clock: FakeClock
) -> None:
    key = sb.issue("powertrade")
    token = pt_token(key, iat=clock() - 5, exp=clock() + 25)
    response = http.get(kx(sb, "/Ping"))
    assert email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp() == int(T0)
    sb.config.clock_offset_s = 120
    skewed = pt_get(http, sb, token)
    assert email.utils.parsedate_to_datetime(skewed.headers["Date"]).timestamp() == int(T0) + 120
    assert skewed.status_code == 401 and skewed.json()["error"] == "expired"


def test_config_endpoint_reads_and_sets_fields(sb: Sandbox, http: httpx.Client) -> None:
    url = sb.url + "/_sandbox/config"
    assert http.get(url).json()["rate_limit"] == 600
    assert "clock" not in http.get(url).json()
    changed = http.post(url, json={"rate_limit": 5, "clock_offset_s": 30, "kiiex_token_key": "Token"})
    assert changed.status_code == 200 and changed.json()["rate_limit"] == 5
    assert (sb.config.rate_limit, sb.config.clock_offset_s, sb.config.kiiex_token_key) == (5, 30.0, "Token")
    for bad in ({"nope": 1}, {"fail_500": "yes"}, {"rate_limit": True}, {"rate_limit": 7, "latency_ms": "slow"}):
        response = http.post(url, json=bad)
        assert response.status_code == 400 and response.json()["error"] == "bad_config"
    assert sb.config.rate_limit == 5  # a partly bad request changes nothing
    # JSON as Python reads it takes NaN and Infinity; a NaN clock once broke every response.
    for raw in (b'{"clock_offset_s": NaN}', b'{"rate_window_s": Infinity}', b'{"latency_ms": -5}',
                b'{"rate_window_s": 0}', b'{"kiiex_lockout_after": 0}', b'{"kiiex_token_key": ""}',
                b'{"tradeready_wrong_secret_code": "OTHER"}', b'{"powertrade_nonce_high_water": 1}',
                b'{"hyper_max_signature_ahead_s": -1}', b'{"tradeready_auth_limit_per_min": -1}'):
        response = http.post(url, content=raw)
        assert response.status_code == 400 and response.json()["error"] == "bad_config", raw
    assert http.post(url, json={"clock_offset_s": -30, "rate_limit": 0}).status_code == 200  # both meaningful
    # The fault switches (rules no source states) are off by default.
    defaults = http.get(url).json()
    assert (defaults["powertrade_nonce_high_water"], defaults["hyper_max_signature_ahead_s"]) == (False, 0)
    assert (defaults["tradeready_wrong_secret_code"], defaults["tradeready_auth_limit_per_min"]) == ("INVALID_API_KEY", 0)
    assert http.get(sb.base_url("kiiex") + "/Ping").json() == {"msg": "PONG"}


@pytest.mark.parametrize(
    ("venue", "path", "status"),
    [
        ("powertrade", "/_sandbox/api-keys", 400),
        ("hypersolutions", "/_sandbox/api-keys", 400),
        ("kiiex", "/_sandbox/api-keys", 400),
        ("tradeready", "/api/v1/auth/register", 422),
        ("tradeready", "/api/v1/auth/login", 422),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_not_dropped(
    sb: Sandbox, http: httpx.Client, venue: str, path: str, status: int
) -> None:
    for body in (b"{not json", b"[1, 2]"):
        response = http.post(sb.base_url(venue) + path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == status
        assert response.json()


def test_unknown_paths_get_the_venue_envelope(sb: Sandbox, http: httpx.Client) -> None:
    assert http.get(tr(sb, "/nope")).json()["error"]["code"] == "NOT_FOUND"
    assert http.get(kx(sb, "/Nope")).json()["errorcode"] == 104
    assert http.get(sb.url + "/elsewhere").status_code == 404
    assert http.get(kx(sb, "/AuthenticateUser")).status_code == 405


# --- the server itself ---------------------------------------------------------------


def _listening_addresses(port: int) -> list[str]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def test_listens_on_loopback_only(sb: Sandbox) -> None:
    host, port = sb.address
    assert host == "127.0.0.1" and sb.url == f"http://127.0.0.1:{port}"
    if Path("/proc/net/tcp").exists():
        assert _listening_addresses(port) == ["0100007F"]  # 127.0.0.1, little-endian hex
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), timeout=1).close()


def test_a_burst_of_concurrent_connections_is_served(sb: Sandbox) -> None:
    # A bot's asyncio.gather opens as many connections as it has requests at once; the
    # listen backlog must take them all, or the extra clients hang until they time out.
    import asyncio

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        async with httpx.AsyncClient(trust_env=False, timeout=10, limits=limits) as client:
            answers = await asyncio.gather(*[client.get(sb.base_url("kiiex") + "/Ping") for _ in range(100)])
        return [r.status_code for r in answers]

    started = time.monotonic()
    assert asyncio.run(burst()) == [200] * 100
    assert time.monotonic() - started < 8


def test_base_urls_and_lifecycle(clock: FakeClock) -> None:
    sandbox = Sandbox(SandboxConfig(clock=clock))
    with pytest.raises(RuntimeError):
        _ = sandbox.url
    sandbox.start()
    try:
        assert sandbox.base_url("kiiex") == sandbox.url + "/kiiex/ap"
        assert sandbox.base_url("tradeready") == sandbox.url + "/tradeready"
        assert sandbox.base_url("powertrade") == sandbox.url + "/powertrade"
        assert sandbox.base_url("hypersolutions") == sandbox.url + "/hypersolutions"
        lines = list(describe(sandbox))
        assert any(sandbox.base_url("kiiex") in line for line in lines)
        port = sandbox.address[1]
    finally:
        sandbox.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_no_secret_reaches_the_logs(clock: FakeClock, capfd: pytest.CaptureFixture[str]) -> None:
    log = io.StringIO()
    with Sandbox(SandboxConfig(clock=clock), access_log=log) as sandbox, httpx.Client(trust_env=False) as http:
        key = sandbox.issue("powertrade")
        token = pt_token(key, iat=clock() - 5, exp=clock() + 25)
        http.get(sandbox.base_url("powertrade") + "/v1/position/funds?power_trade=" + token, headers={"X-Power-Trade": token})
        creds = sandbox.issue("kiiex")
        http.post(sandbox.base_url("kiiex") + "/AuthenticateUser", json=kx_headers(creds))
    written = log.getvalue() + "".join(capfd.readouterr())
    assert "GET /powertrade/v1/position/funds 200" in written
    assert "POST /kiiex/ap/AuthenticateUser 200" in written
    for secret in (token, key["api_key"], creds["APISecret"], creds["APIKey"], kx_signature(creds)):
        assert secret not in written


def test_main_serves_in_the_foreground_until_ctrl_c() -> None:
    code = "from vault.sandbox import main; raise SystemExit(main(['--port', '0']))"
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "http://127.0.0.1:" in banner
        url = banner.split()[4]
        kiiex_line = next(line for line in iter(process.stdout.readline, "") if line.split()[:1] == ["kiiex"])
        assert kiiex_line.split()[1] == url + "/kiiex/ap"
        with httpx.Client(trust_env=False, timeout=5) as http:
            assert http.get(url + "/kiiex/ap/Ping").json() == {"msg": "PONG"}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()


def test_only_tradeready_is_rate_limited_unless_the_harness_switch_says_so(clock: FakeClock) -> None:
    """TradeReady's backend publishes its limit; no source states one for PowerTrade, Hyper
    or Kiiex, so by default their answers carry no X-RateLimit-* and no 429 (issue 13:
    every rule the sandbox enforces has a source, or is a switch that is off)."""
    with Sandbox(SandboxConfig(clock=clock, rate_limit=1)) as sandbox, httpx.Client(trust_env=False) as http:
        key = sandbox.issue("hypersolutions")

        def call() -> httpx.Response:
            sig = hyper_sig(key["api_key"], key["jwt_key"], clock() + 15)
            return hyper_usage(http, sandbox, {"x-api-key": key["api_key"], "x-signature": sig})

        assert sandbox.config.rate_limit_every_venue is False
        for _ in range(3):
            response = call()
            assert response.status_code == 200 and "X-RateLimit-Limit" not in response.headers, response.text
        sandbox.configure(rate_limit_every_venue=True)
        assert [call().status_code for _ in range(2)] == [200, 429]
        tr_key = sandbox.issue("tradeready", display_name="x")["api_key"]
        sandbox.configure(rate_limit_every_venue=False)
        statuses = [http.get(tr(sandbox, "/account/info"), headers={"X-API-Key": tr_key}).status_code for _ in range(2)]
        assert statuses == [200, 429]  # TradeReady's own, published limit stays
