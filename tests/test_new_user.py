"""Issue 14: what a new user meets.  One passphrase policy in both places, `setting
--unset NAME`, one documented exit code per kind of failure, --version, global options
after the command, retries on a mistyped passphrase, and --help that explains."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from .conftest import PASSPHRASE, REPO, KeywardCLI

KIIEX_EXPORT = {"APIKey": "kiiexApiKey0001", "APISecret": "KIIEX-SECRET-abcdef0123456789",
                "Nonce": "NONCE-SECRET-987654321", "UserId": "42", "UserName": "alice"}
SMALL = ("--kdf-memory-mib", "8", "--kdf-iterations", "1", "--kdf-parallelism", "1")


def one_error(result) -> str:
    lines = [line for line in result.err.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("keyward: ") and "Traceback" not in result.err, result.err
    return lines[0]


def spawn(kw: KeywardCLI, *args: str, passphrase_file: bool = False) -> pexpect.spawn:
    argv = ["-m", "vault", "--vault", str(kw.vault_path)]
    if passphrase_file:
        argv += ["--passphrase-file", str(kw.passphrase_file)]
    return pexpect.spawn(sys.executable, argv + list(args), env=kw.env, encoding="utf-8", timeout=60)


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


@pytest.fixture
def kiiex(vault: KeywardCLI) -> KeywardCLI:
    """A vault holding one Kiiex account (added offline, from its export JSON)."""
    assert vault("add", "kiiex", "kx", "--from-json", "-", input=json.dumps(KIIEX_EXPORT)).code == 0
    return vault


# --- 1. one passphrase policy -------------------------------------------------------------


@pytest.mark.parametrize("weak", ["password123", "password1234", "Password-Password", "x7Kq-x7Kq-x7Kq-x7Kq",
                                  "abcdefgh12345678", "qwertyuiop123456"])
def test_init_refuses_what_the_dashboard_refuses_with_the_same_reason(kw: KeywardCLI, tmp_path: Path, weak: str) -> None:
    from tui.passphrase import estimate

    strength = estimate(weak)
    assert not strength.ok
    weak_file = tmp_path / "weak"
    weak_file.write_text(weak + "\n")
    r = kw("--passphrase-file", str(weak_file), "init", *SMALL, passphrase=False)
    line = one_error(r)
    assert strength.reason in line and weak not in r.both
    from vault.core.errors import WeakPassphrase

    assert r.code == WeakPassphrase.exit_code
    assert not kw.vault_path.exists()


@pytest.mark.parametrize("strong", [PASSPHRASE, "granite lantern mosaic velvet", "k7#Vq9!zR2pW$e4Mx"])
def test_init_accepts_what_the_dashboard_accepts(kw: KeywardCLI, tmp_path: Path, strong: str) -> None:
    from tui.passphrase import estimate

    assert estimate(strong).ok
    good = tmp_path / "good"
    good.write_text(strong + "\n")
    assert kw("--passphrase-file", str(good), "init", *SMALL, passphrase=False).code == 0


def test_the_meter_is_zxcvbn_and_list_never_loads_it(kiiex: KeywardCLI) -> None:
    from tui.passphrase import estimate
    from zxcvbn import zxcvbn

    # zxcvbn's word lists: a dictionary word with a year is weak, however long it is.
    assert not estimate("Manchesterunited2019").ok
    assert estimate("Manchesterunited2019").bits == pytest.approx(zxcvbn("Manchesterunited2019")["guesses_log10"] * 3.3219, abs=0.2)
    probe = ("import sys; from vault.cli.main import main; code = main(sys.argv[1:]); "
             "print('ZX', 'zxcvbn' in sys.modules, code)")
    proc = subprocess.run([sys.executable, "-c", probe, "--vault", str(kiiex.vault_path), "--passphrase-file",
                           str(kiiex.passphrase_file), "list"], capture_output=True, text=True, env=kiiex.env,
                          timeout=60, cwd=REPO)
    assert "ZX False 0" in proc.stdout, proc.stdout + proc.stderr


def test_bundle_passphrases_follow_the_same_policy(kiiex: KeywardCLI, tmp_path: Path) -> None:
    weak = tmp_path / "weak"
    weak.write_text("password1234\n")
    r = kiiex("export", "--encrypted", str(tmp_path / "b.kwb"), "--bundle-passphrase-file", str(weak))
    assert "too easy to guess" in one_error(r) and not (tmp_path / "b.kwb").exists()


# --- 2. setting --unset NAME ---------------------------------------------------------------


def test_setting_unset_works_in_the_form_help_shows(kiiex: KeywardCLI) -> None:
    assert "--unset NAME" in kiiex("setting", "--help").out
    assert kiiex("setting", "kx", "session_idle_s", "120").code == 0

    def value() -> object:
        rows = json.loads(kiiex("setting", "kx", "--json").out)
        return next(row["value"] for row in rows if row["name"] == "session_idle_s")

    assert value() == 120
    r = kiiex("setting", "kx", "--unset", "session_idle_s")
    assert r.code == 0, r.err
    assert value() is None
    assert kiiex("setting", "kx", "session_idle_s", "90").code == 0
    assert kiiex("setting", "kx", "session_idle_s", "--unset").code == 0  # the other order still works
    assert value() is None
    r = kiiex("setting", "kx", "--unset", "session_idle_s", "60")
    assert r.code == 2 and "60" in r.err  # a usage error


# --- 5. exit codes ------------------------------------------------------------------------------


def test_each_kind_of_failure_has_its_own_exit_code_and_2_means_usage(kiiex: KeywardCLI, tmp_path: Path) -> None:
    codes: dict[str, int] = {}

    def record(what: str, r) -> None:
        if what != "usage":  # (argparse prints its usage lines first)
            one_error(r)
        codes[what] = r.code

    record("usage", kiiex("list", "--no-such-flag"))
    record("malformed JSON", kiiex("add", "kiiex", "x", "--from-json", "-", input="{not json"))
    record("empty stdin", kiiex("capture", "kiiex", "x", input=""))
    record("missing file", kiiex("add", "kiiex", "x", "--from-json", str(tmp_path / "missing.json")))
    record("bad value", kiiex("unlock", "--ttl", "forever"))
    record("no terminal", kiiex("list", passphrase=False))
    record("unknown account", kiiex("show", "nope"))
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")
    record("wrong passphrase", kiiex("--passphrase-file", str(wrong), "list", passphrase=False))
    assert codes["usage"] == 2
    others = {k: v for k, v in codes.items() if k != "usage"}
    assert 2 not in others.values() and 130 not in others.values(), codes
    assert len(set(others.values())) == len(others), codes

    # `check nope` is the unknown account `show nope` is, not a FAILING row and exit 1.
    r = kiiex("check", "nope")
    assert r.code == codes["unknown account"] and "nope" in one_error(r) and "FAILING" not in r.out


def test_remove_with_a_mistyped_label_is_not_ctrl_c(kiiex: KeywardCLI) -> None:
    child = spawn(kiiex, "remove", "kx", passphrase_file=True)
    child.expect("Type the label")
    child.sendline("kxx")
    code = finish(child)
    assert code not in (2, 130, 0) and "did not match" in child.before
    assert kiiex("show", "kx").code == 0  # nothing removed

    child = spawn(kiiex, "remove", "kx", passphrase_file=True)
    child.expect("Type the label")
    child.sendintr()
    assert finish(child) == 130


@pytest.mark.parametrize("question", ["plain", "secret", "python api"])
def test_a_ctrl_c_landing_before_the_read_cancels_without_waiting_for_enter(monkeypatch, tmp_path: Path,
                                                                            question: str) -> None:
    """input() and getpass write the prompt, then block in read().  A Ctrl-C that lands
    in between, or is taken by another thread, only sets CPython's "signal pending" flag:
    the read went on blocking until Enter (a `remove` under load once hung here for a
    test's whole timeout).  Made certain here: this thread blocks SIGINT, so the kernel
    hands it to another thread, as a Ctrl-C between write and read leaves it, pending.
    The question must end in Cancelled without the Enter sent after 10 s as a way out."""
    import argparse
    import io
    import pty
    import signal
    import threading

    from vault import api
    from vault.cli.context import Context
    from vault.core import terminal
    from vault.core.errors import Cancelled

    master, slave = pty.openpty()
    tty_in = os.fdopen(slave, "r", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", tty_in)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    secret = question != "plain"
    if secret:  # the secret prompts open /dev/tty: make that the pty
        real_open = os.open
        monkeypatch.setattr(os, "open", lambda path, *a, **k: real_open(os.ttyname(slave) if path == "/dev/tty" else path, *a, **k))
        monkeypatch.setattr(Context, "interactive", property(lambda self: True))
    ctx = Context(argparse.Namespace(), stdin=tty_in, stdout=io.StringIO(), stderr=io.StringIO())
    returned, needed_enter = threading.Event(), []

    def interrupter() -> None:
        time.sleep(0.3)  # the question is waiting for its answer by now
        os.kill(os.getpid(), signal.SIGINT)
        if not returned.wait(10):
            needed_enter.append(True)
            os.write(master, b"typed\n")

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in the CLI process
    thread = threading.Thread(target=interrupter)
    thread.start()  # before the mask: a new thread inherits it
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        if question == "python api":  # a bot's passphrase, asked on its terminal
            with pytest.raises(KeyboardInterrupt):
                api._unlock_here(tmp_path / "vault.kw", None)
        else:
            with pytest.raises(Cancelled):
                ctx.ask("Type the label (kx) to remove it for good: ", secret=secret)
    finally:
        returned.set()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        thread.join()
        signal.signal(signal.SIGINT, previous)
        tty_in.close()
        os.close(master)
    assert not needed_enter, "the Ctrl-C waited for Enter"
    assert terminal._TICK_S < 1


def readme_exit_codes() -> dict[int, str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    table = {}
    for match in re.finditer(r"^\| *(\d+) *\| *([^|]+?) *\|", section, re.M):
        table[int(match.group(1))] = match.group(2)
    return table


def test_readme_and_errors_py_agree_on_every_exit_code() -> None:
    from vault.core import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.KeywardError)]
    by_code: dict[int, list[str]] = {}
    for cls in classes:
        if "exit_code" in vars(cls):
            by_code.setdefault(cls.exit_code, []).append(cls.__name__)
    assert all(len(names) == 1 for names in by_code.values()), by_code  # one code, one class
    table = readme_exit_codes()
    for code in by_code:
        assert code in table, f"exit code {code} ({by_code[code]}) is not in the README"
    for code in (0, 1, 2, 70, 130):
        assert code in table
    assert set(table) <= set(by_code) | {0, 1, 2, 70, 126, 127, 130}, set(table) - set(by_code)


# --- 14. --version, global options after the command, retries ------------------------------


def test_version(kw: KeywardCLI) -> None:
    r = kw("--version", passphrase=False)
    assert r.code == 0 and re.fullmatch(r"keyward \d+\.\d+\S*\n", r.out), r.out


def test_global_options_after_the_command(kiiex: KeywardCLI, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "vault", "list", "--json", "--vault", str(kiiex.vault_path),
           "--passphrase-file", str(kiiex.passphrase_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=kiiex.env, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert [row["label"] for row in json.loads(proc.stdout)] == ["kx"]
    # Given before and after the command, the one after wins, as with any repeated option.
    other = tmp_path / "elsewhere.kw"
    proc = subprocess.run([sys.executable, "-m", "vault", "--vault", str(other), "list", "--vault", str(kiiex.vault_path),
                           "--passphrase-file", str(kiiex.passphrase_file)], capture_output=True, text=True,
                          env=kiiex.env, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "kx" in proc.stdout, proc.stderr


def test_init_asks_again_after_a_weak_or_mistyped_passphrase(kw: KeywardCLI) -> None:
    child = spawn(kw, "init", *SMALL)
    child.expect("Passphrase for the new vault: ")
    child.sendline("password123")  # refused: asked again
    child.expect("too short.*2 tries left")
    child.expect("Passphrase for the new vault: ")
    child.sendline("granite lantern mosaic velvet")
    child.expect(r"\(again\): ")
    child.sendline("granite lantern mosaic velvte")  # mistyped: asked again
    child.expect("differ.*1 try left")
    child.expect("Passphrase for the new vault: ")
    child.sendline("granite lantern mosaic velvet")
    child.expect(r"\(again\): ")
    child.sendline("granite lantern mosaic velvet")
    assert finish(child) == 0
    assert "granite" not in child.before
    from vault.core.service import VaultService

    VaultService.unlock(kw.vault_path, "granite lantern mosaic velvet")


def test_init_gives_up_after_three_tries(kw: KeywardCLI) -> None:
    from vault.core.errors import WeakPassphrase

    child = spawn(kw, "init", *SMALL)
    for _ in range(3):
        child.expect("Passphrase for the new vault: ")
        child.sendline("password1234")
    assert finish(child) == WeakPassphrase.exit_code
    assert not kw.vault_path.exists()


def test_a_mistyped_passphrase_is_asked_again(kiiex: KeywardCLI) -> None:
    from vault.core.errors import WrongPassphrase

    child = spawn(kiiex, "list")
    child.expect("Vault passphrase: ")
    child.sendline("not it")
    child.expect("wrong passphrase, try again")
    child.expect("Vault passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect(r"Upgrade\? \[y/N\] ")  # (the test vault's KDF is at the floor)
    child.sendline("n")
    child.expect("kx")
    assert finish(child) == 0

    child = spawn(kiiex, "list")
    for _ in range(3):
        child.expect("Vault passphrase: ")
        child.sendline("not it")
    assert finish(child) == WrongPassphrase.exit_code


def test_unlock_asks_again_after_a_mistyped_passphrase(kiiex: KeywardCLI) -> None:
    child = spawn(kiiex, "unlock", "--ttl", "5m")
    try:
        child.expect("Vault passphrase: ")
        child.sendline("not it")
        child.expect("wrong passphrase, try again")
        child.expect("Vault passphrase: ")
        child.sendline(PASSPHRASE)
        child.expect("unlocked")
        assert finish(child) == 0
    finally:
        kiiex("lock", passphrase=False)


# --- 16. --help --------------------------------------------------------------------------------


def test_help_describes_every_command_and_its_arguments() -> None:
    from vault.cli.main import build_parser
    from vault.venues import VENUES

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    for name, command in sub.choices.items():
        assert command.description, f"`keyward {name} --help` has no description"
        for action in command._actions:
            if action.dest == "help":
                continue
            assert action.help, f"`keyward {name}`: {action.option_strings or action.dest} is unexplained"
            if action.dest == "venue":
                assert action.metavar in (None, "venue"), name  # as the others show it
    assert all(v in sub.choices["add"].format_help() for v in VENUES)
    assert all(v in sub.choices["capture"].format_help() for v in VENUES)


# --- 4. paste repair ----------------------------------------------------------------------------


def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


KIIEX_JSON = json.dumps(KIIEX_EXPORT)


@pytest.mark.parametrize("text", [
    KIIEX_JSON[:-1] + ",}",  # {...,}
    KIIEX_JSON + ",",  # {...},
    KIIEX_JSON + ",\n",
    json.dumps(KIIEX_EXPORT, indent=2)[:-2] + ",\n}",  # a trailing comma on the last line of an indented object
])
def test_trailing_commas_in_json_are_repaired_and_reported(text: str) -> None:
    from vault.ops.capture import parse

    captured = parse(text, "kiiex")
    assert captured.fields["api_secret"] == KIIEX_EXPORT["APISecret"]
    assert "removed a trailing comma from the JSON" in captured.repairs


def test_a_comma_inside_a_string_is_not_a_trailing_comma() -> None:
    from vault.ops.capture import parse

    export = dict(KIIEX_EXPORT, UserName="smith,alice,}")
    captured = parse(json.dumps(export) + ",", "kiiex")
    assert captured.fields["username"] == "smith,alice,}"


@pytest.mark.parametrize("layout", ["after other lines", "after a label", "label first, key after", "escaped slashes"])
def test_a_json_escaped_pem_is_decoded_wherever_it_stands(layout: str) -> None:
    """Every JSON-encoded PEM ends in a literal \\n; some encoders also write \\/."""
    from vault.ops.capture import parse

    pem = _pem()
    escaped = json.dumps(pem)[1:-1]
    assert escaped.endswith("\\n")
    text = {
        "after other lines": f"pt-key-0001\n{escaped}",
        "after a label": f"API key: pt-key-0001\nPrivate key: {escaped}",
        "label first, key after": f"Private key: {escaped}\nAPI key: pt-key-0001",
        "escaped slashes": f"API key: pt-key-0001\nPrivate key: {escaped.replace('/', chr(92) + '/')}",
    }[layout]
    captured = parse(text, "powertrade")
    assert captured.fields["api_key"] == "pt-key-0001"
    assert captured.fields["private_key"] == pem
    assert any("escapes into line breaks" in r for r in captured.repairs)


def test_piped_input_is_not_called_pasted(vault: KeywardCLI, tmp_path: Path) -> None:
    r = vault("capture", "kiiex", "kx", "--file", "-", input="{not json")
    line = one_error(r)
    assert "stdin" in line and "pasted" not in line
    bad = tmp_path / "export.json"
    bad.write_text("{not json")
    line = one_error(vault("capture", "kiiex", "kx", "--file", str(bad)))
    assert str(bad) in line and "pasted" not in line
    r = vault("capture", "kiiex", "kx", "--file", "-", input=KIIEX_JSON + ",")
    assert r.code == 0 and "trailing comma" in r.both, r.both


# --- 12. the demo ends on SIGHUP / SIGTERM, however they come --------------------------------


def _demo(tmp: Path):
    from tests.test_tui_demo import Terminal

    return Terminal(tmp)


def _ends_clean(term, tmp: Path, timeout: float = 30) -> None:
    try:
        term.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("the demo did not end: deadlocked") from None
    assert not list(tmp.glob("keyward-demo-*")), f"the throwaway vault outlived the demo (exit {term.proc.returncode})"


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(4))
def test_the_demo_ends_when_its_terminal_is_killed(tmp_path: Path, round_: int) -> None:
    """tmux kill-server: the terminal hangs up (the kernel's SIGHUP to the session) and
    tmux signals as well.  Every round the demo ends and removes its vault."""
    import signal

    term = _demo(tmp_path)
    try:
        term.wait_for(b"accounts")
        time.sleep((0.0, 0.05, 0.3, 1.0)[round_])
        os.close(term.master)  # the terminal goes away
        term.master = os.open(os.devnull, os.O_RDONLY)  # (for close())
        for _ in range(3):
            term.proc.send_signal(signal.SIGHUP)
        _ends_clean(term, tmp_path)
    finally:
        term.close()


@pytest.mark.slow
def test_a_burst_of_signals_ends_the_demo_once_and_cleanly(tmp_path: Path) -> None:
    import signal

    term = _demo(tmp_path)
    try:
        term.wait_for(b"accounts")
        for i in range(200):
            term.proc.send_signal(signal.SIGHUP if i % 2 else signal.SIGTERM)
            if term.proc.poll() is not None:
                break
        _ends_clean(term, tmp_path)
    finally:
        term.close()


@pytest.mark.slow
def test_a_signal_while_the_demo_is_still_starting(tmp_path: Path) -> None:
    import signal

    term = _demo(tmp_path)
    try:
        term.wait_for(b"provisioning")
        while not list(tmp_path.glob("keyward-demo-*")) and term.proc.poll() is None:
            time.sleep(0.01)
        term.proc.send_signal(signal.SIGHUP)
        _ends_clean(term, tmp_path)
    finally:
        term.close()


# --- 7 and 8: the dashboard (Pilot) -------------------------------------------------------------

from tests.test_tui_pilot import SIZE, anyio_backend, demo, make_app, sandbox  # noqa: E402,F401 (fixtures)
from tests.tui_helpers import press, select, settle  # noqa: E402


@pytest.mark.anyio
async def test_q_quits_outside_text_boxes_and_types_inside_them(demo, clock, sandbox) -> None:
    from textual.widgets import Input

    app = make_app(demo, clock)
    service = demo.service
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "slash", "q")  # the filter box takes the letter
        assert app.screen.query_one("#filter", Input).value == "q"
        assert app.return_code is None and app.session is not None
        await press(app, pilot, "escape")
        await press(app, pilot, "q")
        assert app.session is None and service.locked  # quit the normal way: the vault dropped
    assert app.return_code == 0


@pytest.mark.anyio
async def test_the_unlock_screen_takes_q_as_part_of_a_passphrase(tmp_path: Path, clock) -> None:
    from tests.conftest import SMALL_KDF
    from tui.app import KeywardApp
    from tui.widgets.secret_input import SecretInput
    from vault.core.service import VaultService

    path = tmp_path / "v" / "vault.kw"
    VaultService.create(path, "quiet quokka quarry quest", SMALL_KDF)
    app = KeywardApp(path, clock=clock, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press(app, pilot, *"quiet quokka quarry quest", "enter")
        assert app.session is not None  # every q went into the passphrase
    assert app.return_code in (None, 0)


@pytest.mark.anyio
async def test_accounts_signed_per_request_never_turn_red(demo, clock, sandbox) -> None:
    """PowerTrade and Hyper sign every request: 25 s after a mint their row says so, with
    the window, where it said a red "expired"; TradeReady's session still counts down."""
    from tui.widgets.accounts_table import AccountsTable

    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(AccountsTable)
        for label, window in (("pt-desk", 30), ("hyper-solver", 15)):
            await select(app, pilot, label)
            await press(app, pilot, "m")
            clock.advance(25)
            app.tick()
            await settle(app, pilot)
            cell = table._shown[(label, "token")]  # what the table drew
            assert "expired" not in cell.plain and "red" not in str(cell.style), cell
            assert cell.plain == f"{window}s/req"
        await select(app, pilot, "tr-agent")
        await press(app, pilot, "m")
        assert ":" in table._shown[("tr-agent", "token")].plain  # a session still counts down


def test_check_says_signed_per_request_not_jwt_until_a_past_time(vault: KeywardCLI, sb) -> None:
    from tests.conftest import sandbox_fields

    fields = sandbox_fields(sb, "powertrade")
    pem = vault.vault_path.parent.parent / "pt.pem"
    pem.write_text(fields.pop("private_key"))
    assert vault("add", "powertrade", "pt", "--base-url", sb.base_url("powertrade"), "--from-json", "-",
                 "--private-key-file", str(pem), input=json.dumps(fields)).code == 0
    assert vault("token", "pt").code == 0
    r = vault("check", "pt")
    assert r.code == 0, r.both
    assert "signed per request (30 s window)" in r.out and "jwt until" not in r.out
    row = json.loads(vault("list", "--json").out)[0]
    assert row["signed_per_request"] is True and row["signature_window_s"] == 30


# --- 9. masks that tell keys apart ------------------------------------------------------------


def test_masks_tell_keys_with_a_shared_prefix_apart() -> None:
    from vault.ops.views import mask

    account_key, agent_key = "ak_live_" + "A" * 20 + "k3Xw", "ak_live_" + "A" * 20 + "9pQe"
    assert mask(account_key, tail=True) != mask(agent_key, tail=True)
    assert mask(account_key, tail=True) == "ak_l…k3Xw"
    for value in (account_key, "x" * 24, "y" * 64):
        shown = mask(value, tail=True).replace("…", "")
        assert len(value) - len(shown) >= 16  # never more than 8 characters, and 16+ stay hidden
    assert mask("KIIEX-SECRET-abc", tail=True) == "KIIE…"  # shorter: the prefix only
    assert mask("short", tail=True) == "••••…"
    pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    assert mask(pem, tail=True) == "••••…"
    assert mask("eyJhbGciOiJFUzI1NiJ9.e30.c2lnbmF0dXJlLXZhcmllcw") == "eyJh…"  # a token: no tail


def test_tradeready_account_and_agent_keys_show_apart(vault: KeywardCLI) -> None:
    fields = {"api_key": "ak_live_" + "0" * 20 + "ACCT", "api_secret": "sk_live_" + "1" * 24,
              "account_id": "550e8400-e29b-41d4-a716-446655440000", "agent_id": "a-1",
              "agent_api_key": "ak_live_" + "0" * 20 + "AGNT"}
    assert vault("add", "tradeready", "tr", "--from-json", "-", input=json.dumps(fields)).code == 0
    shown = json.loads(vault("show", "tr", "--json").out)["fields"]
    assert shown["api_key"] != shown["agent_api_key"]
    assert shown["api_key"].endswith("ACCT") and shown["agent_api_key"].endswith("AGNT")


# --- 10. import of an account that differs only in settings ------------------------------------


def test_importing_an_account_that_differs_only_in_settings_is_not_unchanged(kiiex: KeywardCLI, tmp_path: Path) -> None:
    bundle_pass = tmp_path / "bundle-pass"
    bundle_pass.write_text("a passphrase for the bundle only\n")
    bundle = tmp_path / "kx.kwb"
    assert kiiex("export", "--encrypted", str(bundle), "--bundle-passphrase-file", str(bundle_pass)).code == 0
    assert kiiex("setting", "kx", "session_idle_s", "120").code == 0

    r = kiiex("import", str(bundle), "--bundle-passphrase-file", str(bundle_pass))
    assert r.code != 0 and "settings" in one_error(r) and "unchanged" not in r.both  # a conflict, asked about
    r = kiiex("import", str(bundle), "--bundle-passphrase-file", str(bundle_pass), "--on-conflict", "replace")
    assert r.code == 0 and "replaced kx" in r.out and "unchanged" not in r.out, r.both
    rows = json.loads(kiiex("setting", "kx", "--json").out)
    assert next(row["value"] for row in rows if row["name"] == "session_idle_s") is None  # the bundle's
    r = kiiex("import", str(bundle), "--bundle-passphrase-file", str(bundle_pass))
    assert r.code == 0 and "unchanged" in r.out  # now it is the same account


# --- 13. first steps: the sandbox says how to get credentials; its log keeps lines apart ------


def test_the_sandbox_banner_says_how_to_get_credentials_and_the_line_works(vault: KeywardCLI) -> None:
    import shlex

    import httpx

    from vault.sandbox import Sandbox
    from vault.sandbox.server import describe

    with Sandbox() as sb:
        lines = list(describe(sb))
        for venue in ("powertrade", "hypersolutions", "kiiex"):
            line = next(x for x in lines if f"capture {venue} " in x)
            fetch, store = line.strip().split(" | ")
            assert fetch == f"curl -s -X POST {sb.base_url(venue)}/_sandbox/api-keys"
            issued = httpx.post(fetch.split()[-1]).text  # what curl would pipe
            args = shlex.split(store)[1:]  # keyward capture VENUE LABEL --base-url URL --file -
            args[args.index("LABEL")] = f"{venue}-1"
            r = vault(*args, input=issued)
            assert r.code == 0, r.both
        assert any("keyward register tradeready" in x and sb.base_url("tradeready") in x for x in lines)
    assert [row["label"] for row in json.loads(vault("list", "--json").out)] == ["powertrade-1", "hypersolutions-1",
                                                                                 "kiiex-1"]


def test_the_demo_banner_says_where_credentials_come_from_and_which_keyward(tmp_path: Path) -> None:
    from vault.cli.app_cmds import demo_banner

    banner = demo_banner("pass", tmp_path / "demo.kw", "http://127.0.0.1:1234")
    assert "/_sandbox/api-keys" in banner and "register" in banner
    cli = banner.split("Try the CLI beside it: ", 1)[1].split(" --vault", 1)[0]
    assert cli == "keyward" or cli.endswith("/keyward") or cli.endswith("-m vault"), cli


def test_the_sandbox_access_log_never_runs_two_lines_together() -> None:
    """Handler threads log at once; a writer slow between writes (a terminal under load)
    showed print()'s two writes per line interleaving."""
    import threading

    import httpx

    from vault.sandbox import Sandbox

    class SlowLog:
        def __init__(self) -> None:
            self.chunks: list[str] = []

        def write(self, text: str) -> int:
            self.chunks.append(text)
            time.sleep(0.002)
            return len(text)

        def flush(self) -> None:
            pass

    log = SlowLog()
    with Sandbox(access_log=log) as sb:
        url = sb.url + "/"

        def hit() -> None:
            with httpx.Client() as client:
                for _ in range(10):
                    client.get(url)

        threads = [threading.Thread(target=hit) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = "".join(log.chunks).split("\n")
    assert lines[-1] == "" and len(lines) == 81
    assert all(re.fullmatch(r"GET / 200", line) for line in lines[:-1]), [x for x in lines if x != "GET / 200"][:5]


# --- 15. shell completion ----------------------------------------------------------------------


def complete(kw: KeywardCLI, line: str, tmp_path: Path) -> list[str]:
    """What the shell's completion hook gets for `line` (argcomplete's protocol, as the
    function `register-python-argcomplete keyward` installs runs it)."""
    out = tmp_path / "completions"
    env = kw.env | {"COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE": "1",
                    "_ARGCOMPLETE_SHELL": "bash", "_ARGCOMPLETE_IFS": "\n",
                    "_ARGCOMPLETE_STDOUT_FILENAME": str(out), "KEYWARD_VAULT": str(kw.vault_path)}
    proc = subprocess.run([sys.executable, "-m", "vault"], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.returncode == 0, proc.stderr
    return [x.strip() for x in out.read_text().split("\n") if x.strip()]


def test_completion_of_commands_options_and_venues(kw: KeywardCLI, tmp_path: Path) -> None:
    assert {"init", "show", "capture", "unlock"} <= set(complete(kw, "keyward ", tmp_path))
    assert complete(kw, "keyward cap", tmp_path) == ["capture"]
    assert {"--reveal", "--json", "--copy", "--vault"} <= set(complete(kw, "keyward show --", tmp_path))
    assert complete(kw, "keyward add hy", tmp_path) == ["hypersolutions"]


def test_completion_of_labels_comes_from_the_agent_and_never_asks(kiiex: KeywardCLI, tmp_path: Path) -> None:
    assert complete(kiiex, "keyward show k", tmp_path) == []  # no agent: no labels, and no prompt
    assert kiiex("unlock", "--ttl", "5m").code == 0
    try:
        assert complete(kiiex, "keyward show k", tmp_path) == ["kx"]
        assert "kx" in complete(kiiex, "keyward check ", tmp_path)
    finally:
        kiiex("lock", passphrase=False)


def test_completion_costs_nothing_when_not_asked(kiiex: KeywardCLI) -> None:
    probe = ("import sys; from vault.cli.main import main; code = main(sys.argv[1:]); "
             "print('AC', 'argcomplete' in sys.modules, code)")
    proc = subprocess.run([sys.executable, "-c", probe, "--vault", str(kiiex.vault_path), "--passphrase-file",
                           str(kiiex.passphrase_file), "list"], capture_output=True, text=True, env=kiiex.env,
                          timeout=60, cwd=REPO)
    assert "AC False 0" in proc.stdout, proc.stdout + proc.stderr


def test_the_documented_line_installs_completion_in_bash(tmp_path: Path) -> None:
    """`eval "$(register-python-argcomplete keyward)"`, then bash's own completion call."""
    import shutil

    bindir = Path(sys.executable).parent
    if not (bindir / "keyward").exists() or not (bindir / "register-python-argcomplete").exists() \
            or shutil.which("bash") is None:
        pytest.skip("keyward is not installed as a script beside this interpreter")
    script = ('eval "$(register-python-argcomplete keyward)"; COMP_LINE="keyward sh"; COMP_POINT=10; '
              'COMP_WORDS=(keyward sh); COMP_CWORD=1; COMP_TYPE=9; _python_argcomplete keyward sh keyward; '
              'echo "[${COMPREPLY[*]}]"')
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")}
    env |= {"PATH": f"{bindir}:{env.get('PATH', '')}", "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert proc.stdout.strip().endswith("[show ]"), proc.stdout + proc.stderr


@pytest.mark.anyio
async def test_the_create_screen_shows_the_whole_reason_and_what_to_do(tmp_path: Path, clock) -> None:
    """The same refusal as `keyward init`, not cut off mid-sentence."""
    from tests.conftest import SMALL_KDF
    from tui.app import KeywardApp
    from tui.passphrase import estimate, refusal

    app = KeywardApp(tmp_path / "new" / "vault.kw", clock=clock, kdf=SMALL_KDF, watch=False)
    async with app.run_test(size=(80, 30)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, *"password1234", "enter")
        message = app.screen.query_one("#create-message")
        shown = str(message.render())
        assert shown == refusal(estimate("password1234")) and shown.endswith("add a few uncommon words.")
        lines = message.render_lines(message.region.reset_offset)  # what is drawn, line by line
        drawn = " ".join("".join(seg.text for seg in line).strip() for line in lines)
        assert " ".join(drawn.split()).endswith("add a few uncommon words."), drawn


class _HungUpTerminal:
    """A terminal after `tmux kill-server`: every write fails with EIO."""

    def write(self, text: str) -> int:
        raise OSError(5, "Input/output error")

    def flush(self) -> None:
        raise OSError(5, "Input/output error")

    def fileno(self) -> int:
        return 2


def _writes_finish(file, count: int = 100, timeout: float = 5.0) -> bool:
    """Whether `count` writes through Textual's writer thread, and its stop(), finish."""
    import threading

    from textual.drivers._writer_thread import WriterThread

    writer = WriterThread(file)
    writer.start()

    def work() -> None:
        for _ in range(count):
            writer.write("\x1b[?25h")
        writer.stop()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(timeout)
    return not worker.is_alive()


def test_a_hung_up_terminal_cannot_block_the_dashboard_for_ever() -> None:
    """The deadlock behind the ignored SIGTERM: EIO ended Textual's writer thread and the
    31st write blocked on its full queue.  Through the app's driver file it cannot."""
    from tui.app import _HangupSafeFile

    # The mechanism, as it was: Textual's writer alone blocks (a daemon thread is left
    # behind).  Should Textual ever survive a failed write, this fails: the wrapper may go.
    assert not _writes_finish(_HungUpTerminal(), timeout=2.0)
    assert _writes_finish(_HangupSafeFile(_HungUpTerminal()))


# --- 17. screenshots that show what the dashboard is for, readable offline -------------------


SHOTS = ("dashboard", "detail", "capture", "help", "unlock")


def _svg_text(path: Path) -> str:
    import html

    svg = path.read_text(encoding="utf-8")
    return "".join(html.unescape(t) for t in re.findall(r">([^<]*)</text>", svg)).replace("\xa0", " ")


def test_offline_fonts_drops_the_cdn_and_falls_back_to_local_monospace() -> None:
    from screenshots.make import MONOSPACE, offline_fonts

    head = ('<style>@font-face { font-family: "Fira Code"; src: local("FiraCode-Regular"),\n'
            '  url("https://cdnjs.cloudflare.com/ajax/libs/firacode/6.2.0/woff2/FiraCode-Regular.woff2") format("woff2"),\n'
            '  url("https://cdnjs.cloudflare.com/ajax/libs/firacode/6.2.0/woff/FiraCode-Regular.woff") format("woff");}\n'
            '.terminal-r1 { font-family: Fira Code, monospace; }</style>'
            '<g clip-path="url(#terminal-clip)"><text>https://example in the text stays</text></g>')
    out = offline_fonts(head)
    assert "cdnjs" not in out and 'local("FiraCode-Regular")' in out
    assert f"font-family: {MONOSPACE}" in out and "url(#terminal-clip)" in out and "https://example" in out


def test_the_screenshots_show_failures_skew_a_spent_rate_and_an_expiring_session() -> None:
    out = REPO / "screenshots"
    for name in SHOTS:
        svg = (out / f"{name}.svg").read_text(encoding="utf-8")
        assert not re.search(r"url\(\s*[\"']?https?:", svg), f"{name}.svg fetches a font"
        png = out / f"{name}.png"
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no PNG beside {name}.svg"
    dashboard = _svg_text(out / "dashboard.svg")
    assert "failing" in dashboard and "skew -47s" in dashboard
    assert " 31/600" in dashboard  # a rate limit nearly spent
    assert "02:50" in dashboard  # a session in its last minutes (yellow)
    detail = _svg_text(out / "detail.svg")
    readings = re.search(r"(\d+) readings", detail)
    assert readings and int(readings.group(1)) > 10  # the sparkline has a history, not one reading
