"""The vault CLI as a user meets it: real subprocesses, real files, one-line errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pexpect
import pytest

from vault.core.errors import (
    AccountNotFound,
    CorruptVault,
    InputError,
    InsecureTransport,
    InvalidCredential,
    MalformedInput,
    NoTerminal,
    NotConfirmed,
    UnknownVenue,
    UnsupportedVersion,
    VaultNotFound,
    WrongPassphrase,
)

from .conftest import PASSPHRASE, REPO

KIIEX_EXPORT = {
    "APIKey": "kiiexApiKey0001",
    "APISecret": "KIIEX-SECRET-abcdef0123456789",
    "Nonce": "NONCE-SECRET-987654321",
    "UserId": "42",
    "UserName": "alice",
}
TRADEREADY_REGISTRATION = {
    "account_id": "550e8400-e29b-41d4-a716-446655440000",
    "api_key": "ak_live_TRKEY0000000000000",
    "api_secret": "sk_live_TRSECRET000000000000",
    "display_name": "AlphaBot",
    "starting_balance": "10000.00",
    "message": "Save your API secret now. It will not be shown again.",
}
SECRETS = [KIIEX_EXPORT["APISecret"], KIIEX_EXPORT["Nonce"], TRADEREADY_REGISTRATION["api_key"], TRADEREADY_REGISTRATION["api_secret"]]


def ec_pem(curve=None) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(curve or ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def one_line(result) -> str:
    lines = [line for line in result.err.splitlines() if line.startswith("keyward:")]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    return lines[0]


@pytest.fixture
def populated(kw, tmp_path):
    assert kw.init().code == 0
    (tmp_path / "kiiex.json").write_text(json.dumps(KIIEX_EXPORT))
    (tmp_path / "tr.json").write_text(json.dumps(TRADEREADY_REGISTRATION))
    assert kw("import", str(tmp_path / "kiiex.json"), "--label", "ki", "--env", "staging").code == 0
    assert kw("import", str(tmp_path / "tr.json"), "--label", "tr").code == 0
    return kw


def test_init_list_show_masked(populated):
    kw = populated
    listing = kw("list", "--json")
    assert listing.code == 0
    rows = json.loads(listing.out)
    assert [(r["label"], r["venue"], r["env"]) for r in rows] == [("ki", "kiiex", "staging"), ("tr", "tradeready", "prod")]
    assert {"token", "rate_limit", "health", "key_age_days"} <= set(rows[0])
    shown = kw("show", "ki", "--json")
    fields = json.loads(shown.out)["fields"]
    assert fields["api_key"] == "kiiexApiKey0001"  # not a secret at Kiiex
    assert fields["api_secret"] == "KIIE…6789"  # 24+ characters: the last 4 too, to tell keys apart
    assert fields["user_id"] == "42"
    for result in (listing, shown, kw("list"), kw("show", "tr")):
        for secret in SECRETS:
            assert secret not in result.both


def test_show_reveal_shows_and_is_audited(populated):
    shown = json.loads(populated("show", "ki", "--reveal", "--json").out)
    assert shown["fields"]["api_secret"] == KIIEX_EXPORT["APISecret"]
    from vault.core.service import VaultService

    audit = VaultService.unlock(populated.vault_path, PASSPHRASE).data.audit
    assert [e.action for e in audit][-1] == "reveal"


def test_vault_file_holds_no_plaintext(populated):
    blob = populated.vault_path.read_bytes() + populated.vault_path.with_name("vault.kw.bak").read_bytes()
    for secret in SECRETS + ["kiiexApiKey0001", "alice"]:
        assert secret.encode() not in blob


def test_add_from_json_stdin_and_private_key_file(kw, tmp_path):
    kw.init()
    pem = tmp_path / "key.pem"
    pem.write_text("\n\n" + ec_pem() + "\n  \n")  # paste accidents around it
    r = kw("add", "powertrade", "pt", "--env", "test", "--from-json", "-", "--private-key-file", str(pem), input='{"api_key": "pt-key-1"}')
    assert r.code == 0, r.err
    detail = json.loads(kw("show", "pt", "--json").out)
    assert detail["base_url"] == "https://api.rest.test.power.trade"
    assert detail["fields"]["private_key"] == "••••…"
    r = kw("add", "hypersolutions", "hy", "--base-url", "http://127.0.0.1:9/hypersolutions", "--from-json", "-",
           input='{"api_key": "hyper-key-abcdef", "jwt_key": "hyper-jwt-0123456789"}')
    assert r.code == 0, r.err
    assert "hyper-jwt-0123456789" not in kw("show", "hy").both


@pytest.mark.parametrize(
    "args,stdin,error,needle",
    [
        (("add", "nosuch", "x"), None, UnknownVenue, "known venues: powertrade"),
        (("add", "kiiex", "x", "--from-json", "-"), '{"api_key": "k",', MalformedInput, "line 1"),
        (("add", "powertrade", "x", "--from-json", "-"), '{"api_key": "k", "private_key": "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----"}', InvalidCredential, "public key"),
        (("add", "powertrade", "x", "--from-json", "-"), '{"api_key": "k", "private_key": "garbage!"}', InvalidCredential, "not PEM"),
        (("add", "kiiex", "x", "--from-json", "-"), '{"api_key": "k", "api_secret": "s"}', InvalidCredential, "needs nonce"),
        (("add", "kiiex", "x", "--base-url", "http://example.com/ap", "--from-json", "-"),
         '{"api_key": "k", "api_secret": "s", "nonce": "n", "user_id": "1"}', InsecureTransport, "plain http"),
        (("show", "nobody"), None, AccountNotFound, "no account"),
        (("import", "-"), '{"hello": 1}', MalformedInput, "not a format keyward recognises"),
    ],
)
def test_user_errors_are_one_line_with_their_exit_code(kw, args, stdin, error, needle):
    kw.init()
    before = kw.vault_path.read_bytes()
    r = kw(*args, input=stdin)
    assert r.code == error.exit_code
    assert needle in one_line(r)
    assert kw.vault_path.read_bytes() == before


def test_wrong_curve_is_refused(kw, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec

    kw.init()
    pem = tmp_path / "k.pem"
    pem.write_text(ec_pem(ec.SECP384R1()))
    r = kw("add", "powertrade", "x", "--from-json", "-", "--private-key-file", str(pem), input='{"api_key": "k"}')
    assert r.code == InvalidCredential.exit_code and "P-256" in one_line(r)


def test_pem_without_header_is_repaired(kw, tmp_path):
    kw.init()
    body = "".join(ec_pem().strip().splitlines()[1:-1])
    r = kw("add", "powertrade", "x", "--from-json", "-", input=json.dumps({"api_key": "k", "private_key": body}))
    assert r.code == 0, r.err


def test_wrong_passphrase_exit_code_and_file_unchanged(populated, tmp_path):
    before = populated.vault_path.read_bytes()
    bad = tmp_path / "bad"
    bad.write_text("nope\n")
    r = populated("--passphrase-file", str(bad), "list", passphrase=False)
    assert r.code == WrongPassphrase.exit_code
    assert "wrong passphrase" in one_line(r)
    assert populated.vault_path.read_bytes() == before


def test_corrupted_and_future_files_are_typed(populated):
    blob = bytearray(populated.vault_path.read_bytes())
    blob[200] ^= 0x01
    populated.vault_path.write_bytes(bytes(blob))
    r = populated("list")
    assert r.code == CorruptVault.exit_code and ".bak" in one_line(r)
    blob[200] ^= 0x01
    blob[8] = 9
    populated.vault_path.write_bytes(bytes(blob))
    r = populated("list")
    assert r.code == UnsupportedVersion.exit_code and "upgrade keyward" in one_line(r)


def test_missing_vault_says_init(kw):
    r = kw("list")
    assert r.code == VaultNotFound.exit_code and "keyward init" in one_line(r)


def test_no_terminal_and_no_passphrase_file_says_what_to_do(populated):
    r = populated("list", passphrase=False)
    assert r.code == NoTerminal.exit_code and "--passphrase-file" in one_line(r)


def test_passphrase_env_var_names_a_file_not_a_secret(populated):
    r = populated("list", passphrase=False, env={"KEYWARD_PASSPHRASE_FILE": str(populated.passphrase_file)})
    assert r.code == 0


def test_remove_needs_confirmation_without_a_terminal(populated):
    r = populated("remove", "ki")
    assert r.code != 0
    assert "ki" in populated("list").out
    assert populated("remove", "ki", "--yes").code == 0
    assert "ki " not in populated("list").out


def test_passwd_and_rekey(populated, tmp_path):
    new = tmp_path / "new"
    new.write_text("another granite lantern passphrase\n")
    assert populated("passwd", "--new-passphrase-file", str(new)).code == 0
    assert populated("list").code == WrongPassphrase.exit_code
    r = populated("--passphrase-file", str(new), "rekey", passphrase=False)
    assert r.code == 0, r.err
    assert "ki" in populated("--passphrase-file", str(new), "list", passphrase=False).out


def test_group_readable_vault_warns_with_fix(populated):
    os.chmod(populated.vault_path, 0o644)
    r = populated("list")
    assert r.code == 0 and "chmod 600" in r.err


def test_init_prompts_twice_without_echo(tmp_path):
    """Through a real pseudo-terminal, as a person types it."""
    vault = tmp_path / "v" / "vault.kw"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {"PYTHONPATH": str(REPO)}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "vault", "--vault", str(vault), "init", "--kdf-memory-mib", "8", "--kdf-iterations", "1", "--kdf-parallelism", "1"],
        env=env, encoding="utf-8", timeout=30,
    )
    child.expect("Passphrase for the new vault: ")
    child.sendline("granite lantern mosaic velvet")
    child.expect(r"\(again\): ")
    child.sendline("granite lantern mosaic velvet")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "granite lantern mosaic velvet" not in child.before  # no echo
    assert stat.S_IMODE(vault.stat().st_mode) == 0o600
    from vault.core.service import VaultService

    VaultService.unlock(vault, "granite lantern mosaic velvet")


def test_init_mismatched_passphrases_create_nothing(tmp_path):
    vault = tmp_path / "v" / "vault.kw"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {"PYTHONPATH": str(REPO)}
    child = pexpect.spawn(sys.executable, ["-m", "vault", "--vault", str(vault), "init", "--kdf-memory-mib", "8",
                                           "--kdf-iterations", "1", "--kdf-parallelism", "1"], env=env, encoding="utf-8", timeout=30)
    for _ in range(3):  # a mistyped repeat is asked again, three tries in all
        child.expect("vault: ")
        child.sendline("granite lantern mosaic velvet")
        child.expect(r"\(again\): ")
        child.sendline("granite lantern mosaic violet")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == NotConfirmed.exit_code
    assert "differ" in child.before
    assert not vault.exists()


def test_kdf_floor_is_enforced_at_init(kw):
    r = kw("init", "--kdf-memory-mib", "4", "--kdf-iterations", "1", "--kdf-parallelism", "1")
    assert r.code != 0 and "outside the accepted range" in one_line(r)
    assert not kw.vault_path.exists()


def test_no_option_takes_a_secret_value():
    """Secrets come from prompts and files only: every option naming a secret or a
    passphrase must be a *-file option (or a flag that takes no value)."""
    import argparse

    from vault.cli.main import build_parser

    parser = build_parser()
    parsers = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers += list(action.choices.values())
    checked = 0
    for p in parsers:
        for action in p._actions:
            for opt in action.option_strings:
                if any(word in opt for word in ("secret", "passphrase", "password", "private-key", "token", "nonce")):
                    checked += 1
                    assert opt.endswith("-file") or action.nargs == 0, opt
    assert checked >= 3


def test_the_command_table_names_every_command_of_every_group():
    """A run builds only the group its command is in (vault.cli.main.COMMAND_GROUPS):
    the table must say exactly what each module registers, and a command line picks
    the same subparser, with the same options, as the whole parser would."""
    import argparse
    from importlib import import_module

    from vault.cli.main import COMMAND_GROUPS, build_parser, command_group

    for module, commands in COMMAND_GROUPS.items():
        sub = argparse.ArgumentParser().add_subparsers()
        import_module(module).register(sub)
        assert sorted(sub.choices) == sorted(commands), module

    def subparsers(parser):
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return action.choices

    whole = subparsers(build_parser())
    for argv in (["list", "--json"], ["--vault", "x.kw", "show", "desk"], ["--vault=x.kw", "--passphrase-file", "p", "monitor"]):
        only = subparsers(build_parser(argv))
        assert command_group(argv) is not None and len(only) < len(whole)
        command = next(a for a in argv if a in whole)
        assert only[command].format_help() == whole[command].format_help()
    # Only the command's own parser is built, not its group's others (~3 ms of a cold
    # command): the same help, options and defaults as in the whole parser.
    for command, parser in whole.items():
        only = subparsers(build_parser([command]))
        assert list(only) == [command], command
        assert only[command].format_help() == parser.format_help(), command
        assert only[command]._defaults == parser._defaults, command
    for argv in ([], ["--help"], ["--version"], ["lst"], ["--vau", "x", "list"], ["--vault"]):
        assert command_group(argv) is None, argv
        assert len(subparsers(build_parser(argv))) == len(whole)


@pytest.mark.parametrize("columns", ["37", "80", "131", "", "wide"])
def test_help_is_laid_out_exactly_as_argparse_lays_it_out(monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    """vault.cli.parser asks the terminal's width once instead of argparse asking shutil
    for every argument: every command's help must come out byte for byte as argparse's
    own formatter (which asks shutil) lays it out, at any $COLUMNS (unset and invalid too)."""
    import argparse
    import shutil

    from vault.cli import parser as kparser
    from vault.cli.main import build_parser

    if columns:
        monkeypatch.setenv("COLUMNS", columns)
    else:
        monkeypatch.delenv("COLUMNS", raising=False)
    kparser.terminal_columns.cache_clear()
    try:
        assert kparser.terminal_columns() == shutil.get_terminal_size().columns
        parser = build_parser()
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for sub in [parser, *dict.fromkeys(action.choices.values())]:
            ours = sub.format_help()
            raw = issubclass(sub.formatter_class, argparse.RawDescriptionHelpFormatter)
            sub.formatter_class = argparse.RawDescriptionHelpFormatter if raw else argparse.HelpFormatter
            assert ours == sub.format_help(), sub.prog
    finally:
        kparser.terminal_columns.cache_clear()  # (the width of this test's $COLUMNS stays here)


def test_only_commands_on_the_vault_alone_run_without_the_cyclic_collector(monkeypatch) -> None:
    """vault.cli.main turns Python's cyclic collector off for a command that works on the
    vault alone and ends; never for one that stays up (the dashboard, also what no command
    opens; the sandbox; the monitor) or talks to venues (`check` of many accounts leaves
    cycles behind); and gives it back to a process that called main and goes on."""
    import gc

    from vault.cli import main as cli

    for argv in ([], ["dashboard"], ["demo"], ["sandbox"], ["monitor"], ["--vault", "x.kw", "monitor"], ["--version"]):
        assert not cli.runs_to_its_end(argv) and not cli.works_on_the_vault_alone(argv), argv
    for argv in (["list", "--json"], ["--vault=x.kw", "show", "desk"], ["unlock"], ["lock"], ["restore", "x"],
                 ["passwd"], ["import", "-"]):
        assert cli.runs_to_its_end(argv) and cli.works_on_the_vault_alone(argv), argv
    for argv in (["token", "desk"], ["check"], ["login", "x"], ["rotate", "x"], ["capture", "kiiex", "k"]):
        assert cli.runs_to_its_end(argv) and not cli.works_on_the_vault_alone(argv), argv
    seen = []
    monkeypatch.setattr(cli, "_run", lambda argv: seen.append(gc.isenabled()) or 0)
    assert gc.isenabled()
    cli.main(["list"])
    cli.main(["check"])
    cli.main(["sandbox"])
    assert seen == [False, True, True] and gc.isenabled()


def test_the_program_ends_a_one_shot_command_with_everything_frozen_and_its_exit_code(tmp_path) -> None:
    """vault.cli.main.run (the console script, `python -m vault`) freezes what is alive
    before exiting, so shutdown does not collect it, and still exits with the command's
    code; a process that calls main() itself keeps its collector as it was."""
    probe = ("import atexit, gc, sys; atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, gc.isenabled()));"
             "from vault.cli.main import run; sys.argv = ['keyward', *sys.argv[1:]]; run()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {"PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", probe, "--vault", str(tmp_path / "none.kw"), "list"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 11 and "no vault at" in done.stderr
    assert done.stdout.strip() == "frozen True True"


def spawn_tty(*args: str) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {"PYTHONPATH": str(REPO)}
    return pexpect.spawn(sys.executable, ["-m", "vault", *args], env=env, encoding="utf-8", timeout=30)


def test_add_prompts_for_fields_secrets_without_echo(kw):
    kw.init()
    child = spawn_tty("--vault", str(kw.vault_path), "--passphrase-file", str(kw.passphrase_file), "add", "kiiex", "typed",
                      "--base-url", "http://127.0.0.1:9/kiiex/ap")
    for prompt, answer in [("API key: ", "typedApiKey01"), ("API secret: ", "TYPED-SECRET-0123456789"),
                           ("nonce: ", "TYPED-NONCE-55555"), ("user id: ", "77"), (r"user name \(optional", "")]:
        child.expect(prompt)
        child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    transcript = child.before
    assert "TYPED-SECRET-0123456789" not in transcript and "TYPED-NONCE-55555" not in transcript
    shown = json.loads(kw("show", "typed", "--json", "--reveal").out)
    assert shown["fields"] == {"api_key": "typedApiKey01", "api_secret": "TYPED-SECRET-0123456789",
                               "nonce": "TYPED-NONCE-55555", "user_id": "77"}


def test_import_asks_for_the_label(kw, tmp_path):
    kw.init()
    src = tmp_path / "export.json"
    src.write_text(json.dumps(KIIEX_EXPORT))
    child = spawn_tty("--vault", str(kw.vault_path), "--passphrase-file", str(kw.passphrase_file), "import", str(src))
    child.expect(r"Label \[alice\]: ")
    child.sendline("kiiex-main")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert [r["label"] for r in json.loads(kw("list", "--json").out)] == ["kiiex-main"]


def test_weak_kdf_unlock_offers_an_upgrade(kw):
    from vault.core import fileformat as ff

    kw.init()
    child = spawn_tty("--vault", str(kw.vault_path), "list")
    child.expect("Vault passphrase: ")
    child.sendline(PASSPHRASE)
    child.expect(r"Upgrade\? \[y/N\] ")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert ff.parse(kw.vault_path.read_bytes()).kdf == ff.DEFAULT_KDF
    assert kw("list").code == 0  # same passphrase still opens it


def test_json_on_stdin_and_missing_fields_asked_on_the_terminal(kw):
    """stdin carries the JSON, so the prompts must use the controlling terminal."""
    import shlex

    kw.init()
    cmd = " ".join(shlex.quote(x) for x in [sys.executable, "-m", "vault", "--vault", str(kw.vault_path),
                                            "--passphrase-file", str(kw.passphrase_file), "add", "kiiex", "piped",
                                            "--env", "staging", "--from-json", "-"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {"PYTHONPATH": str(REPO)}
    child = pexpect.spawn("/bin/bash", ["-c", f"echo '{{\"api_key\": \"pipedKey\", \"user_id\": \"5\"}}' | {cmd}"],
                          env=env, encoding="utf-8", timeout=30)
    child.expect("API secret: ")
    child.sendline("PIPED-SECRET-0000000")
    child.expect("nonce: ")
    child.sendline("PIPED-NONCE-000000")
    child.expect(r"user name \(optional")
    child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    fields = json.loads(kw("show", "piped", "--json", "--reveal").out)["fields"]
    assert fields["api_secret"] == "PIPED-SECRET-0000000" and fields["api_key"] == "pipedKey"


def test_remove_asks_to_type_the_label_on_a_terminal(populated):
    child = spawn_tty("--vault", str(populated.vault_path), "--passphrase-file", str(populated.passphrase_file), "remove", "ki")
    child.expect(r"Type the label \(ki\)")
    child.sendline("k")  # a typo removes nothing
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus != 0 and "nothing was removed" in child.before
    child = spawn_tty("--vault", str(populated.vault_path), "--passphrase-file", str(populated.passphrase_file), "remove", "ki")
    child.expect(r"Type the label \(ki\)")
    child.sendline("ki")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert [r["label"] for r in json.loads(populated("list", "--json").out)] == ["tr"]
    from vault.core.service import VaultService

    assert VaultService.unlock(populated.vault_path, PASSPHRASE).data.audit[-1].action == "remove"


@pytest.mark.parametrize(
    "stdin",
    [
        '{"api_key": "k", "api_secret": "LEAKY-SECRET-1234567", "nonce": }',  # broken JSON around a secret
        '{"api_key": "k", "api_secret": "LEAKY-SECRET-1234567", "nonce": "n", "user_id": "not-a-number"}',
        '{"api_key": "k", "api_secet": "LEAKY-SECRET-1234567", "nonce": "n", "user_id": "1"}',  # a typo in a name
        '{"api_key": "k", "api_secret": "LEAKY SECRET 1234567", "nonce": "n", "user_id": "1"}',
    ],
)
def test_errors_about_bad_input_never_echo_the_secret(kw, stdin):
    kw.init()
    r = kw("add", "kiiex", "x", "--from-json", "-", input=stdin)
    assert r.code != 0
    one_line(r)
    assert "LEAKY" not in r.both


def test_importing_a_vault_file_says_what_it_is(populated, tmp_path):
    r = populated("import", str(populated.vault_path))
    assert r.code == InputError.exit_code and "is a keyward vault" in one_line(r)


def test_setting_changes_are_audited(populated):
    r = populated("setting", "ki", "session_idle_s", "600")
    assert r.code == 0, r.err
    from vault.core.service import VaultService

    entry = VaultService.unlock(populated.vault_path, PASSPHRASE).data.audit[-1]
    assert (entry.action, entry.account, entry.detail) == ("setting", "ki", "session_idle_s=600")


def test_unknown_audit_actions_are_a_programming_error():
    from vault.core import audit
    from vault.core.model import VaultData

    with pytest.raises(ValueError):
        audit.append(VaultData(), 0.0, "mintt", "x")


def test_list_shows_a_token_without_an_expiry(kw):
    """A venue may hand out a session with no expiry: `list` printed its table row with
    f"{None:<22}" and ended in "internal error (TypeError)"."""
    from vault.core.model import Account, Token
    from vault.core.service import VaultService

    assert kw.init().code == 0
    service = VaultService.unlock(kw.vault_path, PASSPHRASE)
    acct = Account(label="kx", venue="kiiex", base_url="http://127.0.0.1:1",
                   fields={"api_key": "k" * 32, "api_secret": "s" * 32, "user_id": "7", "nonce": "1"})
    acct.token = Token("session-value", 1.0, None, "session")
    service.add_account(acct)
    done = kw("list")
    assert done.code == 0, done.both
    assert "kx" in done.out and "no expiry" in done.out and "session-value" not in done.out


FAST_EXIT_PROBE = ("import os, sys\nreal_exit = os._exit\n"
                   "def seen(code):\n    os.write(2, b'ended without the teardown\\n')\n    real_exit(code)\n"
                   "os._exit = seen\nfrom vault.cli.main import run; sys.argv = ['keyward', *sys.argv[1:]]; run()")


def test_a_command_on_the_vault_alone_ends_without_the_teardown_and_loses_no_output(kw) -> None:
    """After a command on the vault alone (nothing left running, no atexit handler),
    run() flushes the standard streams and ends the process without tearing down every
    module and object one by one (5 ms of `list --json` at 1,000 accounts).  Its piped
    output is whole and its exit code kept; a command that talks to venues still shuts
    down normally."""
    assert kw.init().code == 0
    for i in range(3):
        added = kw("add", "kiiex", f"acct-{i:03d}", "--base-url", "http://127.0.0.1:9/kiiex/ap", "--from-json", "-",
                   input=json.dumps({"api_key": f"key{i:09d}", "api_secret": "s" * 40, "nonce": "1", "user_id": str(i)}))
        assert added.code == 0, added.both
    env = kw.env | {"PYTHONPATH": str(REPO)}
    base = [sys.executable, "-c", FAST_EXIT_PROBE, "--vault", str(kw.vault_path), "--passphrase-file", str(kw.passphrase_file)]
    listed = subprocess.run([*base, "list", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert [row["label"] for row in json.loads(listed.stdout)] == ["acct-000", "acct-001", "acct-002"]
    assert "ended without the teardown" in listed.stderr
    missing = subprocess.run([*base, "show", "nosuch"], capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 22 and "no account labelled 'nosuch'" in missing.stderr
    assert "ended without the teardown" in missing.stderr
    venue = subprocess.run([*base, "check", "nosuch"], capture_output=True, text=True, env=env, timeout=60)
    assert venue.returncode == 22 and "ended without the teardown" not in venue.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
@pytest.mark.parametrize("command", [["list"], ["list", "--json"], ["show", "acct-000", "--reveal"], ["audit"]])
def test_output_that_cannot_be_written_is_a_one_line_error_with_its_own_code(kw, command: list[str]) -> None:
    """`keyward list > file` on a full disk was "internal error (OSError)", exit 70; with
    the output buffered until the exit it could also have ended 0, the file cut short.
    Now: one line that says what to do, exit 5 (README), no traceback."""
    assert kw.init().code == 0
    added = kw("add", "kiiex", "acct-000", "--base-url", "http://127.0.0.1:9/kiiex/ap", "--from-json", "-",
               input=json.dumps({"api_key": "key000000000", "api_secret": "s" * 40, "nonce": "1", "user_id": "1"}))
    assert added.code == 0, added.both
    base = [sys.executable, "-m", "vault", "--vault", str(kw.vault_path), "--passphrase-file", str(kw.passphrase_file)]
    env = kw.env | {"PYTHONPATH": str(REPO)}
    with open("/dev/full", "w") as full:
        done = subprocess.run([*base, *command], stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    assert done.returncode == 5, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("keyward: cannot write the output (No space left on device)")
    closed = subprocess.run([*base, *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            timeout=60, preexec_fn=lambda: os.close(1))
    assert closed.returncode == 5 and "standard output is closed" in closed.stderr, closed.stderr
