"""The CLI path stays free of textual: every command, run for real in its own process,
finishes without textual among the imported modules.

Commands that need a vault run against a real one (with an account on the sandbox);
each is run the way a script would run it.  Only `dashboard` and `demo` (the textual
commands) are exempt; `keyward` with no command and no terminal must refuse before
importing anything of the dashboard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from vault.cli.main import build_parser

PROBE = r"""
import json, os, sys

def _stop_instead_of_exec(*args, **kwargs):  # `keyward exec` replaces the process: report first
    raise SystemExit(0)

for _name in ("execv", "execve", "execvp", "execvpe"):
    setattr(os, _name, _stop_instead_of_exec)
from vault.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual.") or m == "tui" or m.startswith("tui."))
sys.stderr.write("\nKW_PROBE=" + json.dumps({"code": code, "heavy": heavy, "unlocked": "vault.core.service" in sys.modules,
                                               "venue_ops": "vault.ops.venue_ops" in sys.modules,
                                               "transport": "vault.net.http" in sys.modules}) + "\n")
"""
EXEMPT = {"dashboard", "demo"}


def commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)


def test_the_probe_can_see_textual(tmp_path: Path) -> None:
    """The probe itself works: a process that did import textual is caught."""
    probe = PROBE.replace("from vault.cli.main import main", "import textual.app\nfrom vault.cli.main import main")
    proc = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, cwd=REPO,
                          env=os.environ | {"PYTHONPATH": str(REPO)}, timeout=60)
    report = json.loads(proc.stderr.rsplit("KW_PROBE=", 1)[1])
    assert "textual.app" in report["heavy"]


@pytest.fixture
def world(kw, sb, tmp_path: Path):
    """A vault with a TradeReady account on the sandbox, and files the commands read."""
    assert kw.init().code == 0
    body = sb.issue("tradeready", display_name="hygiene")
    result = kw("import", "-", "--label", "acct", "--base-url", sb.base_url("tradeready"), input=json.dumps(body))
    assert result.code == 0, result.both
    new_pass = tmp_path / "new-passphrase"
    new_pass.write_text("another passphrase for the test\n")
    new_pass.chmod(0o600)
    return {"sandbox": sb, "out": tmp_path / "export.json", "new_pass": new_pass, "tmp": tmp_path}


def args_for(name: str, world) -> list[str]:
    """Arguments that make the command do its work (or fail as a user error would)."""
    out, tmp = str(world["out"]), world["tmp"]
    return {
        "init": ["--help"],  # the fixture ran it for real already
        "add": ["tradeready", "second", "--base-url", world["sandbox"].base_url("tradeready")],
        "import": [str(tmp / "missing.json")],
        "list": ["--json"],
        "show": ["acct", "--json"],
        "remove": ["acct", "--yes"],
        "passwd": ["--new-passphrase-file", str(world["new_pass"])],
        "rekey": [],
        "token": ["acct", "--json"],
        "headers": ["acct", "--json"],
        "login": ["acct"],
        "exec": ["acct", "--", sys.executable, "-c", "pass"],
        "check": ["acct", "--json"],
        "doctor": ["acct"],
        "setting": ["acct", "health_path", "/api/v1/account/balance"],
        "register": ["--display-name", "x", "--env", "nowhere"],
        "capture": ["tradeready", "third", "--file", str(tmp / "missing.json")],
        "rotate": ["acct", "--rollback"],
        "export": ["acct", "--format", "json", "--output", out, "--yes"],
        "pubkey": ["acct"],
        "audit": ["--json"],
        "key-age": ["--json"],
        "unlock": ["--help"],  # starts a background agent: its own tests cover it
        "lock": [],
        "status": ["--json"],
        "sandbox": ["--help"],  # serves until Ctrl-C
        "restore": [str(tmp / "vaultdir" / "vault.kw.bak"), "--yes"],  # the fixture's import left a .bak
        # Runs until SIGTERM: unlocks, lists, refuses the unknown label.  The running monitor's
        # imports are checked by tests/test_monitor.py (python -X importtime).
        "monitor": ["nosuch", "--listen", "127.0.0.1:0"],
    }.get(name, ["--help"])


def run_probe(kw, args: list[str]) -> dict:
    cmd = [sys.executable, "-c", PROBE, "--vault", str(kw.vault_path), "--passphrase-file", str(kw.passphrase_file), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=kw.env, timeout=120, cwd=REPO,
                          stdin=subprocess.DEVNULL, start_new_session=True)
    assert "KW_PROBE=" in proc.stderr, proc.stderr[-2000:]
    return json.loads(proc.stderr.rsplit("KW_PROBE=", 1)[1])


@pytest.mark.parametrize("name", [c for c in commands() if c not in EXEMPT])
def test_command_does_not_import_textual(name: str, kw, world) -> None:
    report = run_probe(kw, [name, *args_for(name, world)])
    assert report["heavy"] == [], f"`keyward {name}` imported {report['heavy'][:5]}"


def test_no_command_without_a_terminal_refuses_before_loading_the_dashboard(kw, world) -> None:
    report = run_probe(kw, [])
    assert report["code"] != 0
    assert report["heavy"] == []


def test_every_command_is_covered() -> None:
    """A new command gets real arguments here, or it is only --help-tested."""
    known = {"init", "add", "import", "list", "show", "remove", "passwd", "rekey", "token", "headers", "login",
             "exec", "check", "doctor", "setting", "register", "capture", "rotate", "export", "pubkey", "audit", "key-age",
             "unlock", "lock", "status", "sandbox", "restore", "monitor"}
    assert set(commands()) - EXEMPT <= known | set(), sorted(set(commands()) - EXEMPT - known)


# Commands that talk to no venue run on vault.ops.vault_ops.VaultOps (Context.ops(venues=False)).
VAULT_ONLY_COMMANDS = ("add", "list", "show", "remove", "export", "pubkey", "audit", "key-age")


@pytest.mark.parametrize("name", [*VAULT_ONLY_COMMANDS, "token"])
def test_a_command_that_talks_to_no_venue_loads_no_venue_operations(name: str, kw, world) -> None:
    """`list`, `show` and the other vault-only commands do not load VenueOps (request
    signing, PowerTrade's key cache) nor the HTTP transport (the venue modules they load
    to mask fields read answers through vault.net.answers): ~5 ms of a cold command that
    the KDF does not hide.  `token` does, which shows that the probe sees both."""
    report = run_probe(kw, [name, *args_for(name, world)])
    assert report["unlocked"], report
    assert report["venue_ops"] is (name == "token"), f"`keyward {name}`: {report}"
    assert report["transport"] is (name == "token"), f"`keyward {name}`: {report}"
