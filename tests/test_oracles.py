"""The venues' own clients as oracles: code nobody here wrote says what a venue accepts.

* Hyper Solutions' official SDK (`hyper-sdk`, `hyper_sdk/shared.py` `build_headers`);
* ccxt's `ndax` (AlphaPoint APEX, the gateway Kiiex runs on): per-request HMAC headers;
* PowerTrade's support page's PyJWT example, its api-docs' Go example and its hummingbot
  connector's token shape;
* TradeReady's published backend (`src/api/middleware/auth.py` `_authenticate_request`,
  `src/api/routes/auth.py`, FastAPI's validation errors).

The sandbox must accept every form these clients send (within their documented windows)
and refuse what their sources say the venue refuses; keyward must send what they send.
Only 127.0.0.1 is reached: the clients are pointed at the sandbox (ccxt's urls replaced,
no market loading), and the session-wide guard in conftest fails anything else.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import httpx
import jwt
import pytest

from vault.core.model import Account
from vault.venues import get_provider

T = 1_800_000_000  # a fixed instant for the byte-for-byte comparisons


def hyper_account(fields: dict[str, str], **settings: object) -> Account:
    return Account(label="hy", venue="hypersolutions", base_url="https://api.hypersolutions.co",
                   fields=fields, settings=dict(settings))


HYPER_COMBINATIONS = {
    "api key only": ("api_key",),
    "jwt key": ("api_key", "jwt_key"),
    "organisation": ("api_key", "app_key", "app_secret"),
    "jwt key and organisation": ("api_key", "jwt_key", "app_key", "app_secret"),
}


def _frozen_sdk_clock(monkeypatch: pytest.MonkeyPatch, at: float) -> None:
    """hyper-sdk reads datetime.now(timezone.utc): freeze it for a byte-for-byte comparison."""
    import hyper_sdk.shared as shared

    fixed = datetime.fromtimestamp(at, timezone.utc)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            return fixed

    monkeypatch.setattr(shared, "datetime", Frozen)


@pytest.mark.parametrize("combination", list(HYPER_COMBINATIONS))
def test_hyper_headers_equal_the_official_sdks_build_headers(monkeypatch, combination) -> None:
    from hyper_sdk.shared import build_headers

    every = {
        "api_key": "0123456789abcdef0123456789abcdef",
        "jwt_key": "jwt-key-" + "j" * 40,
        "app_key": "app_" + "a" * 32,
        "app_secret": "app-secret-" + "s" * 40,
    }
    fields = {name: every[name] for name in HYPER_COMBINATIONS[combination]}
    _frozen_sdk_clock(monkeypatch, T)
    sdk = build_headers(fields["api_key"], fields.get("jwt_key"), fields.get("app_key"), fields.get("app_secret"))
    sdk = {name.lower(): value for name, value in sdk.items() if name.lower() != "content-type"}

    provider = get_provider("hypersolutions")
    acct = hyper_account(fields, token_lifetime_s=60)  # the SDK's lifetime, for equal bytes
    ours = {name.lower(): value for name, value in provider.headers(acct, provider.mint(acct, T), T).items()}
    assert ours == sdk


@pytest.mark.parametrize("combination", list(HYPER_COMBINATIONS))
def test_the_sandbox_accepts_the_sdks_and_keywards_hyper_headers_with_its_clock_behind(sandbox, combination) -> None:
    from hyper_sdk.shared import build_headers

    names = HYPER_COMBINATIONS[combination]
    issued = sandbox.issue(
        "hypersolutions", organization="app_key" in names, require_signature="jwt_key" in names
    )
    fields = {name: issued[name] for name in names}
    sandbox.configure(clock_offset_s=-5.0)  # the venue's clock 5 s behind ours
    provider = get_provider("hypersolutions")
    url = sandbox.base_url("hypersolutions") + "/usage"
    with httpx.Client() as http:
        sdk = build_headers(fields["api_key"], fields.get("jwt_key"), fields.get("app_key"), fields.get("app_secret"))
        assert http.get(url, headers=sdk).status_code == 200, "the official SDK's own headers"
        for life in (None, 60):  # keyward's defaults, and the SDK's 60 s
            acct = hyper_account(fields, **({} if life is None else {"token_lifetime_s": life}))
            now = time.time()
            answer = http.get(url, headers=provider.headers(acct, provider.mint(acct, now), now))
            assert answer.status_code == 200, (life, answer.json())


def test_the_sandbox_checks_an_x_signature_sent_beside_valid_app_headers(sandbox) -> None:
    from hyper_sdk.shared import build_headers

    issued = sandbox.issue("hypersolutions", organization=True, require_signature=True)
    good = build_headers(issued["api_key"], issued["jwt_key"], issued["app_key"], issued["app_secret"])
    bad = build_headers(issued["api_key"], "not-the-jwt-key-" + "x" * 32, issued["app_key"], issued["app_secret"])
    url = sandbox.base_url("hypersolutions") + "/usage"
    with httpx.Client() as http:
        assert http.get(url, headers=good).status_code == 200
        refused = http.get(url, headers=bad)
    assert refused.status_code == 401 and refused.json() == {"error": "invalid signature"}


# --- Kiiex / AlphaPoint APEX: ccxt's ndax -------------------------------------------------


def _ndax(sandbox, issued: dict[str, str], secret: str | None = None):
    import ccxt

    exchange = ccxt.ndax({
        "apiKey": issued["APIKey"],
        "secret": secret or issued["APISecret"],
        "uid": issued["UserId"],
        "login": issued["UserName"],  # ccxt's required credentials; the signed calls never send it as one
        "password": "unused",
        "enableRateLimit": False,
        "timeout": 5000,
    })
    base = sandbox.base_url("kiiex")
    exchange.urls["api"] = {"public": base, "private": base}  # nothing but the sandbox
    return exchange


def test_ccxt_ndax_signed_private_call_is_accepted_and_a_wrong_secret_refused(sandbox) -> None:
    import ccxt

    issued = sandbox.issue("kiiex", UserName="alice")
    request = {"omsId": 1, "UserId": issued["UserId"], "UserName": issued["UserName"]}
    accounts = _ndax(sandbox, issued).privateGetGetUserAccounts(request)
    assert accounts == [int(issued["UserId"]) + 5000]
    with pytest.raises(ccxt.ExchangeError, match="Not Authorized"):  # ndax maps APEX's code 20 itself
        _ndax(sandbox, issued, secret="0" * 32).privateGetGetUserAccounts(request)
    assert sandbox.kiiex_attempts(issued["UserId"]) == 0  # no AuthenticateUser, as ccxt does


def test_keyward_signed_mode_headers_carry_ccxts_signature_for_the_same_nonce(sandbox) -> None:
    from vault.venues.kiiex import signed_headers

    issued = sandbox.issue("kiiex")
    exchange = _ndax(sandbox, issued)
    exchange.nonce = lambda: 1_800_000_000_123
    signed = exchange.sign("GetUserAccounts", ["private"], "GET", {"omsId": 1, "UserId": issued["UserId"]})
    fields = get_provider("kiiex").normalize(
        {"api_key": issued["APIKey"], "api_secret": issued["APISecret"], "nonce": issued["Nonce"], "user_id": issued["UserId"]}
    )
    acct = Account(label="kx", venue="kiiex", base_url=sandbox.base_url("kiiex"), fields=fields,
                   settings={"auth_mode": "signed"})
    assert signed_headers(acct, "1800000000123") == signed["headers"]


# --- PowerTrade: the seed's own PyJWT example and the official connector's token ---------------


def _pt_key(sandbox):
    from cryptography.hazmat.primitives import serialization

    issued = sandbox.issue("powertrade")
    return issued["api_key"], serialization.load_pem_private_key(issued["private_key"].encode(), password=None)


def seed_pyjwt_example(api_key: str, private_key, now: int) -> str:
    """The support page's example, verbatim in its claims: exp = now + 60, no nonce."""
    return jwt.encode({"exp": now + 60, "iat": now, "sub": api_key, "client": "api"}, private_key, algorithm="ES256")


