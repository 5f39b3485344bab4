"""Every CLI command with an unlock agent running: no passphrase asked, the same result.

Each command below runs as a real subprocess with no passphrase file and no terminal,
so any passphrase prompt would fail it ("no passphrase: there is no terminal to ask
on"); the vault is then opened with the passphrase to prove the change landed.  The
commands read their own files, stdin and pastes; the agent applies what they read
(vault.ops.account_ops).  Also: the agent refuses malformed changes without dying, a bot's
token is not held up by someone pasting a key, and a dead agent means a prompt again.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest

from vault.core.errors import AccountExists, AgentError, InputError, InvalidCredential, NoTerminal
from vault.core.model import Account
from vault.core.service import VaultService

from .conftest import PASSPHRASE, REPO, KeywardCLI
from .test_agent import NO_PASSPHRASE, agent, alive, agent_socket, serving, short_runtime, wait_until  # noqa: F401
from .test_agent import runtime  # noqa: F401
from .test_clipboard import fake_clipboard  # noqa: F401
from .test_lifecycle_capture import assert_no_secrets, canonical, secret_values


def opened(kw: KeywardCLI) -> VaultService:
    return VaultService.unlock(kw.vault_path, PASSPHRASE)


def actions(kw: KeywardCLI, label: str) -> list[tuple[str, str]]:
    return [(e.action, e.outcome) for e in opened(kw).data.audit if e.account == label]


def no_prompt(done: Any) -> None:
    assert done.code == 0, done.both
    assert NO_PASSPHRASE not in done.err and "passphrase" not in done.out.lower()


@pytest.fixture
def unlocked(vault: KeywardCLI, agent: Any) -> dict[str, Any]:
    """An initialised vault with an agent holding it; the agent's pid."""
    return agent("--ttl", "10m")


