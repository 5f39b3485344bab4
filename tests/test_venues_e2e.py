"""Each venue end to end over real loopback HTTP: credentials issued once by the sandbox,
stored in a real vault, minted or logged in through VenueOps, private endpoints answering
200, and refusals (tampered, expired, wrong key, wrong clock) explained."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

import vault
from vault.core.errors import AccountLockedOut, AuthRejected, InputError, SecondFactorRequired
from vault.net.http import make_client
from vault.ops.venue_ops import LOGIN_FAILED_AT, VenueOps

from .test_agent import agent, short_runtime  # noqa: F401  (fixtures: a real `keyward unlock` agent)

PRIVATE = {
    "powertrade": ("GET", "/v1/balance/funds_holdings"),
    "tradeready": ("GET", "/api/v1/account/balance"),
    "hypersolutions": ("GET", "/usage"),
    "kiiex": ("POST", "/GetUserAccountInfos"),
}


@pytest.fixture
def notices() -> list[str]:
    return []


@pytest.fixture
def ops(service, notices):
    with VenueOps(service, notify=notices.append) as o:
        yield o


def audit_of(service, label: str) -> list[tuple[str, str]]:
    return [(e.action, e.outcome) for e in service.data.audit if e.account == label]


# --- the happy path, per venue -------------------------------------------------------------


@pytest.mark.parametrize("venue", list(PRIVATE))
def test_issue_store_authenticate_and_call_a_private_endpoint(venue, ops, service, sandbox, sandbox_account) -> None:
    sandbox_account(venue, "acct")
    health = ops.check("acct")
    assert health.ok, health.message
    assert health.status == 200 and health.latency_ms is not None and abs(health.skew_s) < 2

    creds = ops.headers("acct")
    method, path = PRIVATE[venue]
    with make_client() as http:
        r = http.request(method, creds.base_url + path, headers=creds.headers)
    assert r.status_code == 200, r.text

    acct = service.get("acct")
    assert acct.health.ok and acct.rate_limit is not None and acct.rate_limit.remaining is not None
    assert acct.history and acct.history[-1] == acct.rate_limit.remaining
    assert ("check", "ok") in audit_of(service, "acct") and ("mint", "ok") in audit_of(service, "acct")
    if venue == "tradeready":
        # The common case is an X-API-Key call: no login.  /agents takes the bearer alone.
        assert set(creds.headers) == {"X-API-Key"} and acct.token is None
        assert ("login", "ok") not in audit_of(service, "acct")
        creds = ops.headers("acct", "/api/v1/agents")
        assert set(creds.headers) == {"Authorization", "X-Agent-Id"}
        with make_client() as http:
            assert http.get(creds.base_url + "/api/v1/agents", headers=creds.headers).status_code == 200
        acct = service.get("acct")
    if venue in ("tradeready", "kiiex"):
        assert acct.token is not None and acct.token.kind == ("bearer" if venue == "tradeready" else "session")
        assert ("login", "ok") in audit_of(service, "acct")


@pytest.mark.parametrize("venue", list(PRIVATE))
def test_python_api_signs_every_request_sync_and_async(venue, ops, sandbox, sandbox_account) -> None:
    sandbox_account(venue, "acct")
    auth = vault.auth("acct", ops=ops)
    method, path = PRIVATE[venue]
    with httpx.Client(base_url=auth.base_url, auth=auth) as client:
        for _ in range(3):  # PowerTrade's rising nonce: each request needs its own token
            assert client.request(method, path).status_code == 200

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=auth.base_url, auth=auth) as client:
            return [(await client.request(method, path)).status_code for _ in range(2)]

    assert asyncio.run(run()) == [200, 200]


def test_python_api_refuses_to_send_credentials_to_another_origin(ops, sandbox, sandbox_account) -> None:
    sandbox_account("hypersolutions", "hy")
    auth = vault.auth("hy", ops=ops)
    seen: list[httpx.Request] = []
    with httpx.Client(auth=auth, transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200))) as client:
        with pytest.raises(InputError, match="refusing to attach"):
            client.get("https://evil.example/usage")
    assert seen == []


def test_vault_client_helper(ops, sandbox, sandbox_account) -> None:
    sandbox_account("powertrade", "pt")
    with vault.client("pt", ops=ops) as client:
        assert client.get("/v1/position/funds").status_code == 200


# --- PowerTrade refusals -------------------------------------------------------------------


def test_powertrade_tampered_token_is_refused_and_keyward_says_why(ops, sandbox, sandbox_account) -> None:
    acct = sandbox_account("powertrade", "pt")
    creds = ops.headers("pt")
    head, payload, sig = creds.headers["X-Power-Trade"].split(".")
    tampered = ".".join([head, payload, ("A" if sig[0] != "A" else "B") + sig[1:]])
    with make_client() as http:
        r = http.get(creds.base_url + "/v1/position/funds", headers={"X-Power-Trade": tampered})
    assert r.status_code == 401
    from vault.venues import get_provider

    with pytest.raises(AuthRejected) as info:
        get_provider("powertrade").raise_for_error(acct, r)
    assert "bad_signature" in str(info.value) and "private key" in str(info.value)


def test_powertrade_wrong_key_is_refused_with_an_environment_hint(ops, sandbox, sandbox_account) -> None:
    other = sandbox.issue("powertrade")
    mine = sandbox.issue("powertrade")
    sandbox_account("powertrade", "pt", fields={"api_key": mine["api_key"], "private_key": other["private_key"]})
    health = ops.check("pt")
    assert not health.ok and health.status == 401
    assert "bad_signature" in health.message and "environment" in health.message
    assert any(line.startswith("hint: keys are per environment") for line in ops.doctor("pt"))


def test_powertrade_expired_token_from_a_slow_clock_names_the_skew(service, sandbox, sandbox_account) -> None:
    sandbox_account("powertrade", "pt")
    with VenueOps(service, clock=lambda: time.time() - 120, notify=lambda m: None) as slow:
        health = slow.check("pt")
    assert not health.ok and health.status == 401
    assert "expired" in health.message and "skew" in health.message
    assert health.skew_s == pytest.approx(120, abs=2)


def test_powertrade_429_is_waited_out_with_a_fresh_nonce(ops, sandbox, sandbox_account, notices) -> None:
    sandbox_account("powertrade", "pt")
    sandbox.configure(rate_limit=2, rate_window_s=2.0)  # wide enough that a loaded machine still trips it
    results = [ops.check("pt") for _ in range(3)]
    assert all(h.ok for h in results), [h.message for h in results]
    assert any("rate-limited" in n and "waiting" in n for n in notices)
    assert "waited" in results[-1].message


# --- TradeReady ----------------------------------------------------------------------------


def test_tradeready_bearer_is_cached_and_refreshed_only_when_needed(ops, service, sandbox, sandbox_account) -> None:
    sandbox_account("tradeready", "tr")
    first = ops.token("tr").token
    assert ops.token("tr").token.value == first.value  # cached: no second login
    assert audit_of(service, "tr").count(("login", "ok")) == 1
    forced = ops.token("tr", force=True).token
    assert audit_of(service, "tr").count(("login", "ok")) == 2 and forced.expires_at >= first.expires_at
    # the bearer reaches JWT-only endpoints
    creds = ops.headers("tr")
    with make_client() as http:
        assert http.get(creds.base_url + "/api/v1/agents", headers=creds.headers).status_code == 200


def test_tradeready_short_lived_bearer_is_refreshed_before_it_dies(ops, service, sandbox, sandbox_account) -> None:
    sandbox_account("tradeready", "tr")
    sandbox.configure(tradeready_jwt_lifetime_s=200)
    tok = ops.token("tr").token
    assert 190 < tok.expires_at - time.time() <= 201
    clock = {"t": time.time() + 160}  # a quarter of 200 s or less left: refresh
    later = VenueOps(service, clock=lambda: clock["t"], notify=lambda m: None)
    assert later.token("tr").token.expires_at > tok.expires_at + 100
    assert audit_of(service, "tr").count(("login", "ok")) == 2


def test_tradeready_tampered_bearer_is_refused_and_the_api_relogs_once(ops, service, sandbox, sandbox_account) -> None:
    sandbox_account("tradeready", "tr")
    ops.login("tr")

    def tamper(a, data):
        from vault.core.model import Token

        a.token = Token(a.token.value[:-2] + "xx", a.token.issued_at, a.token.expires_at, "bearer")

    ops._change("tr", tamper)
    creds = ops.headers("tr", "/api/v1/agents")
    with make_client() as http:
        r = http.get(creds.base_url + "/api/v1/agents", headers=creds.headers)
    assert r.status_code == 401
    from vault.venues import get_provider

    with pytest.raises(AuthRejected, match="keyward login tr"):
        get_provider("tradeready").raise_for_error(service.get("tr"), r)

    logins = audit_of(service, "tr").count(("login", "ok"))
    with vault.client("tr", ops=ops) as client:
        assert client.get("/api/v1/agents").status_code == 200  # 401, re-login, 200
    assert audit_of(service, "tr").count(("login", "ok")) == logins + 1


@pytest.mark.parametrize("code", ["INVALID_API_KEY", "INVALID_TOKEN"])  # the backend's, the seed page's
def test_tradeready_login_refusals_name_the_cause_for_either_code(ops, sandbox, sandbox_account, code) -> None:
    sandbox.configure(tradeready_wrong_secret_code=code)
    fields = sandbox.issue("tradeready", display_name="x")
    sandbox_account("tradeready", "tr", fields={"api_key": fields["api_key"], "api_secret": "sk_live_wrong"})
    with pytest.raises(AuthRejected) as info:
        ops.login("tr")
    text = str(info.value)
    assert "API secret does not match" in text and code in text and "TradeReady says: API secret" in text
    assert "agent" not in text.split(":")[0]  # not "agent keys cannot log in"
    sandbox_account("tradeready", "ghost", fields={"api_key": "ak_live_" + "0" * 64, "api_secret": "sk_live_x"})
    from vault.core.errors import VenueError

    with pytest.raises(VenueError) as info:
        ops.login("ghost")
    assert "no account with the API key" in str(info.value) and "ACCOUNT_NOT_FOUND" in str(info.value)
    assert "check the account's agent_id" not in str(info.value)


def test_cli_register_with_a_bad_email_says_which_field_and_why(vault, sb) -> None:
    r = vault("register", "tradeready", "bot", "--display-name", "Bot", "--email", "nope",
              "--base-url", sb.base_url("tradeready"))
    assert r.code != 0 and r.err.count("\n") == 1, r.err
    assert "email: value is not a valid email address" in r.err and "HTTP 422" in r.err


def test_tradeready_wrong_secret_says_so(ops, sandbox, sandbox_account) -> None:
    fields = sandbox.issue("tradeready", display_name="x")
    sandbox_account("tradeready", "tr", fields={"api_key": fields["api_key"], "api_secret": "sk_live_wrong"})
    with pytest.raises(AuthRejected) as info:
        ops.login("tr")
    assert "API secret does not match" in str(info.value)
    assert "sk_live_wrong" not in str(info.value)
    assert ops.check("tr").ok  # X-API-Key alone still works for the health call


# --- Hyper Solutions -----------------------------------------------------------------------


def test_hyper_wrong_jwt_key_is_refused(ops, sandbox, sandbox_account) -> None:
    issued = sandbox.issue("hypersolutions")
    sandbox_account("hypersolutions", "hy", fields={"api_key": issued["api_key"], "jwt_key": "x" * 40})
    health = ops.check("hy")
    assert not health.ok and health.status == 401 and "JWT key is wrong" in health.message


def test_hyper_organisation_mode(ops, sandbox, sandbox_account) -> None:
    sandbox_account("hypersolutions", "org", organization=True)  # api key, JWT key, app key and secret
    assert ops.check("org").ok
    assert set(ops.headers("org").headers) == {"x-api-key", "x-signature", "x-app-key", "x-app-signature"}
    issued = sandbox.issue("hypersolutions", organization=True, require_signature=False)
    sandbox_account("hypersolutions", "org-only", fields={k: issued[k] for k in ("api_key", "app_key", "app_secret")})
    assert ops.check("org-only").ok
    assert set(ops.headers("org-only").headers) == {"x-api-key", "x-app-key", "x-app-signature"}
    assert any("without a JWT key" in line for line in ops.doctor("org-only"))


def test_hyper_quota_is_recorded_as_rate_limit(ops, service, sandbox, sandbox_account) -> None:
    sandbox_account("hypersolutions", "hy")
    sandbox.configure(hyper_quota=50)
    ops.check("hy")
    ops.check("hy")
    rl = service.get("hy").rate_limit
    assert (rl.limit, rl.remaining) == (50, 48)
    assert service.get("hy").history[-2:] == [49, 48]


def test_clock_skew_is_detected_and_explains_an_expired_signature(ops, sandbox, sandbox_account) -> None:
    sandbox_account("hypersolutions", "hy")
    sandbox.configure(clock_offset_s=8.0)  # within the 15 s signature, but past a third of it
    health = ops.check("hy")
    assert health.ok and "skew" in health.message and health.skew_s == pytest.approx(8, abs=1.5)
    sandbox.configure(clock_offset_s=20.0)  # the signature dies before it arrives
    health = ops.check("hy")
    assert not health.ok and "expired" in health.message
    assert re.search(r"skew \+(19|20)\.\d s", health.message)  # Date has 1 s resolution
    assert any(line.startswith("problem: clock skew") for line in ops.doctor("hy"))


# --- Kiiex ---------------------------------------------------------------------------------


def test_kiiex_session_is_cached_slid_and_sent_as_aptoken(ops, service, sandbox, sandbox_account) -> None:
    acct = sandbox_account("kiiex", "kx")
    first = ops.token("kx").token
    assert ops.headers("kx").headers == {"aptoken": first.value}
    assert sandbox.kiiex_attempts(acct.fields["user_id"]) == 1
    assert ops.check("kx").ok
    assert service.get("kx").token.expires_at >= first.expires_at


@pytest.mark.parametrize("shape", [{"kiiex_token_key": "Token"}, {"kiiex_camel_case": True}])
def test_kiiex_token_key_variants(shape, ops, sandbox, sandbox_account) -> None:
    sandbox.configure(**shape)
    sandbox_account("kiiex", "kx")
    assert ops.check("kx").ok


def test_kiiex_failed_login_is_reported_and_never_retried(ops, service, sandbox, sandbox_account) -> None:
    issued = sandbox.issue("kiiex")
    from vault.ops.formats import recognise

    _, fields, _ = recognise(issued)
    fields["api_secret"] = "0" * 32
    sandbox_account("kiiex", "kx", fields=fields)
    uid = fields["user_id"]

    health = ops.check("kx")
    assert not health.ok and "will not retry" in health.message
    assert sandbox.kiiex_attempts(uid) == 1
    # Nothing automatic tries again: not check, token, headers, the Python API nor a retry.
    assert not ops.check("kx").ok
    for attempt in (lambda: ops.token("kx"), lambda: ops.headers("kx"), lambda: ops.sign("kx", "/GetUserAccounts")):
        with pytest.raises(AuthRejected, match="will not log in again on its own"):
            attempt()
    with httpx.Client(base_url=sandbox.base_url("kiiex"), auth=vault.auth("kx", ops=ops)) as client:
        with pytest.raises(AuthRejected):
            client.post("/GetUserAccounts")
    assert sandbox.kiiex_attempts(uid) == 1
    assert service.get("kx").settings[LOGIN_FAILED_AT] is not None
    assert any("lock" in line for line in ops.doctor("kx"))
    assert sandbox.kiiex_attempts(uid) == 1
    # Only the explicit login tries again.
    with pytest.raises(AuthRejected):
        ops.login("kx")
    assert sandbox.kiiex_attempts(uid) == 2
    assert audit_of(service, "kx").count(("login", "failed")) == 2


def test_kiiex_lock_out_and_2fa_are_reported_clearly(ops, sandbox, sandbox_account) -> None:
    from vault.ops.formats import recognise

    sandbox.configure(kiiex_lockout_after=1)
    _, fields, _ = recognise(sandbox.issue("kiiex"))
    good_secret = fields["api_secret"]
    fields["api_secret"] = "0" * 32
    sandbox_account("kiiex", "kx", fields=fields)
    with pytest.raises(AuthRejected):
        ops.login("kx")
    ops._change("kx", lambda a, d: a.fields.__setitem__("api_secret", good_secret))
    with pytest.raises(AccountLockedOut, match="administrator"):
        ops.login("kx")  # right secret now, but the user is locked
    sandbox.unlock_kiiex(fields["user_id"])
    sandbox.configure(kiiex_requires_2fa=True)
    with pytest.raises(SecondFactorRequired, match="2FA"):
        ops.login("kx")
    sandbox.configure(kiiex_requires_2fa=False)
    assert ops.login("kx").token is not None
    assert ops.check("kx").ok  # a successful explicit login lifts keyward's own block


def test_kiiex_refused_session_is_dropped_not_retried(ops, service, sandbox, sandbox_account) -> None:
    acct = sandbox_account("kiiex", "kx")
    uid = acct.fields["user_id"]
    ops.login("kx")

    def corrupt(a, data):
        from vault.core.model import Token

        a.token = Token("not-a-session", a.token.issued_at, a.token.expires_at, "session")

    ops._change("kx", corrupt)
    with httpx.Client(base_url=sandbox.base_url("kiiex"), auth=vault.auth("kx", ops=ops)) as client:
        assert client.post("/GetUserAccounts").status_code == 401  # returned as is
        assert sandbox.kiiex_attempts(uid) == 1
        assert service.get("kx").token is None  # forgotten: the next request logs in once
        assert client.post("/GetUserAccounts").status_code == 200
    assert sandbox.kiiex_attempts(uid) == 2


def test_check_many_keeps_order_and_isolates_failures(ops, sandbox, sandbox_account) -> None:
    for venue in PRIVATE:
        sandbox_account(venue, venue)
    results = ops.check_many(["kiiex", "nope", "powertrade", "tradeready", "hypersolutions", "kiiex"])
    assert [label for label, _ in results] == ["kiiex", "nope", "powertrade", "tradeready", "hypersolutions"]
    assert [h.ok for _, h in results] == [True, False, True, True, True]
    assert "no account labelled" in results[1][1].message


def test_locked_vault_refuses_and_drops_parsed_keys(ops, service, sandbox, sandbox_account) -> None:
    sandbox_account("powertrade", "pt")
    ops.token("pt")
    assert len(ops._keys) == 1
    service.lock()
    from vault.core.errors import VaultLocked

    with pytest.raises(VaultLocked):
        ops.token("pt")
    assert len(ops._keys) == 0


# --- found in review: concurrency, unreachable venues, bad bodies, settings, doctor ---------


def test_powertrade_concurrent_requests_all_pass_despite_the_rising_nonce(ops, sandbox, sandbox_account) -> None:
    # Tokens are minted in nonce order but reach the venue in any order; a refusal that
    # says only "replayed_nonce" is signed again (one request at a time) and resent.
    from concurrent.futures import ThreadPoolExecutor

    sandbox_account("powertrade", "pt")
    sandbox.configure(rate_limit=10_000)
    auth = vault.auth("pt", ops=ops)
    sent: list[int] = []

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=auth.base_url, auth=auth, timeout=10,
                                     event_hooks={"request": [lambda r: _count(sent)]}) as client:
            answers = await asyncio.gather(*[client.get("/v1/position/funds") for _ in range(40)])
        return [r.status_code for r in answers]

    async def _count(box: list[int]) -> None:
        box.append(1)

    assert asyncio.run(burst()) == [200] * 40
    assert 40 <= len(sent) <= 40 * 4
    with httpx.Client(base_url=auth.base_url, auth=auth, timeout=10) as client, ThreadPoolExecutor(8) as pool:
        assert [r.status_code for r in pool.map(lambda _: client.get("/v1/position/funds"), range(40))] == [200] * 40


def test_powertrade_other_refusals_are_not_resent(ops, sandbox, sandbox_account) -> None:
    other = sandbox.issue("powertrade")
    mine = sandbox.issue("powertrade")
    sandbox_account("powertrade", "pt", fields={"api_key": mine["api_key"], "private_key": other["private_key"]})
    auth = vault.auth("pt", ops=ops)
    sent: list[httpx.Request] = []
    with httpx.Client(base_url=auth.base_url, auth=auth, event_hooks={"request": [sent.append]}) as client:
        r = client.get("/v1/position/funds")
    assert r.status_code == 401 and r.json()["error"] == "bad_signature" and len(sent) == 1


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kiiex_login_that_never_reached_the_venue_does_not_block_later_logins(ops, service, sandbox, sandbox_account):
    acct = sandbox_account("kiiex", "kx")
    good_url = acct.base_url
    ops._change("kx", lambda a, d: setattr(a, "base_url", f"http://127.0.0.1:{_closed_port()}/kiiex/ap"))
    from vault.core.errors import NetworkError

    with pytest.raises(NetworkError, match="cannot connect"):
        ops.token("kx")
    assert LOGIN_FAILED_AT not in service.get("kx").settings  # Kiiex saw nothing: nothing to fear
    assert ("login", "failed") in audit_of(service, "kx")
    ops._change("kx", lambda a, d: setattr(a, "base_url", good_url))
    assert ops.token("kx").token is not None  # logged in on its own, no `keyward login` needed
    assert sandbox.kiiex_attempts(acct.fields["user_id"]) == 1


def test_kiiex_login_that_timed_out_blocks_later_automatic_logins(service, sandbox, sandbox_account) -> None:
    # The venue may have counted it (and refused it): only an explicit login tries again.
    acct = sandbox_account("kiiex", "kx")
    sandbox.configure(latency_ms=1500)
    with VenueOps(service, client_factory=lambda: make_client(timeout=0.3), notify=lambda m: None) as slow:
        from vault.core.errors import NetworkError

        with pytest.raises(NetworkError, match="did not answer"):
            slow.token("kx")
        assert service.get("kx").settings[LOGIN_FAILED_AT] is not None
        sandbox.configure(latency_ms=0)
        with pytest.raises(AuthRejected, match="will not log in again on its own"):
            slow.token("kx")
    assert sandbox.kiiex_attempts(acct.fields["user_id"]) == 1


@pytest.mark.parametrize("venue", list(PRIVATE))
def test_a_health_answer_that_is_not_json_is_a_failure(venue, ops, sandbox, sandbox_account) -> None:
    sandbox_account(venue, "acct")
    if venue in ("tradeready", "kiiex"):
        ops.login("acct")  # so that only the health call meets the cut-off body
    sandbox.configure(malformed_json=True)
    health = ops.check("acct")
    assert not health.ok and health.status == 200 and "not valid JSON" in health.message


def test_a_health_path_that_would_leave_the_venue_is_refused_before_sending(ops, service, sandbox, sandbox_account):
    # Settings travel in bundles: "@host/..." appended to the base URL would move the
    # request, and the credentials in its headers, to another host.
    sandbox_account("hypersolutions", "hy")
    sent: list[httpx.Request] = []
    ops._factory = lambda: make_client(transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)))

    def point(a, d) -> None:
        a.base_url = "https://api.hypersolutions.co"  # the venue's own root: no path to hide in
        a.settings["health_path"] = "@evil.example/usage"

    ops._change("hy", point)
    health = ops.check("hy")
    assert not health.ok and "health_path must be a path starting with /" in health.message
    assert sent == []  # nothing left, least of all to evil.example


def test_settings_are_validated_and_change_what_is_minted(ops, service, sandbox, sandbox_account) -> None:
    sandbox_account("powertrade", "pt")
    names = [spec.name for spec, _ in ops.settings("pt")]
    assert names[:4] == ["token_lifetime_s", "health_path", "nonce_unit", "uri"]
    with pytest.raises(InputError, match="whole number of seconds"):
        ops.set_setting("pt", "token_lifetime_s", "soon")
    with pytest.raises(InputError, match="no setting 'session_idle_s'"):
        ops.set_setting("pt", "session_idle_s", "60")
    assert ops.set_setting("pt", "token_lifetime_s", "20") == []
    tok = ops.token("pt").token
    assert tok.expires_at - tok.issued_at == 20 and service.get("pt").settings["token_lifetime_s"] == 20
    assert any("exceeds" in w for w in ops.set_setting("pt", "token_lifetime_s", 60))
    health = ops.check("pt")
    assert not health.ok and "window_too_long" in health.message
    assert "keyward setting pt token_lifetime_s 30" in health.message
    ops.set_setting("pt", "token_lifetime_s", None)
    assert "token_lifetime_s" not in service.get("pt").settings and ops.check("pt").ok
    ops.set_setting("pt", "health_path", "/v1/balance/funds_holdings")
    assert ops.check("pt").ok


def test_doctor_names_the_environment_only_for_key_refusals(ops, service, sandbox, sandbox_account) -> None:
    other, mine = sandbox.issue("powertrade"), sandbox.issue("powertrade")
    sandbox_account("powertrade", "wrong", fields={"api_key": mine["api_key"], "private_key": other["private_key"]})
    assert any(line.startswith("hint: keys are per environment") for line in ops.doctor("wrong"))
    sandbox_account("powertrade", "long")
    ops.set_setting("long", "token_lifetime_s", 60)
    lines = ops.doctor("long")
    assert any("window_too_long" in line for line in lines)
    assert not any("keys are per environment" in line for line in lines)
    sandbox.configure(clock_offset_s=-60)  # the venue's clock behind: "not yet valid"
    ops.set_setting("long", "token_lifetime_s", None)
    lines = ops.doctor("long")
    assert any(line.startswith("problem: clock skew") for line in lines)
    assert not any("keys are per environment" in line for line in lines)
    assert len(lines) == len(set(lines))


def test_doctor_finds_a_wrong_tradeready_secret_that_the_health_call_cannot(ops, sandbox, sandbox_account) -> None:
    fields = sandbox.issue("tradeready", display_name="x")
    sandbox_account("tradeready", "tr", fields={"api_key": fields["api_key"], "api_secret": "sk_live_wrong"})
    assert ops.check("tr").ok  # X-API-Key alone answers the health call
    lines = ops.doctor("tr")
    assert any(line.startswith("problem: the login failed") and "API secret does not match" in line for line in lines)
    sandbox_account("tradeready", "good")
    assert any(line.startswith("ok: logged in (the API secret is right)") for line in ops.doctor("good"))


def test_doctor_says_no_answer_rather_than_no_date_header(ops, sandbox, sandbox_account) -> None:
    acct = sandbox_account("hypersolutions", "hy")
    ops._change("hy", lambda a, d: setattr(a, "base_url", f"http://127.0.0.1:{_closed_port()}/hypersolutions"))
    lines = ops.doctor("hy")
    assert "info: no answer from the venue, so the clock skew is unknown" in lines
    assert not any("sent no Date header" in line for line in lines)
    assert acct.label == "hy"


def test_doctor_of_a_locked_kiiex_user_says_an_administrator_must_unlock_it(ops, sandbox, sandbox_account) -> None:
    from vault.ops.formats import recognise

    sandbox.configure(kiiex_lockout_after=1)
    _, fields, _ = recognise(sandbox.issue("kiiex"))
    fields["api_secret"] = "0" * 32
    sandbox_account("kiiex", "kx", fields=fields)
    with pytest.raises(AuthRejected):
        ops.login("kx")
    with pytest.raises(AccountLockedOut):
        ops.login("kx")
    problems = [line for line in ops.doctor("kx") if line.startswith("problem:")]
    assert len(problems) == 1 and "administrator must unlock it" in problems[0]


def test_kiiex_session_expired_at_the_venue_is_reported_dropped_and_replaced_once(ops, service, sandbox, sandbox_account):
    clock = {"t": time.time()}
    sandbox.configure(kiiex_session_idle_s=60)
    acct = sandbox_account("kiiex", "kx")
    ops.clock = lambda: clock["t"]
    first = ops.login("kx").token
    sandbox.configure(clock_offset_s=120)  # two idle minutes pass at the venue
    clock["t"] += 120
    ops.set_setting("kx", "session_idle_s", 3600)  # keyward believes it still lives
    health = ops.check("kx")
    assert not health.ok and health.status == 401
    assert "refused the session" in health.message and "keyward login kx" in health.message
    assert service.get("kx").token is None  # dropped: the next call logs in, once
    assert ops.headers("kx").headers["aptoken"] != first.value
    assert sandbox.kiiex_attempts(acct.fields["user_id"]) == 2
    assert ops.check("kx").ok


def test_added_latency_shows_in_the_health_record(ops, sandbox, sandbox_account) -> None:
    sandbox_account("hypersolutions", "hy")
    sandbox.configure(latency_ms=300)
    health = ops.check("hy")
    assert health.ok and health.latency_ms >= 290


def test_kiiex_short_session_setting_does_not_log_in_on_every_request(ops, service, sandbox, sandbox_account) -> None:
    acct = sandbox_account("kiiex", "kx")
    ops.set_setting("kx", "session_idle_s", 120)
    for _ in range(5):
        ops.sign("kx", "/GetUserAccounts")
    ops.token("kx")
    assert sandbox.kiiex_attempts(acct.fields["user_id"]) == 1


def test_kiiex_short_session_in_steady_use_keeps_one_login(ops, service, sandbox, sandbox_account) -> None:
    # Each use slides the session at the venue; keyward's cached expiry must follow, or
    # a busy bot would log in again every few minutes.
    clock = {"t": time.time()}
    sandbox.configure(kiiex_session_idle_s=120)
    acct = sandbox_account("kiiex", "kx")
    ops.clock = lambda: clock["t"]
    ops.set_setting("kx", "session_idle_s", 120)
    offset = 0
    for _ in range(20):  # ten minutes of a request every 30 s
        creds = ops.sign("kx", "/GetUserAccounts")
        with make_client() as http:
            assert http.post(creds.base_url + "/GetUserAccounts", headers=creds.headers).status_code == 200
        clock["t"] += 30
        offset += 30
        sandbox.configure(clock_offset_s=float(offset))
    assert sandbox.kiiex_attempts(acct.fields["user_id"]) == 1


def test_powertrade_check_resends_once_when_another_client_raced_its_nonce(ops, sandbox, sandbox_account) -> None:
    # A bot on the same key in another process: its newer nonce may arrive first.
    import jwt as pyjwt

    sandbox_account("powertrade", "pt")
    seen: list[str] = []
    answers = [httpx.Response(401, json={"error": "replayed_nonce", "message": "x"}), httpx.Response(200, json={})]

    def venue(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["X-Power-Trade"])
        return answers.pop(0) if answers else httpx.Response(401, json={"error": "replayed_nonce"})

    ops._factory = lambda: make_client(transport=httpx.MockTransport(venue))
    assert ops.check("pt").ok
    nonces = [pyjwt.decode(t, options={"verify_signature": False})["nonce"] for t in seen]
    assert len(nonces) == 2 and nonces[1] > nonces[0]
    seen.clear()
    health = ops.check("pt")  # raced twice: reported, not resent again
    assert not health.ok and "replayed_nonce" in health.message and len(seen) == 2


# --- Kiiex signed mode (ccxt's ndax: the four headers on every request) ---------------------


def test_kiiex_signed_mode_end_to_end_never_calls_authenticate_user(ops, service, sandbox, sandbox_account) -> None:
    acct = sandbox_account("kiiex", "kx")
    assert ops.set_setting("kx", "auth_mode", "signed") == []
    user_id = acct.fields["user_id"]
    assert ops.check("kx").ok
    creds = ops.headers("kx")
    assert set(creds.headers) == {"APIKey", "Signature", "UserId", "Nonce"} and creds.token is None
    with make_client() as http:
        for _ in range(3):
            fresh = ops.headers("kx").headers
            assert http.post(creds.base_url + "/GetUserAccountInfos", headers=fresh).status_code == 200
    env = ops.exec_env("kx")
    assert set(__import__("json").loads(env["KEYWARD_HEADERS"])) == {"APIKey", "Signature", "UserId", "Nonce"}
    with vault.client("kx", ops=ops) as client:
        assert [client.post("/GetUserAccounts").status_code for _ in range(3)] == [200, 200, 200]
    with pytest.raises(InputError, match="signed headers"):
        ops.login("kx")
    assert sandbox.kiiex_attempts(user_id) == 0  # no AuthenticateUser: nothing to lock out
    assert ("login", "ok") not in audit_of(service, "kx") and service.get("kx").token is None
    doctor = ops.doctor("kx")
    assert any(line.startswith("info: signed mode") for line in doctor)
    assert any("signed-mode risk" in line for line in doctor)
    assert not any("lock-out risk" in line or "no session cached" in line for line in doctor)
    assert sandbox.kiiex_attempts(user_id) == 0


def test_kiiex_signed_mode_with_a_wrong_secret_is_refused_and_locks_nothing(ops, sandbox, sandbox_account) -> None:
    issued = sandbox_fields_kiiex(sandbox)
    sandbox_account("kiiex", "kx", fields=issued | {"api_secret": "0" * 32}, settings={"auth_mode": "signed"})
    health = ops.check("kx")
    assert not health.ok and health.status == 401 and "signed request" in health.message
    assert sandbox.kiiex_attempts(issued["user_id"]) == 0


def sandbox_fields_kiiex(sandbox) -> dict[str, str]:
    from .conftest import sandbox_fields

    return sandbox_fields(sandbox, "kiiex")


# --- TradeReady: a 429 at login, and rotation with a cached bearer -------------------------


def test_tradeready_429_at_login_is_reported_once_and_the_cached_bearer_kept(service, sandbox, sandbox_account) -> None:
    """One version of the backend limits logins per client IP: a 429 there is reported
    with its wait, never retried in a loop, and a cached bearer is used while valid."""
    import io

    sandbox_account("tradeready", "tr")
    notes: list[str] = []
    slept: list[float] = []
    now = {"t": time.time()}
    ops = VenueOps(service, clock=lambda: now["t"], notify=notes.append, sleep=slept.append)
    sandbox.configure(tradeready_auth_limit_per_min=1)
    first = ops.headers("tr", "/api/v1/agents").token  # the one login this minute
    sandbox.access_log = io.StringIO()
    now["t"] = first.expires_at - 120  # inside the refresh margin: keyward tries a fresh login
    creds = ops.headers("tr", "/api/v1/agents")
    assert creds.token.value == first.value  # the cached bearer, still valid, keeps working
    assert any("rate-limited" in n and "retry in" in n and "cached bearer" in n for n in notes)
    assert sandbox.access_log.getvalue().count("POST /tradeready/api/v1/auth/login 429") == 1 and slept == []
    now["t"] = first.expires_at + 1  # no valid bearer left: the 429 is the answer, with its wait
    from vault.core.errors import RateLimited

    with pytest.raises(RateLimited) as info:
        ops.headers("tr", "/api/v1/agents")
    assert info.value.retry_after is not None and "retry in" in info.value.hint
    assert sandbox.access_log.getvalue().count("auth/login") == 2 and slept == []  # one attempt each time
    ops.close()


def test_tradeready_rotate_uses_the_cached_bearer_instead_of_logging_in(service, sandbox, sandbox_account) -> None:
    from vault.ops.rotation import Rotation

    sandbox_account("tradeready", "bot")
    with VenueOps(service, notify=lambda m: None) as ops:
        ops.login("bot")
        logins = audit_of(service, "bot").count(("login", "ok"))
        for _ in range(3):  # the backend allows 5 logins a minute per IP: rotations must not spend them
            result = Rotation(service, ops.check).regenerate_tradeready("bot")
            assert result.ok, result.message
        assert audit_of(service, "bot").count(("login", "ok")) == logins


# --- the command line: headers --path and --curl-config ------------------------------------


def _add_tradeready(vault_cli, sb) -> dict[str, str]:
    import json

    issued = sb.issue("tradeready", display_name="cli")
    r = vault_cli("add", "tradeready", "tr", "--base-url", sb.base_url("tradeready"), "--from-json", "-",
                  input=json.dumps(issued))
    assert r.code == 0, r.both
    return issued


def test_cli_headers_path_prints_what_a_request_to_that_path_carries(vault, sb) -> None:
    issued = _add_tradeready(vault, sb)
    common = vault("headers", "tr")
    assert common.code == 0, common.both
    assert common.out.splitlines() == [f"X-API-Key: {issued['agent_api_key']}"]  # no login for the common case
    agents = vault("headers", "tr", "--path", "/api/v1/agents", "--json")
    assert agents.code == 0, agents.both
    body = __import__("json").loads(agents.out)
    assert set(body) == {"Authorization", "X-Agent-Id"} and body["X-Agent-Id"] == issued["agent_id"]
    with make_client() as http:
        assert http.get(sb.base_url("tradeready") + "/api/v1/agents", headers=body).status_code == 200
    bad = vault("headers", "tr", "--path", "@evil.example/x")
    assert bad.code != 0 and "must be a path starting with /" in bad.err and "Traceback" not in bad.err


def test_cli_headers_curl_config_keeps_secrets_out_of_curls_argv(vault, sb, tmp_path) -> None:
    import shutil
    import subprocess

    issued = _add_tradeready(vault, sb)
    config = vault("headers", "tr", "--curl-config")
    assert config.code == 0, config.both
    assert config.out.splitlines()[1:] == [f'header = "X-API-Key: {issued["agent_api_key"]}"']
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("no curl on this machine")
    argv = [curl, "-sS", "--noproxy", "*", "-K", "-", "-o", str(tmp_path / "body"), "-w", "%{http_code}",
            sb.base_url("tradeready") + "/api/v1/account/info"]
    done = subprocess.run(argv, input=config.out, capture_output=True, text=True, timeout=30)
    assert done.stdout == "200", done.stderr
    assert not any(issued["agent_api_key"] in arg for arg in argv)
    assert "--curl-config" in vault("headers", "--help").out and "argv" in vault("headers", "--help").out


def test_cli_headers_path_through_the_unlock_agent(vault, sb, agent) -> None:
    issued = _add_tradeready(vault, sb)
    agent("--ttl", "10m")
    agents = vault("headers", "tr", "--path", "/api/v1/agents", "--json", passphrase=False)
    assert agents.code == 0, agents.both
    assert set(__import__("json").loads(agents.out)) == {"Authorization", "X-Agent-Id"}
    common = vault("headers", "tr", passphrase=False)
    assert common.code == 0 and common.out.splitlines() == [f"X-API-Key: {issued['agent_api_key']}"]


def test_cli_settings_switch_kiiex_to_signed_mode_and_set_a_powertrade_uri(vault, sb) -> None:
    import json

    issued = sb.issue("kiiex")
    assert vault("add", "kiiex", "kx", "--base-url", sb.base_url("kiiex"), "--from-json", "-",
                 input=json.dumps(issued)).code == 0
    bad = vault("setting", "kx", "auth_mode", "hmac")
    assert bad.code != 0 and bad.err.count("\n") == 1 and "auth_mode must be one of: session, signed" in bad.err
    assert vault("setting", "kx", "auth_mode", "signed").code == 0
    headers = vault("headers", "kx", "--json")
    assert headers.code == 0, headers.both
    assert set(json.loads(headers.out)) == {"APIKey", "Signature", "UserId", "Nonce"}
    check = vault("check", "kx")
    assert check.code == 0, check.both
    assert sb.kiiex_attempts(issued["UserId"]) == 0
    pt = sb.issue("powertrade")
    assert vault("add", "powertrade", "pt", "--base-url", sb.base_url("powertrade"), "--from-json", "-",
                 input=json.dumps(pt)).code == 0
    assert vault("setting", "pt", "uri", "wss://api.wss.test.power.trade").code == 0
    token = vault("token", "pt").out.strip()
    assert jwt_claims(token)["uri"] == "wss://api.wss.test.power.trade"
    assert vault("setting", "pt", "uri", "http://elsewhere.example").code != 0


def jwt_claims(token: str) -> dict:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})