def test_the_seeds_pyjwt_example_passes_the_looser_window_and_fails_the_stricter_with_the_reason(sandbox) -> None:
    api_key, key = _pt_key(sandbox)
    url = sandbox.base_url("powertrade") + "/v1/position/funds"
    with httpx.Client() as http:
        sandbox.configure(powertrade_max_window_s=60)  # the support page's example
        assert http.get(url, headers={"X-Power-Trade": seed_pyjwt_example(api_key, key, int(time.time()))}).status_code == 200
        sandbox.configure(powertrade_max_window_s=30)  # the REST reference: exp within iat + 30 s
        refused = http.get(url, headers={"X-Power-Trade": seed_pyjwt_example(api_key, key, int(time.time()))})
    assert refused.status_code == 401 and refused.json()["error"] == "window_too_long"


def test_the_connectors_token_reused_within_its_window_is_accepted(sandbox) -> None:
    """hummingbot's powertrade_auth.py: seconds nonce, a `uri` claim, one token reused."""
    api_key, key = _pt_key(sandbox)
    now = int(time.time())
    token = jwt.encode({"client": "api", "uri": "wss://api.wss.test.power.trade", "nonce": now, "iat": now,
                        "exp": now + 300, "sub": api_key}, key, algorithm="ES256")
    sandbox.configure(powertrade_max_window_s=300)
    url = sandbox.base_url("powertrade") + "/v1/position/funds"
    with httpx.Client() as http:
        assert [http.get(url, headers={"X-Power-Trade": token}).status_code for _ in range(3)] == [200, 200, 200]


