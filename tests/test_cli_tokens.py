"""token, headers, login, exec, check, doctor and sandbox as real `python -m vault`
subprocesses against a vault the sandbox's credentials live in: exit codes, JSON keys,
the exec environment, and no stored secret in any output."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from vault.core.errors import AccountNotFound, InputError, UsageError
from vault.venues import get_provider
from vault.core.service import VaultService

from .conftest import PASSPHRASE

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TOKEN_KEYS = {"account", "venue", "token", "issued_at", "expires_at", "headers"}


@pytest.fixture
def accounts(service, sandbox_account):
    """One account per venue (labels = venue names), in the vault the CLI opens."""
    return {venue: sandbox_account(venue, venue) for venue in ("powertrade", "tradeready", "hypersolutions", "kiiex")}


def stored_secrets(service) -> dict[str, set[str]]:
    """Per label: the secret values that must never be printed, and the ones a request
    header carries (TradeReady's and Hyper's API keys), allowed only in token output."""
    service.reload()
    never, in_headers = set(), set()
    for acct in service.accounts:
        provider = get_provider(acct.venue)
        for spec in provider.fields:
            value = acct.fields.get(spec.name)
            if not value or not spec.secret:
                continue
            if spec.name in ("api_key", "agent_api_key"):
                in_headers.add(value)
            else:
                never.add(value)
                never.update(line for line in value.splitlines() if len(line) > 20 and not line.startswith("-----"))
    return {"never": never, "headers": in_headers}


def assert_clean(result, secrets, *, headers_allowed: bool = False) -> None:
    for value in secrets["never"] | (set() if headers_allowed else secrets["headers"]):
        assert value not in result.out and value not in result.err, "a stored secret was printed"


def test_token_json_contract_for_every_venue(kw, service, accounts) -> None:
    secrets = stored_secrets(service)
    for venue in accounts:
        r = kw("token", venue, "--json")
        assert r.code == 0, r.err
        assert_clean(r, secrets, headers_allowed=True)
        out = json.loads(r.out)
        assert set(out) == TOKEN_KEYS
        assert out["account"] == venue and out["venue"] == venue
        assert ISO.match(out["issued_at"]) and ISO.match(out["expires_at"])
        assert out["token"] in json.dumps(out["headers"])

    # PowerTrade's token verifies with the account's public key, claims as documented.
    pem = accounts["powertrade"].fields["private_key"]
    public = serialization.load_pem_private_key(pem.encode(), None).public_key()
    r = kw("token", "powertrade")
    assert r.code == 0 and r.out.count("\n") == 1
    claims = jwt.decode(r.out.strip(), public, algorithms=["ES256"], options={"verify_exp": False, "verify_iat": False})
    assert set(claims) == {"sub", "iat", "exp", "client", "nonce"} and claims["exp"] - claims["iat"] == 30


def test_headers_plain_json_and_curl(kw, service, accounts) -> None:
    secrets = stored_secrets(service)
    r = kw("headers", "powertrade")
    assert r.code == 0 and re.fullmatch(r"X-Power-Trade: eyJ[\w-]+\.[\w-]+\.[\w-]+\n", r.out)
    r = kw("headers", "kiiex", "--json")
    assert r.code == 0 and set(json.loads(r.out)) == {"aptoken"}
    r = kw("headers", "hypersolutions", "--curl")
    assert r.code == 0
    assert re.fullmatch(r"-H 'x-api-key: [0-9a-f]+' -H 'x-signature: eyJ[\w.-]+'\n", r.out)
    assert_clean(r, secrets, headers_allowed=True)
    assert kw("headers", "kiiex", "--json", "--curl").code == 2  # one format at a time


def test_login_prints_the_expiry_never_the_token(kw, service, accounts) -> None:
    r = kw("login", "tradeready")
    assert r.code == 0 and "valid until" in r.out and re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r.out)
    service.reload()
    assert service.get("tradeready").token.value not in r.out + r.err
    r = kw("login", "kiiex")
    assert r.code == 0
    service.reload()
    assert service.get("kiiex").token.value not in r.out + r.err
    r = kw("login", "powertrade")
    assert r.code == InputError.exit_code and "has no login" in r.err
    assert_clean(r, stored_secrets(service))


def test_token_for_a_key_only_account_says_to_use_headers(kw, service, sandbox, sandbox_account) -> None:
    issued = sandbox.issue("hypersolutions", require_signature=False)
    sandbox_account("hypersolutions", "plain", fields={"api_key": issued["api_key"]})
    r = kw("token", "plain")
    assert r.code == InputError.exit_code and "keyward headers plain" in r.err and issued["api_key"] not in r.err
    assert kw("check", "plain").code == 0


def test_exec_passes_the_environment_and_the_exit_status(kw, service, accounts) -> None:
    script = "import json,os,sys; json.dump({k: v for k, v in os.environ.items() if k.startswith('KEYWARD_')}, sys.stdout); sys.exit(7)"
    r = kw("exec", "kiiex", "--", sys.executable, "-c", script)
    assert r.code == 7, r.err
    env = json.loads(r.out)
    assert {"KEYWARD_ACCOUNT", "KEYWARD_BASE_URL", "KEYWARD_TOKEN", "KEYWARD_TOKEN_EXPIRES_AT", "KEYWARD_HEADERS",
            "KEYWARD_APTOKEN", "KEYWARD_USER_ID"} <= set(env)
    assert env["KEYWARD_ACCOUNT"] == "kiiex" and env["KEYWARD_TOKEN"] == env["KEYWARD_APTOKEN"]
    assert json.loads(env["KEYWARD_HEADERS"]) == {"aptoken": env["KEYWARD_TOKEN"]}
    assert ISO.match(env["KEYWARD_TOKEN_EXPIRES_AT"])
    assert not any(value in r.out for value in stored_secrets(service)["never"])

    r = kw("exec", "tradeready", "--", sys.executable, "-c", script.replace("sys.exit(7)", "pass"))
    env = json.loads(r.out)
    assert r.code == 0 and env["KEYWARD_AGENT_ID"] and env["KEYWARD_BEARER"] == env["KEYWARD_TOKEN"]

    r = kw("exec", "kiiex", "--", "keyward-no-such-command")
    assert r.code == 127 and "command not found" in r.err
    assert kw("exec", "kiiex").code == 2


def test_check_reports_and_exits_nonzero_only_when_something_fails(kw, service, sandbox, accounts, sandbox_account) -> None:
    r = kw("check")
    assert r.code == 0, r.out + r.err
    lines = r.out.splitlines()
    assert len(lines) == 4 and all(" ok " in line and " ms" in line and "key 0d" in line for line in lines)
    assert "rate " in r.out and "skew " in r.out

    r = kw("check", "--json", "tradeready", "hypersolutions")
    rows = json.loads(r.out)
    assert r.code == 0 and [row["label"] for row in rows] == ["tradeready", "hypersolutions"]
    for row in rows:
        assert {"label", "ok", "status", "checked_at", "latency_ms", "skew_s", "message", "rate_limit", "token",
                "key_age_days", "key_overdue"} <= set(row)
        assert row["ok"] is True and row["status"] == 200 and set(row["rate_limit"]) == {"limit", "remaining", "reset_at"}

    other = sandbox.issue("hypersolutions")
    sandbox_account("hypersolutions", "broken", fields={"api_key": other["api_key"], "jwt_key": "w" * 40})
    r = kw("check", "--all")
    assert r.code == 1 and "FAILING" in r.out and "JWT key is wrong" in r.out
    assert kw("check", "powertrade").code == 0
    assert kw("check", "nope").code == AccountNotFound.exit_code  # as `show nope`, not a FAILING row
    assert kw("check", "--all", "powertrade").code == 2
    assert_clean(r, stored_secrets(service))


def test_check_warns_about_clock_skew_with_its_size(kw, service, sandbox, accounts) -> None:
    sandbox.configure(clock_offset_s=8.0)
    r = kw("check", "hypersolutions")
    assert r.code == 0
    assert re.search(r"skew \+[78]\.\d s", r.out), r.out
    assert "warning: clock skew" in r.out
    sandbox.configure(clock_offset_s=60.0)
    r = kw("check", "powertrade")
    assert r.code == 1 and "skew +" in r.out and "explain" in r.out
    r = kw("doctor", "powertrade")
    assert r.code == 1 and "problem: clock skew" in r.out


def test_kiiex_failure_is_explained_and_never_retried_across_commands(kw, service, sandbox, sandbox_account) -> None:
    from vault.ops.formats import recognise

    _, fields, _ = recognise(sandbox.issue("kiiex"))
    fields["api_secret"] = "f" * 32
    sandbox_account("kiiex", "kx", fields=fields)
    r = kw("check", "kx")
    assert r.code == 1 and "will not retry" in r.out
    assert sandbox.kiiex_attempts(fields["user_id"]) == 1
    for args in (("token", "kx"), ("headers", "kx"), ("exec", "kx", "--", "true")):
        r = kw(*args)
        assert r.code == 32 and "will not log in again on its own" in r.err
    r = kw("doctor", "kx")
    assert r.code == 1 and "locks the user" in r.out and "keyward login kx" in r.out
    assert sandbox.kiiex_attempts(fields["user_id"]) == 1
    r = kw("login", "kx")
    assert r.code == 32 and sandbox.kiiex_attempts(fields["user_id"]) == 2
    assert_clean(r, stored_secrets(service))


def test_show_and_list_json_carry_what_the_operations_learned(kw, service, accounts) -> None:
    assert kw("token", "tradeready").code == 0
    assert kw("check", "tradeready", "powertrade").code == 0
    assert kw("token", "powertrade").code == 0
    r = kw("show", "tradeready", "--json")
    info = json.loads(r.out)
    assert ISO.match(info["token"]["expires_at"])
    assert set(info["rate_limit"]) >= {"limit", "remaining", "reset_at"} and info["rate_limit"]["limit"] == 600
    assert info["health"]["ok"] is True and ISO.match(info["health"]["checked_at"])
    assert info["health"]["latency_ms"] > 0 and info["health"]["message"] == "ok"
    rows = {row["label"]: row for row in json.loads(kw("list", "--json").out)}
    assert rows["powertrade"]["token"]["expires_at"] and rows["powertrade"]["health"]["ok"] is True
    assert rows["powertrade"]["rate_limit"]["remaining"] is not None
    assert_clean(r, stored_secrets(service))


def test_doctor_lines(kw, service, accounts) -> None:
    r = kw("doctor", "powertrade")
    assert r.code == 0, r.out
    assert "valid EC P-256" in r.out and "ok: clock skew" in r.out and "loopback" in r.out
    r = kw("doctor", "kiiex")
    assert r.code == 0 and "lock-out risk" in r.out
    assert_clean(r, stored_secrets(service))


def test_sandbox_command_prints_each_venue_and_stops_on_ctrl_c(kw) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vault", "sandbox", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=kw.env, start_new_session=True,
    )
    try:
        lines = []
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line.rstrip())
        text = "\n".join(lines)
        for root in ("/powertrade", "/tradeready", "/hypersolutions", "/kiiex/ap"):
            assert re.search(rf"http://127\.0\.0\.1:\d+{root}\b", text)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_setting_lists_sets_validates_and_unsets(kw, service, accounts) -> None:
    r = kw("setting", "powertrade")
    assert r.code == 0 and re.search(r"^token_lifetime_s\s+30 \(default\)", r.out, re.M)
    assert re.search(r"^health_path\s+/v1/position/funds \(default\)", r.out, re.M)
    r = kw("setting", "powertrade", "token_lifetime_s", "60")
    assert r.code == 0 and "exceeds PowerTrade's 30 s window" in r.err and re.search(r"token_lifetime_s\s+60 ", r.out)
    r = kw("check", "powertrade")
    assert r.code == 1 and "window_too_long" in r.out and "keyward setting powertrade token_lifetime_s 30" in r.out
    for bad, words, code in ((("token_lifetime_s", "0"), "whole number of seconds", InputError.exit_code),
                             (("health_path", "@evil.example/x"), "starting with /", InputError.exit_code),
                             (("nope", "1"), "no setting 'nope'", InputError.exit_code),
                             (("token_lifetime_s",), "give NAME", UsageError.exit_code)):
        r = kw("setting", "powertrade", *bad)
        assert r.code == code and words in r.err and r.err.count("\n") == 1, r.err
    assert kw("setting", "powertrade", "token_lifetime_s", "--unset").code == 0
    assert kw("check", "powertrade").code == 0
    rows = json.loads(kw("setting", "kiiex", "--json").out)
    assert [row["name"] for row in rows] == ["session_idle_s", "oms_id", "health_path", "auth_mode", "check_interval_s"]
    assert kw("setting", "kiiex", "health_path", "/GetUserAccountInfos").code == 0
    assert kw("check", "kiiex").code == 0
    service.reload()
    assert service.get("kiiex").settings["health_path"] == "/GetUserAccountInfos"
    assert kw("setting", "nope").code == 22


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_failure_is_one_line_with_what_to_do_a_nonzero_exit_and_no_secret(kw, service, sandbox, sandbox_account):
    """Wrong credentials for each venue, an unreachable venue, a venue failing with 500s,
    an unknown account: every command ends in one line on stderr (or one detail line
    under `check`), exits non-zero, shows no traceback and prints no stored value."""
    from vault.ops.formats import recognise

    pt_other, pt_mine = sandbox.issue("powertrade"), sandbox.issue("powertrade")
    sandbox_account("powertrade", "pt", fields={"api_key": pt_mine["api_key"], "private_key": pt_other["private_key"]})
    tr = sandbox.issue("tradeready", display_name="x")
    sandbox_account("tradeready", "tr", fields={"api_key": tr["api_key"], "api_secret": "sk_live_" + "9" * 40})
    hy = sandbox.issue("hypersolutions")
    sandbox_account("hypersolutions", "hy", fields={"api_key": hy["api_key"], "jwt_key": "j" * 43})
    _, kx, _ = recognise(sandbox.issue("kiiex"))
    kx["api_secret"] = "e" * 32
    sandbox_account("kiiex", "kx", fields=kx)
    acct = sandbox_account("kiiex", "gone")
    service.update_account("gone", lambda a: setattr(a, "base_url", f"http://127.0.0.1:{_closed_port()}/kiiex/ap"))
    secrets = stored_secrets(service)
    secrets["never"] |= {tr["api_secret"], hy["jwt_key"], kx["nonce"]}  # the right ones, issued once

    def one_line_failure(*args: str) -> None:
        r = kw(*args)
        assert r.code != 0, (args, r.out)
        assert "Traceback" not in r.both and "internal error" not in r.both, (args, r.both)
        assert_clean(r, secrets)
        if args[0] == "check" and args[1] != "nope":  # (an unknown label is an error of its own)
            lines = r.out.splitlines()
            assert len(lines) == 2 and "FAILING" in lines[0] and lines[1].startswith("    "), (args, r.out)
            assert ": " in lines[1], (args, r.out)  # what happened: what to do
        elif args[0] != "doctor":
            assert r.out == "" and r.err.count("\n") == 1 and r.err.startswith("keyward: "), (args, r.both)
            assert ": " in r.err.removeprefix("keyward: "), (args, r.err)  # what happened: what to do

    for label in ("pt", "tr", "hy", "kx", "gone", "nope"):
        if label != "tr":  # X-API-Key alone answers TradeReady's health call: doctor logs in
            one_line_failure("check", label)
        one_line_failure("doctor", label)
    for label in ("tr", "kx", "gone", "nope"):
        for command in (("token", label), ("headers", label), ("login", label), ("exec", label, "--", "true")):
            if command[0] == "headers" and label == "tr":
                # TradeReady's common request carries X-API-Key alone (the venue's backend
                # tries it first): no login, so a wrong secret is not met here; a request to
                # an agent path needs the bearer, and so the login that fails.
                command = ("headers", label, "--path", "/agents/x")
            one_line_failure(*command)
    sandbox.configure(fail_500=True)
    good = sandbox_account("tradeready", "tr500")
    one_line_failure("login", "tr500")
    one_line_failure("check", "tr500")
    assert good and acct


def test_copy_without_a_clipboard_fails_before_minting(kw, service, accounts) -> None:
    """No token is minted (nor audited as minted) for a copy that cannot happen."""
    before = len(VaultService.unlock(kw.vault_path, PASSPHRASE).data.audit)
    for args in (("token", "powertrade", "--copy"), ("headers", "kiiex", "--copy")):
        r = kw(*args, env={"KEYWARD_CLIPBOARD": "none"})
        assert r.code == InputError.exit_code and r.err.startswith("keyward: no clipboard available")
    assert len(VaultService.unlock(kw.vault_path, PASSPHRASE).data.audit) == before
