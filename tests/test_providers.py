"""The four providers offline: known answers, claim sets and header names as the venues
document them, and error mapping that never quotes a body."""

from __future__ import annotations

import json
import threading

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vault.core.errors import (
    AccountLockedOut,
    AuthRejected,
    InputError,
    RateLimited,
    SecondFactorRequired,
    ServerError,
    VenueError,
)
from vault.core.model import Account, Token
from vault.venues import get_provider
from vault.venues.hypersolutions import sign as hyper_sign
from vault.venues.kiiex import signature as kiiex_signature
from vault.venues.powertrade import KeyCache, NonceSource

NOW = 1_800_000_000.0
SECRETISH = "sk_live_THIS_MUST_NEVER_BE_QUOTED_123"


def account(venue: str, fields: dict[str, str], **settings: object) -> Account:
    return Account(label="acct", venue=venue, base_url="https://venue.example", fields=fields, settings=dict(settings))


def response(status: int, body: object, url: str = "https://venue.example/x", **headers: str) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers, request=httpx.Request("GET", url))


@pytest.fixture(scope="module")
def ec_key():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key, pem.decode()


# --- Kiiex -------------------------------------------------------------------------------


def test_kiiex_signature_known_answer() -> None:
    # openssl: printf '%s' 1712345678901001a1b2c3d4e5f6 | openssl dgst -sha256 -hmac s3cr3t-api-secret
    assert (
        kiiex_signature("s3cr3t-api-secret", "171234567890", "1001", "a1b2c3d4e5f6")
        == "91579e4dba2c7347b1de6282ff84ed62a6df4007bfa25a2c4715898818baefd9"
    )


def test_kiiex_login_request_carries_the_four_fields_as_headers_and_body() -> None:
    acct = account("kiiex", {"api_key": "a1b2c3d4e5f6", "api_secret": "s3cr3t-api-secret", "nonce": "171234567890",
                             "user_id": "1001", "username": "alice"})
    headers, body = get_provider("kiiex").login_request(acct)
    assert headers == {
        "APIKey": "a1b2c3d4e5f6",
        "Signature": "91579e4dba2c7347b1de6282ff84ed62a6df4007bfa25a2c4715898818baefd9",
        "UserId": "1001",
        "Nonce": "171234567890",
    }
    assert body == headers | {"UserName": "alice"}
    assert "s3cr3t-api-secret" not in json.dumps([headers, body])


KX = {"api_key": "k", "api_secret": "s", "nonce": "1", "user_id": "7"}


@pytest.mark.parametrize(
    "body",
    [
        {"Authenticated": True, "SessionToken": "tok-1", "User": {"UserId": 7}},
        {"authenticated": True, "token": "tok-1"},
        {"AUTHENTICATED": True, "Token": "tok-1"},
        {"authenticated": True, "sessionToken": "tok-1", "user": {"use2FA": False}},
    ],
)
def test_kiiex_session_token_is_read_case_insensitively_from_either_name(body: dict) -> None:
    tok = get_provider("kiiex").parse_login(account("kiiex", KX), response(200, body), NOW)
    assert (tok.value, tok.kind, tok.expires_at) == ("tok-1", "session", NOW + 3600)


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (401, {"Authenticated": False, "Locked": True, "errormsg": SECRETISH}, AccountLockedOut, "locked"),
        (200, {"Authenticated": False, "Requires2FA": True, "errormsg": SECRETISH}, SecondFactorRequired, "2FA"),
        (401, {"authenticated": False, "locked": False, "errormsg": SECRETISH}, AuthRejected, "will not retry"),
        (200, {"authenticated": False}, AuthRejected, "refused the login"),
        (200, {"authenticated": True}, VenueError, "no session token"),
        (503, {"errormsg": SECRETISH}, ServerError, "will not retry"),
    ],
)
def test_kiiex_login_failures_say_what_to_do_and_quote_nothing(status, body, error, words) -> None:
    with pytest.raises(error) as info:
        get_provider("kiiex").parse_login(account("kiiex", KX), response(status, body), NOW)
    assert words in str(info.value)
    assert SECRETISH not in str(info.value)


def test_kiiex_private_call_not_authorized_in_a_200_is_an_auth_error() -> None:
    kx = get_provider("kiiex")
    with pytest.raises(AuthRejected, match="keyward login"):
        kx.raise_for_error(account("kiiex", KX), response(200, {"result": False, "errorcode": 20, "errormsg": SECRETISH}))
    kx.raise_for_error(account("kiiex", KX), response(200, [5001]))  # GetUserAccounts' list: fine