def test_keywards_default_nonce_leaves_seconds_clients_on_the_same_key_working(sandbox) -> None:
    """Even where the venue keeps a per-key high-water mark (a fault switch here, since no
    source states one), keyward's default nonce does not lock a seconds-based bot out."""
    from cryptography.hazmat.primitives import serialization

    api_key, key = _pt_key(sandbox)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    provider = get_provider("powertrade")
    acct = Account(label="pt", venue="powertrade", base_url=sandbox.base_url("powertrade"),
                   fields={"api_key": api_key, "private_key": pem})
    sandbox.configure(powertrade_nonce_high_water=True)
    url = sandbox.base_url("powertrade") + "/v1/position/funds"
    with httpx.Client() as http:
        now = time.time()
        assert http.get(url, headers=provider.headers(acct, provider.mint(acct, now), now)).status_code == 200
        time.sleep(1.05)
        later = int(time.time())  # the seed's jsrsasign example: nonce = the Unix time in seconds
        bot = jwt.encode({"sub": api_key, "iat": later, "exp": later + 25, "client": "api", "nonce": later}, key,
                         algorithm="ES256")
        assert http.get(url, headers={"X-Power-Trade": bot}).status_code == 200


# --- TradeReady: the published backend's rules ----------------------------------------------


def test_tradeready_x_api_key_is_judged_first_and_bearer_only_without_one(sandbox) -> None:
    """`_authenticate_request`: X-API-Key first; the Bearer only when no X-API-Key is sent."""
    acct = sandbox.issue("tradeready", display_name="bot")
    base = sandbox.base_url("tradeready") + "/api/v1"
    with httpx.Client() as http:
        token = http.post(base + "/auth/login", json={"api_key": acct["api_key"], "api_secret": acct["api_secret"]}).json()["token"]
        bogus_key = http.get(base + "/account/info", headers={"X-API-Key": "ak_live_bogus", "Authorization": f"Bearer {token}"})
        bogus_bearer = http.get(base + "/account/info", headers={"X-API-Key": acct["api_key"], "Authorization": "Bearer garbage"})
        bearer_alone = http.get(base + "/account/info", headers={"Authorization": f"Bearer {token}"})
    assert bogus_key.status_code == 401 and bogus_key.json()["error"]["code"] == "INVALID_API_KEY"
    assert bogus_bearer.status_code == 200
    assert bearer_alone.status_code == 200