def test_new_accounts_are_stored_through_the_agent(vault: KeywardCLI, sb: Any, unlocked: dict, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    pt = sb.issue("powertrade")
    (src / "pt.json").write_text(json.dumps(pt))
    no_prompt(done := vault("add", "powertrade", "pt", "--from-json", str(src / "pt.json"),
                            "--base-url", sb.base_url("powertrade"), "--tag", "desk", passphrase=False))
    assert done.out.startswith("added pt ")
    tr = sb.issue("tradeready", display_name="imported")
    (src / "tr.json").write_text(json.dumps(tr))
    no_prompt(done := vault("import", str(src / "tr.json"), "--label", "tr", "--base-url", sb.base_url("tradeready"),
                            passphrase=False))
    hs = sb.issue("hypersolutions")
    (src / "hs.json").write_text(json.dumps(hs))
    no_prompt(vault("capture", "hypersolutions", "hs", "--base-url", sb.base_url("hypersolutions"),
                    "--file", str(src / "hs.json"), "--shred-source", passphrase=False))
    assert not (src / "hs.json").exists()  # shredded by the caller, after the agent's save
    kx = canonical("kiiex", sb.issue("kiiex"))
    no_prompt(vault("capture", "kiiex", "kx", "--base-url", sb.base_url("kiiex"), input=json.dumps(kx), passphrase=False))
    no_prompt(done := vault("register", "tradeready", "bot", "--display-name", "Bot", "--email", "agent-bot@example.com",
                            "--base-url", sb.base_url("tradeready"), passphrase=False))
    assert "registered bot" in done.out

    service = opened(vault)
    assert [a.label for a in service.accounts] == ["pt", "tr", "hs", "kx", "bot"]
    assert service.get("pt").fields == pt and service.get("pt").tags == ["desk"]
    assert service.get("hs").fields == hs and service.get("kx").fields == kx
    assert service.get("bot").fields["api_secret"].startswith("sk_live_")
    assert [x[0] for x in actions(vault, "kx")] == ["capture"] and [x[0] for x in actions(vault, "bot")] == ["register"]
    for label in ("pt", "tr", "hs", "kx", "bot"):  # each works, minted or logged in by the agent
        check = vault("check", label, passphrase=False)
        assert check.code == 0, (label, check.both)
    # The same refusals as without an agent, as one line each.
    again = vault("capture", "kiiex", "kx", input=json.dumps(kx), passphrase=False)
    assert again.code == AccountExists.exit_code and again.err.count("\n") == 1 and "already exists" in again.err
    bad = vault("add", "powertrade", "pt2", "--base-url", sb.base_url("powertrade"), "--from-json", "-",
                input="", passphrase=False)
    assert bad.code != 0 and bad.err.count("\n") == 1 and NO_PASSPHRASE not in bad.err
    assert alive(unlocked["pid"])  # one agent served it all
    secrets = [s for v, f in (("powertrade", pt), ("hypersolutions", hs), ("kiiex", kx)) for s in secret_values(v, f)]
    assert_no_secrets(secrets, done.both, again.both, root=tmp_path, allow=(src,))


def test_rotation_of_every_kind_through_the_agent(vault: KeywardCLI, sb: Any, unlocked: dict, tmp_path: Path) -> None:
    first, second = sb.issue("powertrade"), sb.issue("powertrade")
    no_prompt(vault("capture", "powertrade", "pt", "--base-url", sb.base_url("powertrade"), input=json.dumps(first),
                    passphrase=False))
    (tmp_path / "new.json").write_text(json.dumps(second))
    no_prompt(done := vault("rotate", "pt", "--file", str(tmp_path / "new.json"), passphrase=False))
    assert "the new credential works" in done.out
    assert opened(vault).get("pt").fields == second
    no_prompt(done := vault("rotate", "--rollback", "pt", passphrase=False))
    assert opened(vault).get("pt").fields == first
    refused = vault("rotate", "pt", input=json.dumps(first), passphrase=False)
    assert refused.code == InvalidCredential.exit_code and "already uses" in refused.err

    no_prompt(vault("register", "tradeready", "bot", "--display-name", "Rot", "--email", "agent-rot@example.com",
                    "--base-url", sb.base_url("tradeready"), passphrase=False))
    old = opened(vault).get("bot").fields["agent_api_key"]
    no_prompt(done := vault("rotate", "bot", passphrase=False))  # TradeReady makes the new key itself
    assert "the new agent key works" in done.out
    assert opened(vault).get("bot").fields["agent_api_key"] != old
    lifecycle = [x for x in actions(vault, "pt") if x[0] in ("capture", "rotate", "rollback")]
    assert lifecycle == [("capture", "ok"), ("rotate", "stored"), ("rotate", "ok"), ("rollback", "ok")]


def test_exports_and_bundles_through_the_agent(
    vault: KeywardCLI, sb: Any, unlocked: dict, tmp_path: Path, fake_clipboard: Any
) -> None:
    hs = sb.issue("hypersolutions")
    no_prompt(vault("capture", "hypersolutions", "hs", "--base-url", sb.base_url("hypersolutions"),
                    input=json.dumps(hs), passphrase=False))
    out = tmp_path / "out"
    out.mkdir()
    no_prompt(vault("export", "hs", "--format", "json", "-o", str(out / "hs.json"), "--yes", passphrase=False))
    assert json.loads((out / "hs.json").read_text())["fields"] == hs
    assert (out / "hs.json").stat().st_mode & 0o777 == 0o600  # written by the caller, not the agent
    unasked = vault("export", "hs", "--format", "env", "-o", str(out / "hs.env"), passphrase=False)
    assert unasked.code == NoTerminal.exit_code and "--yes" in unasked.err and not (out / "hs.env").exists()

    bundle_pass = tmp_path / "bundle-pass"
    bundle_pass.write_text("a passphrase for the bundle only\n")
    bundle = out / "all.kwb"
    no_prompt(done := vault("export", "--encrypted", str(bundle), "--bundle-passphrase-file", str(bundle_pass),
                            passphrase=False))
    assert "exported 1 account" in done.out
    # Back into the same vault: identical, so nothing changes; renamed, a second account.
    no_prompt(done := vault("import", str(bundle), "--bundle-passphrase-file", str(bundle_pass), passphrase=False))
    assert "unchanged" in done.out
    no_prompt(vault("import", str(bundle), "--bundle-passphrase-file", str(bundle_pass), "--label", "hs2",
                    passphrase=False))
    assert opened(vault).get("hs2").fields == hs

    no_prompt(done := vault("show", "hs", "--reveal", "--json", passphrase=False))
    assert json.loads(done.out)["fields"]["jwt_key"] == hs["jwt_key"]
    store, env = fake_clipboard
    done = vault("show", "hs", "--copy", env=env, passphrase=False)
    no_prompt(done)
    assert json.loads(store.read_text())["jwt_key"] == hs["jwt_key"]
    assert hs["jwt_key"] not in done.out  # the copy's listing stays masked

    trail = [(a, o) for a, o in actions(vault, "hs")]
    assert trail[-1] == ("copy", "ok") and ("reveal", "ok") in trail
    assert trail.count(("export", "ok")) == 2  # plaintext and bundle; the unconfirmed one is not an export
    no_prompt(vault("remove", "hs2", "--yes", passphrase=False))
    assert [a.label for a in opened(vault).accounts] == ["hs"]
    assert_no_secrets(secret_values("hypersolutions", hs), unasked.both, root=tmp_path, allow=(out, store.parent))


def test_questions_are_asked_here_and_a_token_is_not_held_up_meanwhile(
    vault: KeywardCLI, sb: Any, unlocked: dict
) -> None:
    """A person at a prompt must not stall a bot: the agent serves one operation at a
    time, so no operation may wait on a terminal."""
    pt = sb.issue("powertrade")
    no_prompt(vault("capture", "powertrade", "pt", "--base-url", sb.base_url("powertrade"), input=json.dumps(pt),
                    passphrase=False))
    env = vault.env | {"PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "vault", "--vault", str(vault.vault_path)]
    child = pexpect.spawn(base[0], base[1:] + ["capture", "hypersolutions", "hs", "--base-url",
                          sb.base_url("hypersolutions")], env=env, encoding="utf-8", timeout=30)
    child.expect("input is hidden")  # no passphrase prompt came first: the agent holds the vault
    started = time.monotonic()
    token = vault("token", "pt", passphrase=False)
    assert token.code == 0, token.both
    assert time.monotonic() - started < 20  # answered while the paste is still open
    hs = sb.issue("hypersolutions")
    child.sendline(f"{hs['api_key']}\n{hs['jwt_key']}\n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "Vault passphrase" not in child.before and hs["jwt_key"] not in child.before

    child = pexpect.spawn(base[0], base[1:] + ["remove", "hs"], env=env, encoding="utf-8", timeout=30)
    child.expect(r"Type the label \(hs\)")
    child.sendline("hs")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "removed hs" in child.before
    assert [a.label for a in opened(vault).accounts] == ["pt"]


def test_a_dead_agent_means_the_prompt_again_for_writes_too(vault: KeywardCLI, sb: Any, unlocked: dict) -> None:
    os.kill(unlocked["pid"], signal.SIGKILL)
    assert wait_until(lambda: not alive(unlocked["pid"]))
    hs = sb.issue("hypersolutions")
    done = vault("capture", "hypersolutions", "hs", input=json.dumps(hs), passphrase=False)
    assert done.code == NoTerminal.exit_code and NO_PASSPHRASE in done.err
    assert opened(vault).accounts == []  # nothing half-stored
    done = vault("capture", "hypersolutions", "hs", input=json.dumps(hs))
    assert done.code == 0 and opened(vault).get("hs").fields == hs


def test_an_abbreviated_option_still_reaches_the_agent(vault: KeywardCLI, unlocked: dict) -> None:
    """The fast path reads only options it knows; the parser then finds the vault, and
    the agent still answers instead of a prompt."""
    cmd = [sys.executable, "-m", "vault", "--vau", str(vault.vault_path), "list", "--json"]
    import subprocess

    proc = subprocess.run(cmd, env=vault.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          start_new_session=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


# --- the operations themselves, over a real socket -------------------------------------------


def test_the_agent_refuses_malformed_changes_and_keeps_serving(service: VaultService, runtime: Path) -> None:  # noqa: F811
    from vault.agent.client import connect
    from vault.ops.venue_ops import VenueOps

    ops = VenueOps(service)
    with serving(service, ops, ttl=60):
        client = connect(service.file.path)
        assert client is not None
        with client:
            for bad in ({"label": "x"}, {"label": "../x", "venue": "powertrade", "base_url": "http://127.0.0.1:1",
                                           "fields": {}}, "not an account"):
                with pytest.raises((AgentError, InputError, InvalidCredential)) as info:
                    client._call("store_account", account=bad, action="add")
                assert info.value.message.count("\n") == 0
            with pytest.raises(InputError, match="unknown way"):
                client._call("store_account", action="steal",
                             account=Account(label="a", venue="hypersolutions", base_url="http://127.0.0.1:1",
                                             fields={"api_key": "k" * 16}).to_dict())
            with pytest.raises(InputError, match="cannot record"):
                client.record_failure("reveal", ["a"], "could not write /tmp/x")
            for made_up in ("pretend", "exported\x1b]52;c;aGk=\x07", "could not write a\nforged entry"):
                with pytest.raises(AgentError, match="not one keyward writes"):  # audit details: keyward's own phrases only
                    client.record_failure("export", ["a"], made_up)
            acct = Account(label="a", venue="hypersolutions", base_url="http://127.0.0.1:1", fields={"api_key": "k" * 16})
            assert client.store_account(acct) == "a"
            with pytest.raises(AccountExists):
                client.store_account(acct)
            assert client.store_account(acct, action="capture", keep_both=True) == "a-2"
            assert client.labels() == ["a", "a-2"]
    audit = [(e.action, e.account) for e in VaultService.unlock(service.file.path, PASSPHRASE).data.audit]
    assert audit[-2:] == [("add", "a"), ("capture", "a-2")]


def test_a_tokens_only_agent_withholds_stored_secrets_and_the_command_asks(
    vault: KeywardCLI, sb: Any, agent: Any, tmp_path: Path
) -> None:
    info = agent("--tokens-only")
    assert info["tokens_only"] is True and info["dashboard"] is False
    hs = sb.issue("hypersolutions")
    # Changes to the vault are not a tokens-only agent's: the command asks, as without one.
    done = vault("capture", "hypersolutions", "hs", "--base-url", sb.base_url("hypersolutions"),
                 input=json.dumps(hs), passphrase=False)
    assert done.code != 0 and NO_PASSPHRASE in done.err, done.both
    assert vault("capture", "hypersolutions", "hs", "--base-url", sb.base_url("hypersolutions"),
                 input=json.dumps(hs)).code == 0
    no_prompt(vault("headers", "hs", passphrase=False))  # tokens and reads still go through it
    no_prompt(vault("setting", "hs", passphrase=False))
    no_prompt(vault("audit", "hs", passphrase=False))
    no_prompt(vault("key-age", passphrase=False))
    for change in (("setting", "hs", "token_lifetime_s", "30"), ("key-age", "hs", "--max-days", "5"), ("remove", "hs", "--yes"),
                   ("rotate", "hs", "--rollback", "--no-verify")):
        done = vault(*change, passphrase=False)
        assert done.code != 0 and NO_PASSPHRASE in done.err, (change, done.both)
    no_prompt(vault("show", "hs", passphrase=False))  # masked
    bundle_pass = tmp_path / "bundle-pass"
    bundle_pass.write_text("a passphrase for the bundle only\n")
    for args in (("show", "hs", "--reveal"), ("export", "hs", "--format", "json", "--yes", "-o", str(tmp_path / "x.json")),
                 ("export", "--encrypted", str(tmp_path / "b.kwb"), "--bundle-passphrase-file", str(bundle_pass))):
        done = vault(*args, passphrase=False)
        assert done.code == NoTerminal.exit_code and done.err == (
            "keyward: no passphrase: there is no terminal to ask on: pass --passphrase-file PATH or set "
            "KEYWARD_PASSPHRASE_FILE\n"), (args, done.both)
    assert not (tmp_path / "x.json").exists()
    done = vault("show", "hs", "--reveal", "--json")  # with the passphrase: done locally, and audited
    assert done.code == 0 and json.loads(done.out)["fields"]["jwt_key"] == hs["jwt_key"]
    assert [a for a, _ in actions(vault, "hs")].count("reveal") == 1
    assert "tokens only" in vault("status", passphrase=False).out
    both = vault("unlock", "--dashboard", "--tokens-only")
    assert both.code == 2 and both.err.count("\n") == 1


BOT = """
import asyncio, json, sys
from concurrent.futures import ThreadPoolExecutor
import httpx, vault

auth = vault.auth(sys.argv[1])  # no passphrase file, no terminal: only the agent can answer
method, body = sys.argv[3], json.loads(sys.argv[4])
kinds = [type(auth._ops).__name__]
with httpx.Client(base_url=auth.base_url, auth=auth, timeout=10) as client, ThreadPoolExecutor(8) as pool:
    threaded = [r.status_code for r in pool.map(lambda _: client.request(method, sys.argv[2], json=body), range(24))]

async def burst():
    async with httpx.AsyncClient(base_url=auth.base_url, auth=auth, timeout=10) as client:
        return [r.status_code for r in await asyncio.gather(*[client.request(method, sys.argv[2], json=body) for _ in range(12)])]

print(json.dumps({"kinds": kinds, "threaded": threaded, "async": asyncio.run(burst())}))
"""


@pytest.mark.parametrize("venue,path", [("powertrade", "/v1/position/funds"), ("kiiex", "/GetUserAccounts")])
def test_the_python_api_is_served_by_the_agent(vault: KeywardCLI, sb: Any, unlocked: dict, tmp_path: Path,
                                               venue: str, path: str) -> None:
    import subprocess

    sb.configure(rate_limit=10_000)
    issued = canonical(venue, sb.issue(venue))
    no_prompt(vault("capture", venue, "acct", "--base-url", sb.base_url(venue), input=json.dumps(issued),
                    passphrase=False))
    method, body = ("POST", {"OMSId": 1, "UserId": int(issued["user_id"])}) if venue == "kiiex" else ("GET", None)
    proc = subprocess.run([sys.executable, "-c", BOT, "acct", path, method, json.dumps(body)], env=vault.env | {"KEYWARD_VAULT": str(vault.vault_path)},
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got == {"kinds": ["AgentClient"], "threaded": [200] * 24, "async": [200] * 12}
    assert_no_secrets(secret_values(venue, issued), proc.stdout, proc.stderr)