def test_kiiex_headers_and_env() -> None:
    kx = get_provider("kiiex")
    tok = Token("sess", NOW, NOW + 3600, "session")
    assert kx.headers(account("kiiex", KX), tok, NOW) == {"aptoken": "sess"}
    assert kx.exec_env(account("kiiex", KX), tok)["KEYWARD_APTOKEN"] == "sess"
    assert kx.mint(account("kiiex", KX), NOW) is None


def test_kiiex_signed_mode_sends_the_four_hmac_headers_with_a_strictly_rising_nonce() -> None:
    kx = get_provider("kiiex")
    acct = account("kiiex", {"api_key": "a1b2c3d4e5f6", "api_secret": "s3cr3t-api-secret", "nonce": "1",
                             "user_id": "1001"}, auth_mode="signed")
    assert not kx.needs_token(acct, None) and kx.needs_token(account("kiiex", KX), None)
    sent = [kx.headers(acct, None, NOW) for _ in range(50)]
    nonces = [int(h["Nonce"]) for h in sent]
    assert nonces == sorted(set(nonces)) and nonces[0] >= int(NOW * 1000)  # milliseconds, never repeated
    assert set(sent[0]) == {"APIKey", "Signature", "UserId", "Nonce"}
    assert sent[0]["Signature"] == kiiex_signature("s3cr3t-api-secret", sent[0]["Nonce"], "1001", "a1b2c3d4e5f6")
    assert kx.headers(account("kiiex", {**acct.fields, "user_id": "1001"}, auth_mode="signed"), None, NOW - 60)[
        "Nonce"] > sent[-1]["Nonce"]  # a clock stepping back repeats nothing
    with pytest.raises(InputError, match="signed mode"):
        kx.login(acct, None, NOW)  # type: ignore[arg-type]  # refused before any request
    assert "KEYWARD_APTOKEN" not in kx.exec_env(acct, None)
    with pytest.raises(AuthRejected, match="signed request") as info:
        kx.raise_for_error(acct, response(401, {"result": False, "errorcode": 20, "errormsg": "Not Authorized"}))
    assert "auth_mode session" in info.value.hint and "keyward login" not in info.value.hint
    doctor = " ".join(kx.doctor(acct, NOW))
    assert "signed mode" in doctor and "cannot lock the user out" in doctor and "printed headers" in doctor
    with pytest.raises(InputError, match="auth_mode must be one of: session, signed"):
        kx.headers(account("kiiex", KX, auth_mode="hmac"), None, NOW)


# --- Hyper Solutions ---------------------------------------------------------------------

HYPER_KEY = "a-jwt-key-that-is-at-least-32-bytes-long"
# Computed independently (json + hmac + base64, see git history): HS256 {key, exp} at NOW.
HYPER_EXPECTED = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJrZXkiOiJoeXBlci1hcGkta2V5LTAwMDEiLCJleHAiOjE4MDAwMDAwMTV9"
    ".DcjsM3C9SpJa73iUJoz-Q9ZzNOy3TT3ljw_sH4z3Lo4"
)


def test_hyper_signature_known_answer_at_a_fixed_time() -> None:
    acct = account("hypersolutions", {"api_key": "hyper-api-key-0001", "jwt_key": HYPER_KEY})
    tok = get_provider("hypersolutions").mint(acct, NOW)
    assert tok.value == HYPER_EXPECTED
    assert tok.expires_at == NOW + 15
    assert jwt.decode(tok.value, HYPER_KEY, algorithms=["HS256"], options={"verify_exp": False}) == {
        "key": "hyper-api-key-0001",
        "exp": int(NOW) + 15,
    }


def test_hyper_modes_and_header_names() -> None:
    hy = get_provider("hypersolutions")
    plain = account("hypersolutions", {"api_key": "K"})
    assert hy.mint(plain, NOW) is None
    assert hy.headers(plain, None, NOW) == {"x-api-key": "K"}

    signed = account("hypersolutions", {"api_key": "K", "jwt_key": HYPER_KEY}, token_lifetime_s=60)
    tok = hy.mint(signed, NOW)
    assert jwt.decode(tok.value, HYPER_KEY, algorithms=["HS256"], options={"verify_exp": False})["exp"] == NOW + 60
    assert set(hy.headers(signed, tok, NOW)) == {"x-api-key", "x-signature"}

    org = account("hypersolutions", {"api_key": "K", "app_key": "APP", "app_secret": "app-secret-" + "x" * 30})
    tok = hy.mint(org, NOW)
    claims = jwt.decode(tok.value, "app-secret-" + "x" * 30, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"key": "APP", "exp": int(NOW) + 60}
    assert hy.headers(org, tok, NOW) == {"x-api-key": "K", "x-app-key": "APP", "x-app-signature": tok.value}

    # Both keys stored: both signatures, as the official SDK's build_headers sends them.
    both = account("hypersolutions", {"api_key": "K", "jwt_key": HYPER_KEY, "app_key": "APP",
                                      "app_secret": "app-secret-" + "x" * 30})
    tok = hy.mint(both, NOW)
    headers = hy.headers(both, tok, NOW)
    assert set(headers) == {"x-api-key", "x-signature", "x-app-key", "x-app-signature"}
    user = jwt.decode(headers["x-signature"], HYPER_KEY, algorithms=["HS256"], options={"verify_exp": False})
    assert user == {"key": "K", "exp": int(NOW) + 60}
    assert hy.exec_env(both, tok)["KEYWARD_SIGNATURE"] == headers["x-signature"]


def test_hyper_short_jwt_key_signs_without_warning_and_doctor_reports_it(recwarn) -> None:
    token = hyper_sign("k", "short", 1)
    assert not recwarn.list
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):  # PyJWT's own check, on decode
        assert jwt.decode(token, "short", algorithms=["HS256"], options={"verify_exp": False}) == {"key": "k", "exp": 1}
    lines = get_provider("hypersolutions").doctor(account("hypersolutions", {"api_key": "K", "jwt_key": "short"}), NOW)
    assert any("shorter than the 32 bytes" in line for line in lines)


def test_hyper_usage_quota_is_its_rate_limit_status() -> None:
    body = {"balanceEuro": 1, "plans": [
        {"product": "a", "requestsQuota": 1000, "requestsRemaining": 900, "expiresAt": "2027-01-15T00:00:00Z"},
        {"product": "b", "requestsQuota": 50, "requestsRemaining": 7, "expiresAt": "2027-01-16T00:00:00Z"},
    ]}
    rl = get_provider("hypersolutions").rate_limit(response(200, body), NOW)
    assert (rl.limit, rl.remaining, rl.observed_at) == (50, 7, NOW)
    from vault.core.model import parse_iso

    assert rl.reset_at == parse_iso("2027-01-16T00:00:00Z")


@pytest.mark.parametrize(
    ("status", "text", "words"),
    [(401, "signature expired", "clock"), (401, "invalid signature", "JWT key"), (401, "invalid api key", "does not know"),
     (403, "api key disabled", "disabled"), (401, "invalid app key", "app")],
)
def test_hyper_errors_are_classified_not_quoted(status, text, words) -> None:
    with pytest.raises(AuthRejected) as info:
        get_provider("hypersolutions").raise_for_error(
            account("hypersolutions", {"api_key": "K"}), response(status, {"error": text + " " + SECRETISH})
        )
    assert words in str(info.value)
    assert SECRETISH not in str(info.value)


# --- PowerTrade --------------------------------------------------------------------------


def test_powertrade_es256_token_verifies_with_the_public_key_and_has_exactly_the_documented_claims(ec_key) -> None:
    key, pem = ec_key
    acct = account("powertrade", {"api_key": "pt-key-1", "private_key": pem})
    tok = get_provider("powertrade").mint(acct, NOW + 0.75)
    header = jwt.get_unverified_header(tok.value)
    assert header == {"alg": "ES256", "typ": "JWT"}
    claims = jwt.decode(tok.value, key.public_key(), algorithms=["ES256"], options={"verify_exp": False, "verify_iat": False})
    assert set(claims) == {"sub", "iat", "exp", "client", "nonce"}
    assert claims["sub"] == "pt-key-1" and claims["client"] == "api"
    assert claims["iat"] == int(NOW) - 5 and claims["exp"] == claims["iat"] + 30
    assert claims["nonce"] >= int(NOW)  # Unix seconds by default, like the venue's own examples
    assert claims["nonce"] < int(NOW) * 10
    assert (tok.issued_at, tok.expires_at, tok.kind) == (claims["iat"], claims["exp"], "jwt")
    with pytest.raises(jwt.InvalidSignatureError):
        other = ec.generate_private_key(ec.SECP256R1()).public_key()
        jwt.decode(tok.value, other, algorithms=["ES256"], options={"verify_exp": False})


def test_powertrade_lifetime_setting_and_its_warning(ec_key) -> None:
    pt = get_provider("powertrade")
    acct = account("powertrade", {"api_key": "k", "private_key": ec_key[1]}, token_lifetime_s=60)
    tok = pt.mint(acct, NOW)
    assert tok.expires_at - tok.issued_at == 60
    assert any("exceeds" in w for w in pt.warnings(acct))
    assert pt.warnings(account("powertrade", {"api_key": "k", "private_key": ec_key[1]})) == []
    with pytest.raises(InputError, match="token_lifetime_s"):
        pt.mint(account("powertrade", {"api_key": "k", "private_key": ec_key[1]}, token_lifetime_s="soon"), NOW)


def test_powertrade_nonce_rises_strictly_even_within_one_millisecond_and_across_threads() -> None:
    source = NonceSource()
    same = [source.next(NOW) for _ in range(5)]
    assert same == sorted(set(same)) and len(same) == 5
    assert source.next(NOW - 10) > same[-1]  # a clock stepping back does not repeat one
    seen: list[int] = []

    def worker() -> None:
        seen.extend(source.next(NOW) for _ in range(200))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 800


def test_powertrade_nonce_unit_and_uri_settings(ec_key) -> None:
    pt = get_provider("powertrade")
    fields = {"api_key": "k", "private_key": ec_key[1]}

    def nonce(acct: Account, at: float) -> int:
        return jwt.decode(pt.mint(acct, at).value, options={"verify_signature": False})["nonce"]

    seconds = [nonce(account("powertrade", fields), NOW + 100) for _ in range(3)]
    assert seconds[0] >= int(NOW) + 100 and seconds == sorted(set(seconds))  # strictly rising within a second
    ms = account("powertrade", fields, nonce_unit="ms")
    assert nonce(ms, NOW + 200) >= int((NOW + 200) * 1000)
    assert "uri" not in jwt.decode(pt.mint(ms, NOW).value, options={"verify_signature": False})
    with_uri = account("powertrade", fields, uri="wss://api.wss.test.power.trade")
    assert jwt.decode(pt.mint(with_uri, NOW).value, options={"verify_signature": False})["uri"] == (
        "wss://api.wss.test.power.trade")
    with pytest.raises(InputError, match="nonce_unit must be one of: s, ms"):
        pt.mint(account("powertrade", fields, nonce_unit="us"), NOW)
    for bad in ("http://x.example", "wss://", "wss://a b", "javascript:alert(1)"):
        with pytest.raises(InputError, match="uri must be"):
            pt.mint(account("powertrade", fields, uri=bad), NOW)


def test_powertrade_nonce_stays_above_the_last_saved_tokens(ec_key, monkeypatch) -> None:
    """Another process saved a token with a higher nonce: the next one still rises."""
    import vault.venues.powertrade as ptmod

    pt = get_provider("powertrade")
    acct = account("powertrade", {"api_key": "k-floor", "private_key": ec_key[1]})
    acct.token = pt.mint(account("powertrade", {"api_key": "k-floor", "private_key": ec_key[1]}), NOW + 5000)
    monkeypatch.setattr(ptmod, "NONCES", NonceSource())  # a new process: nothing remembered here
    floor = jwt.decode(acct.token.value, options={"verify_signature": False})["nonce"]
    assert jwt.decode(pt.mint(acct, NOW).value, options={"verify_signature": False})["nonce"] == floor + 1


def test_powertrade_replayed_nonce_hint_names_a_millisecond_client_on_the_key() -> None:
    with pytest.raises(AuthRejected) as info:
        get_provider("powertrade").raise_for_error(account("powertrade", {"api_key": "k"}),
                                                   response(401, {"error": "replayed_nonce", "message": "x"}))
    assert "nonce_unit ms" in info.value.hint and "its own key" in info.value.hint


def test_powertrade_doctor_explains_a_key_shared_with_seconds_nonce_bots(ec_key) -> None:
    pt = get_provider("powertrade")
    fields = {"api_key": "k", "private_key": ec_key[1]}
    ms = " ".join(pt.doctor(account("powertrade", fields, nonce_unit="ms"), NOW))
    assert "warning: nonce_unit is ms" in ms and "seconds-based bot" in ms and "locks" in ms
    assert "ok: nonces are Unix seconds" in " ".join(pt.doctor(account("powertrade", fields), NOW))


def test_key_cache_parses_once_per_key_and_forgets_a_rotated_one(ec_key, monkeypatch) -> None:
    import vault.venues.powertrade as ptmod

    loads = []
    real = ptmod.load_private_key
    monkeypatch.setattr(ptmod, "load_private_key", lambda pem: loads.append(1) or real(pem))
    cache = KeyCache()
    acct = account("powertrade", {"api_key": "k", "private_key": ec_key[1]})
    pt = get_provider("powertrade")
    for _ in range(5):
        pt.mint(acct, NOW, cache)
    assert len(loads) == 1 and len(cache) == 1
    other = ec.generate_private_key(ec.SECP256R1())
    acct.fields["private_key"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    tok = pt.mint(acct, NOW, cache)
    jwt.decode(tok.value, other.public_key(), algorithms=["ES256"], options={"verify_exp": False, "verify_iat": False})
    assert len(loads) == 2 and len(cache) == 1  # the old key is gone
    cache.clear()
    assert len(cache) == 0


def test_powertrade_header_and_error_hints() -> None:
    pt = get_provider("powertrade")
    acct = account("powertrade", {"api_key": "k", "private_key": "-"})
    assert pt.headers(acct, Token("J", NOW, NOW + 30), NOW) == {"X-Power-Trade": "J"}
    with pytest.raises(AuthRejected) as info:
        pt.raise_for_error(acct, response(401, {"error": "expired", "message": SECRETISH}))
    assert "expired" in str(info.value) and "clock" in str(info.value) and SECRETISH not in str(info.value)
    with pytest.raises(AuthRejected) as info:
        pt.raise_for_error(acct, response(401, {"error": "eyJhbGciOiJFUzI1NiJ9"}))  # not a code: not quoted
    assert "eyJ" not in str(info.value)


# --- TradeReady --------------------------------------------------------------------------

TR = {"api_key": "ak_live_1", "api_secret": "sk_live_2"}


def test_tradeready_sends_exactly_one_credential_per_request() -> None:
    """The backend judges X-API-Key first and ignores a Bearer beside it: one credential
    per request, the bearer (+ X-Agent-Id) only for agents and battles."""
    tr = get_provider("tradeready")
    tok = Token("BEARER", NOW, NOW + 3600, "bearer")
    acct = account("tradeready", TR)
    assert tr.headers(acct, tok, NOW, "/api/v1/account/info") == {"X-API-Key": "ak_live_1"}
    assert tr.headers(acct, tok, NOW, "/api/v1/agents") == {"Authorization": "Bearer BEARER"}
    agent = account("tradeready", TR | {"agent_id": "ag-1", "agent_api_key": "ak_live_agent"})
    assert tr.headers(agent, tok, NOW, "/api/v1/battles/3") == {"Authorization": "Bearer BEARER", "X-Agent-Id": "ag-1"}
    assert tr.headers(agent, tok, NOW, "/api/v1/trade/order") == {"X-API-Key": "ak_live_agent"}
    assert tr.headers(agent, tok, NOW, tr.common_path) == {"X-API-Key": "ak_live_agent"}  # `headers` without --path
    assert tr.headers(agent, tok, NOW) == {"Authorization": "Bearer BEARER", "X-Agent-Id": "ag-1"}  # the token's own
    assert tr.headers(agent, None, NOW, "/api/v1/agents") == {"X-API-Key": "ak_live_agent"}  # no bearer: the key
    assert tr.needs_token(agent, None) and tr.needs_token(agent, "/api/v1/agents")  # `keyward token`: the bearer
    assert not tr.needs_token(agent, tr.common_path)


def test_tradeready_refresh_rule() -> None:
    tr = get_provider("tradeready")
    assert tr.is_fresh(Token("t", NOW, NOW + 3600, "bearer"), NOW + 3600 - 301)
    assert not tr.is_fresh(Token("t", NOW, NOW + 3600, "bearer"), NOW + 3600 - 299)
    assert not tr.is_fresh(None, NOW)
    assert tr.is_fresh(Token("t", NOW, NOW + 60, "bearer"), NOW + 40)  # short tokens: a quarter of their life


def test_tradeready_login_expiry_is_moved_onto_our_clock() -> None:
    tr = get_provider("tradeready")
    body = {"token": "T", "expires_at": "2027-01-15T09:00:00Z", "token_type": "Bearer"}
    tok = tr.parse_login(account("tradeready", TR), response(200, body), NOW, skew_s=120.0)
    from vault.core.model import parse_iso

    assert tok.expires_at == parse_iso("2027-01-15T09:00:00Z") - 120
    assert tok.kind == "bearer"


@pytest.mark.parametrize(
    ("status", "code", "error", "words", "url"),
    [
        (401, "INVALID_API_KEY", AuthRejected, "does not know the API key", "/api/v1/account/info"),
        (401, "INVALID_TOKEN", AuthRejected, "keyward login", "/api/v1/agents"),
        (401, "INVALID_TOKEN", AuthRejected, "API secret does not match", "/api/v1/auth/login"),
        (403, "ACCOUNT_SUSPENDED", AuthRejected, "suspended", "/api/v1/account/info"),
        (403, "PERMISSION_DENIED", AuthRejected, "not this account's", "/api/v1/agents"),
        (404, "ACCOUNT_NOT_FOUND", VenueError, "agent_id", "/api/v1/agents"),
        (503, "SERVICE_UNAVAILABLE", ServerError, "retry later", "/api/v1/account/info"),
    ],
)
def test_tradeready_envelope_codes_become_what_to_do(status, code, error, words, url) -> None:
    body = {"error": {"code": code, "message": SECRETISH}}
    with pytest.raises(error) as info:
        get_provider("tradeready").raise_for_error(account("tradeready", TR), response(status, body, "https://v.example" + url))
    assert words in str(info.value) and code in str(info.value)
    assert SECRETISH not in str(info.value)


@pytest.mark.parametrize(
    ("status", "code", "said", "words"),
    [
        # the published backend: a wrong secret is INVALID_API_KEY, an unknown key ACCOUNT_NOT_FOUND
        (401, "INVALID_API_KEY", "API secret is invalid.", "API secret does not match"),
        (404, "ACCOUNT_NOT_FOUND", "Account not found.", "agent's key cannot log in"),
        # the seed page: a wrong secret is INVALID_TOKEN
        (401, "INVALID_TOKEN", "API secret does not match.", "API secret does not match"),
    ],
)
def test_tradeready_login_refusals_name_the_right_cause_and_keep_the_venues_words(status, code, said, words) -> None:
    body = {"error": {"code": code, "message": said}}
    url = "https://v.example/api/v1/auth/login"
    with pytest.raises(VenueError) as info:
        get_provider("tradeready").raise_for_error(account("tradeready", TR), response(status, body, url))
    text = f"{info.value} {info.value.hint}"
    assert words in text and code in text and f"TradeReady says: {said}" in text
    assert "agent_id" not in text and "does not know" not in text


def test_tradeready_fastapi_validation_errors_say_which_field_and_why() -> None:
    body = {"detail": [{"type": "value_error", "loc": ["body", "email"], "input": "nope",
                        "msg": "value is not a valid email address: An email address must have an @-sign."}]}
    with pytest.raises(VenueError) as info:
        get_provider("tradeready").raise_for_error(
            account("tradeready", {}), response(422, body, "https://v.example/api/v1/auth/register")
        )
    assert "email: value is not a valid email address" in str(info.value) and "VALIDATION_ERROR" in str(info.value)
    assert "nope" not in str(info.value)  # the input is never echoed
    # A token-like message is not quoted, whatever the venue sends.
    odd = {"detail": [{"loc": ["body", "api_secret"], "msg": SECRETISH}]}
    with pytest.raises(VenueError) as info:
        get_provider("tradeready").raise_for_error(account("tradeready", TR), response(422, odd))
    assert "api_secret: invalid" in str(info.value) and SECRETISH not in str(info.value)


def test_tradeready_a_venue_message_holding_a_stored_value_is_not_quoted() -> None:
    body = {"error": {"code": "INVALID_API_KEY", "message": "Key ak_live_1 was refused here"}}
    with pytest.raises(AuthRejected) as info:
        get_provider("tradeready").raise_for_error(account("tradeready", TR), response(401, body))
    assert "ak_live_1" not in str(info.value) and "says" not in str(info.value)


def test_tradeready_429_carries_retry_after() -> None:
    body = {"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "slow", "details": {"retry_after_seconds": 7}}}
    with pytest.raises(RateLimited) as info:
        get_provider("tradeready").raise_for_error(account("tradeready", TR), response(429, body, **{"Retry-After": "7"}))
    assert info.value.retry_after == 7
    assert get_provider("tradeready").rate_limit(
        response(200, {}, **{"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "423", "X-RateLimit-Reset": "1742390400"}), NOW
    ).remaining == 423


# --- settings ----------------------------------------------------------------------------


def test_every_venue_declares_its_settings_with_valid_defaults() -> None:
    for venue in ("powertrade", "tradeready", "hypersolutions", "kiiex"):
        provider = get_provider(venue)
        specs = {spec.name: spec for spec in provider.settings}
        assert specs["health_path"].default == provider.health_path
        for spec in specs.values():
            assert spec.default is None or spec.parse(spec.default) == spec.default
    assert {s.name for s in get_provider("powertrade").settings} >= {"token_lifetime_s", "health_path", "nonce_unit", "uri"}
    assert {s.name for s in get_provider("kiiex").settings} >= {"session_idle_s", "oms_id", "health_path", "auth_mode"}


@pytest.mark.parametrize("raw", ["0", "86401", "-5", "soon", "1.5", True, None, 3.0])
def test_a_lifetime_setting_is_a_whole_number_of_seconds_in_range(raw) -> None:
    spec = next(s for s in get_provider("powertrade").settings if s.name == "token_lifetime_s")
    with pytest.raises(InputError, match="token_lifetime_s must be a whole number of seconds from 1 to 86400"):
        spec.parse(raw)
    assert spec.parse(" 25 ") == 25 and spec.parse(25) == 25


@pytest.mark.parametrize("raw", ["@evil.example/x", "evil.example/x", "", "/a b", "/a#b", "/a\\b", "/a\nb", 7])
def test_a_health_path_must_stay_below_the_base_url(raw) -> None:
    from vault.venues.base import checked_path

    with pytest.raises(InputError, match="must be a path starting with /"):
        checked_path(raw)
    for venue in ("powertrade", "tradeready", "hypersolutions", "kiiex"):
        fields = {"powertrade": {"api_key": "k", "private_key": "-"}, "tradeready": TR,
                  "hypersolutions": {"api_key": "K"}, "kiiex": KX}[venue]
        if raw != "":  # empty means "the default"
            with pytest.raises(InputError):
                get_provider(venue).health_request(account(venue, fields, health_path=raw))
    assert checked_path("/v1/balance/funds_holdings?x=1") == "/v1/balance/funds_holdings?x=1"
    assert get_provider("kiiex").health_request(account("kiiex", KX, health_path="/GetUserAccountInfos", oms_id=3)) == (
        "POST", "/GetUserAccountInfos", {"OMSId": 3, "UserId": 7})


def test_hyper_warns_about_a_signature_lifetime_past_the_sdks_without_claiming_a_refusal() -> None:
    hy = get_provider("hypersolutions")
    assert hy.warnings(account("hypersolutions", {"api_key": "K", "jwt_key": HYPER_KEY}, token_lifetime_s=60)) == []
    [warning] = hy.warnings(account("hypersolutions", {"api_key": "K"}, token_lifetime_s=61))
    assert "60 s" in warning and "refuse" not in warning  # no published source states a ceiling
    assert "refuses" not in next(s for s in hy.settings if s.name == "token_lifetime_s").help


def test_hyper_doctor_explains_an_organisation_account_with_and_without_a_jwt_key() -> None:
    hy = get_provider("hypersolutions")
    org = {"api_key": "K", "app_key": "APP", "app_secret": "app-secret-" + "x" * 30}
    without = " ".join(hy.doctor(account("hypersolutions", org), NOW))
    assert "without a JWT key" in without and "add its jwt_key" in without
    with_key = " ".join(hy.doctor(account("hypersolutions", org | {"jwt_key": HYPER_KEY}), NOW))
    assert "x-signature" in with_key and "every signature" in with_key


def test_powertrade_nonce_race_is_told_apart_from_other_refusals() -> None:
    from vault.venues.powertrade import nonce_raced

    assert nonce_raced(response(401, {"error": "replayed_nonce", "message": "x"}))
    assert not nonce_raced(response(401, {"error": "bad_signature"}))
    assert not nonce_raced(response(403, {"error": "replayed_nonce"}))
    assert not nonce_raced(httpx.Response(401, content=b"<html>", request=httpx.Request("GET", "https://v.example")))
