"""Export and move: each plaintext format round-trips through `import`; plaintext needs a
yes and never goes to a terminal unasked; encrypted bundles move accounts between vaults
with a conflict policy; `pubkey` derives PowerTrade's public key."""

from __future__ import annotations

import json
import os
import stat
import sys

import pexpect
import pytest

from vault.core import fileformat as ff
from vault.core.errors import FileUnusable, InputError, NoTerminal, NotConfirmed, WeakPassphrase
from vault.ops.export import parse_env

from .conftest import PASSPHRASE, REPO, KeywardCLI
from .test_lifecycle_capture import assert_no_secrets, canonical, secret_values, stored

VENUES = ["tradeready", "kiiex", "powertrade", "hypersolutions"]


@pytest.fixture
def other(tmp_path, passphrase_file):
    """A second vault, on "another machine"."""
    home = tmp_path / "home2"
    (home / "run").mkdir(parents=True)
    cli = KeywardCLI(tmp_path / "vault2" / "vault.kw", passphrase_file, home)
    assert cli.init().code == 0
    return cli


@pytest.fixture
def bundle_pass(tmp_path):
    path = tmp_path / "bundle-passphrase"
    path.write_text("a different passphrase for the bundle\n")
    path.chmod(0o600)
    return path


def issue(sb, venue):
    return canonical(venue, sb.issue(venue, **({"display_name": "E"} if venue == "tradeready" else {})))


def spawn(kw, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {"PYTHONPATH": str(REPO)}
    return pexpect.spawn(sys.executable, ["-m", "vault", "--vault", str(kw.vault_path), "--passphrase-file",
                                          str(kw.passphrase_file), *args], env=env, encoding="utf-8", timeout=30)


# --- plaintext formats ------------------------------------------------------------------------


@pytest.mark.parametrize("venue", VENUES)
def test_each_export_format_round_trips_through_import(vault, other, sb, tmp_path, venue):
    fields = issue(sb, venue)
    base = sb.base_url(venue)
    assert vault("capture", venue, "src", "--base-url", base, input=json.dumps(fields)).code == 0
    exports = tmp_path / "exports"
    exports.mkdir()
    outputs = []
    for fmt in ("env", "json", "native"):
        out = exports / f"src.{fmt}"
        r = vault("export", "src", "--format", fmt, "--output", str(out), "--yes")
        assert r.code == 0, r.err
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        extra = ["--base-url", base] if fmt == "native" else []  # the venue's shape carries no URL
        imp = other("import", str(out), "--label", f"from-{fmt}", *extra)
        assert imp.code == 0, (fmt, imp.err)
        moved = stored(other.vault_path, f"from-{fmt}")
        assert (moved.venue, moved.fields, moved.base_url) == (venue, fields, base), fmt
        outputs += [r.out, r.err, imp.out, imp.err]
    assert other("check", "from-env").code == 0  # and it works on the other side
    assert_no_secrets(secret_values(venue, fields), *outputs, root=tmp_path, allow=(exports,))


def test_native_is_the_venues_own_shape(vault, sb, tmp_path):
    kx = sb.issue("kiiex")
    assert vault("capture", "kiiex", "kx", input=json.dumps(kx)).code == 0
    r = vault("export", "kx", "--format", "native", "--yes")
    assert json.loads(r.out) == kx  # Kiiex's "Export to JSON", key for key
    tr = sb.issue("tradeready", display_name="N")
    assert vault("capture", "tradeready", "tr", input=json.dumps(tr)).code == 0
    native = json.loads(vault("export", "tr", "--format", "native", "--yes").out)
    assert native == {k: tr[k] for k in ("api_key", "api_secret", "account_id", "agent_id", "agent_api_key")}


def test_env_export_is_a_shell_and_dotenv_file(vault, sb, tmp_path):
    pt = sb.issue("powertrade")
    assert vault("capture", "powertrade", "pt", "--base-url", sb.base_url("powertrade"), input=json.dumps(pt)).code == 0
    text = vault("export", "pt", "--format", "env", "--yes").out  # stdout is a pipe here
    assert parse_env(text)["fields"] == pt
    # A POSIX shell reads the same values, the multi-line PEM included.
    import subprocess

    env_file = tmp_path / "exports" / "pt.env"
    env_file.parent.mkdir()
    env_file.write_text(text)
    shell = subprocess.run(["sh", "-c", f'set -a; . "{env_file}"; printf %s "$KEYWARD_PRIVATE_KEY"'],
                           capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert shell.stdout == pt["private_key"]


def test_plaintext_needs_a_yes_and_a_free_path(vault, sb, tmp_path):
    fields = issue(sb, "hypersolutions")
    assert vault("capture", "hypersolutions", "h", input=json.dumps(fields)).code == 0
    out = tmp_path / "x.env"
    r = vault("export", "h", "--format", "env", "--output", str(out))
    assert r.code == NoTerminal.exit_code and "--yes" in r.err and not out.exists()
    out.write_text("keep me")
    r = vault("export", "h", "--format", "env", "--output", str(out), "--yes")
    assert r.code == FileUnusable.exit_code and "--force" in r.err and out.read_text() == "keep me"
    r = vault("export", "h", "--format", "env", "--output", str(out), "--yes", "--force")
    assert r.code == 0 and parse_env(out.read_text())["fields"] == fields
    assert vault("export", "h").code == 2
    assert vault("export", "h", "nope", "--format", "json", "--yes").code == 2
    assert vault("export", "nope", "--format", "json", "--yes").code == 22
    audit = json.loads(vault("audit", "h", "--json").out)["entries"]
    assert [e["detail"] for e in audit if e["action"] == "export"] == [f"plaintext env to {out}"]


def test_plaintext_is_not_printed_to_a_terminal_unless_asked_and_confirmed(vault, sb):
    fields = issue(sb, "hypersolutions")
    assert vault("capture", "hypersolutions", "h", input=json.dumps(fields)).code == 0
    child = spawn(vault, "export", "h", "--format", "env")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == InputError.exit_code and "refusing to print plaintext secrets to the terminal" in child.before
    child = spawn(vault, "export", "h", "--format", "env", "--allow-terminal")
    child.expect(r"IN PLAINTEXT .*\[y/N\] ")
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == NotConfirmed.exit_code and fields["jwt_key"] not in child.before
    child = spawn(vault, "export", "h", "--format", "env", "--allow-terminal")
    child.expect(r"\[y/N\] ")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and fields["jwt_key"] in child.before  # asked for, and confirmed


# --- encrypted bundles -------------------------------------------------------------------------


def _populate(vault, sb):
    accounts = {}
    for venue, label in [("kiiex", "kx"), ("powertrade", "pt"), ("tradeready", "tr")]:
        accounts[label] = (venue, issue(sb, venue))
        assert vault("capture", venue, label, "--base-url", sb.base_url(venue),
                     input=json.dumps(accounts[label][1])).code == 0
    return accounts


def test_bundle_moves_accounts_to_another_vault(vault, other, sb, tmp_path, bundle_pass):
    accounts = _populate(vault, sb)
    bundle = tmp_path / "move.kwb"
    r = vault("export", "--encrypted", str(bundle), "--bundle-passphrase-file", str(bundle_pass))
    assert r.code == 0, r.err
    blob = bundle.read_bytes()
    assert blob[:8] == ff.MAGIC_BUNDLE and stat.S_IMODE(bundle.stat().st_mode) == 0o600
    # Sealed under the bundle's own passphrase, not the vault's.
    with pytest.raises(Exception):
        ff.decrypt(blob, PASSPHRASE, expect_magic=ff.MAGIC_BUNDLE)
    imp = other("import", str(bundle), "--bundle-passphrase-file", str(bundle_pass))
    assert imp.code == 0, imp.err
    assert "imported 3 of 3" in imp.out
    for label, (venue, fields) in accounts.items():
        moved = stored(other.vault_path, label)
        assert (moved.venue, moved.fields, moved.base_url) == (venue, fields, sb.base_url(venue))
    assert other("check", "--all").code == 0
    again = other("import", str(bundle), "--bundle-passphrase-file", str(bundle_pass))
    assert again.code == 0 and again.out.count("unchanged") == 3
    secrets = [s for venue, fields in accounts.values() for s in secret_values(venue, fields)]
    assert_no_secrets(secrets, r.out, r.err, imp.out, imp.err, again.out, root=tmp_path)


def test_bundle_of_chosen_labels_and_a_wrong_passphrase(vault, other, sb, tmp_path, bundle_pass):
    _populate(vault, sb)
    bundle = tmp_path / "one.kwb"
    assert vault("export", "--encrypted", str(bundle), "pt", "--bundle-passphrase-file", str(bundle_pass)).code == 0
    wrong = tmp_path / "wrong"
    wrong.write_text("not the bundle passphrase\n")
    r = other("import", str(bundle), "--bundle-passphrase-file", str(wrong))
    assert r.code == 13 and "wrong bundle passphrase" in r.err
    assert json.loads(other("list", "--json").out) == []
    r = other("import", str(bundle))  # no terminal to ask on
    assert r.code == NoTerminal.exit_code and "--bundle-passphrase-file" in r.err
    r = other("import", str(bundle), "--bundle-passphrase-file", str(bundle_pass), "--label", "renamed")
    assert r.code == 0 and [a["label"] for a in json.loads(other("list", "--json").out)] == ["renamed"]


def test_bundle_label_conflicts_follow_the_policy(vault, other, sb, tmp_path, bundle_pass):
    accounts = _populate(vault, sb)
    mine = issue(sb, "kiiex")
    assert other("capture", "kiiex", "kx", input=json.dumps(mine)).code == 0
    bundle = tmp_path / "c.kwb"
    assert vault("export", "--encrypted", str(bundle), "--bundle-passphrase-file", str(bundle_pass)).code == 0
    base = ["import", str(bundle), "--bundle-passphrase-file", str(bundle_pass)]

    r = other(*base)  # no terminal, no policy: refuse, import nothing
    assert r.code == NoTerminal.exit_code and "kx" in r.err and "--on-conflict" in r.err
    assert [a["label"] for a in json.loads(other("list", "--json").out)] == ["kx"]

    r = other(*base, "--on-conflict", "skip")
    assert r.code == 0 and "skipped kx" in r.out
    assert stored(other.vault_path, "kx").fields == mine

    r = other(*base, "--on-conflict", "keep-both")
    assert r.code == 0 and "added kx as kx-2" in r.out
    assert stored(other.vault_path, "kx-2").fields == accounts["kx"][1]
    assert stored(other.vault_path, "kx").fields == mine

    r = other(*base, "--on-conflict", "replace")
    assert r.code == 0 and "replaced kx" in r.out
    replaced = stored(other.vault_path, "kx")
    assert replaced.fields == accounts["kx"][1]
    assert replaced.generations[-1].fields == mine  # the replaced set is retired, not lost


def test_bundle_conflict_is_asked_on_a_terminal(vault, other, sb, tmp_path, bundle_pass):
    accounts = _populate(vault, sb)
    assert other("capture", "powertrade", "pt", input=json.dumps(issue(sb, "powertrade"))).code == 0
    bundle = tmp_path / "t.kwb"
    assert vault("export", "--encrypted", str(bundle), "pt", "--bundle-passphrase-file", str(bundle_pass)).code == 0
    child = spawn(other, "import", str(bundle))
    child.expect("Bundle passphrase: ")
    child.sendline(bundle_pass.read_text().strip())
    child.expect(r"'pt' exists \(powertrade, prod, created .*\); the bundle's is powertrade, http://127\.0\.0\.1:\d+/powertrade "
                 r"\(different location and credentials\)\. \[k\]eep both, \[s\]kip, \[r\]eplace\? ")
    child.sendline("k")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert stored(other.vault_path, "pt-2").fields == accounts["pt"][1]


def test_a_damaged_bundle_is_refused(vault, other, sb, tmp_path, bundle_pass):
    _populate(vault, sb)
    bundle = tmp_path / "d.kwb"
    assert vault("export", "--encrypted", str(bundle), "--bundle-passphrase-file", str(bundle_pass)).code == 0
    blob = bytearray(bundle.read_bytes())
    blob[200] ^= 1
    bundle.write_bytes(bytes(blob))
    r = other("import", str(bundle), "--bundle-passphrase-file", str(bundle_pass))
    assert r.code == 14 and "damaged" in r.err and "Traceback" not in r.err


# --- pubkey ----------------------------------------------------------------------------------------


def test_pubkey_prints_the_public_half_as_pem_and_jwk(vault, sb):
    import jwt
    from cryptography.hazmat.primitives import serialization

    pt = sb.issue("powertrade")
    assert vault("capture", "powertrade", "pt", input=json.dumps(pt)).code == 0
    r = vault("pubkey", "pt")
    assert r.code == 0
    private = serialization.load_pem_private_key(pt["private_key"].encode(), password=None)
    expected_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert r.out.startswith(expected_pem)
    jwk = json.loads(vault("pubkey", "pt", "--format", "jwk").out)
    assert jwk["crv"] == "P-256" and jwk["kid"] == pt["api_key"] and "d" not in jwk
    token = jwt.encode({"sub": pt["api_key"]}, private, algorithm="ES256")
    public = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(jwk))
    assert jwt.decode(token, public, algorithms=["ES256"])["sub"] == pt["api_key"]
    assert_no_secrets(secret_values("powertrade", pt), r.out, r.err)
    assert vault("capture", "hypersolutions", "h", input=json.dumps(sb.issue("hypersolutions"))).code == 0
    no = vault("pubkey", "h")
    assert no.code == InputError.exit_code and "PowerTrade" in no.err


# --- targets, bundle strength, re-imports, truncation ------------------------------------------------


def test_export_never_replaces_what_is_not_a_plain_file(vault, sb, tmp_path, bundle_pass):
    """--force overwrites by rename: a directory, a device or a symbolic link would be
    swapped for a file of secrets.  Each is one line, FileUnusable's exit code, nothing written or audited."""
    fields = issue(sb, "hypersolutions")
    assert vault("capture", "hypersolutions", "h", input=json.dumps(fields)).code == 0
    directory = tmp_path / "a-dir"
    directory.mkdir()
    real = tmp_path / "real.txt"
    real.write_text("not yours")
    link = tmp_path / "link.env"
    link.symlink_to(real)
    for target in (directory, link, "/dev/null"):
        for args in (["h", "--format", "env", "--output", str(target), "--yes", "--force"],
                     ["--encrypted", str(target), "--force", "--bundle-passphrase-file", str(bundle_pass)]):
            r = vault("export", *args)
            assert r.code == FileUnusable.exit_code, (target, args, r.both)
            assert r.err.count("\n") == 1 and r.err.startswith("keyward: ") and "Traceback" not in r.err
            assert "not a regular file" in r.err or "symbolic link" in r.err
    assert link.is_symlink() and real.read_text() == "not yours" and list(directory.iterdir()) == []
    assert not [e for e in json.loads(vault("audit", "--json").out)["entries"] if e["action"] == "export"]
    assert_no_secrets(secret_values("hypersolutions", fields), root=tmp_path)


def test_a_bundle_is_at_least_as_hard_to_brute_force_as_the_default(vault, sb, tmp_path, bundle_pass):
    """The test vault uses the cheapest Argon2id; the bundle, made to travel, does not."""
    _populate(vault, sb)
    bundle = tmp_path / "strong.kwb"
    r = vault("export", "--encrypted", str(bundle), "pt", "--bundle-passphrase-file", str(bundle_pass))
    assert r.code == 0 and ff.DEFAULT_KDF.describe() in r.out
    kdf = ff.parse(bundle.read_bytes(), expect_magic=ff.MAGIC_BUNDLE).kdf
    assert not kdf.weaker_than(ff.DEFAULT_KDF)
    short = tmp_path / "short"
    short.write_text("1234567\n")
    r = vault("export", "--encrypted", str(tmp_path / "weak.kwb"), "--bundle-passphrase-file", str(short))
    assert r.code == WeakPassphrase.exit_code and "too short" in r.err and not (tmp_path / "weak.kwb").exists()


def test_keep_both_twice_adds_one_copy_not_two(vault, other, sb, tmp_path, bundle_pass):
    accounts = _populate(vault, sb)
    assert other("capture", "kiiex", "kx", input=json.dumps(issue(sb, "kiiex"))).code == 0
    bundle = tmp_path / "twice.kwb"
    assert vault("export", "--encrypted", str(bundle), "kx", "--bundle-passphrase-file", str(bundle_pass)).code == 0
    base = ["import", str(bundle), "--bundle-passphrase-file", str(bundle_pass), "--on-conflict", "keep-both"]
    assert "added kx as kx-2" in other(*base).out
    again = other(*base)
    assert again.code == 0 and "kx is already in the vault as kx-2, unchanged" in again.out
    assert [a["label"] for a in json.loads(other("list", "--json").out)] == ["kx", "kx-2"]
    assert stored(other.vault_path, "kx-2").fields == accounts["kx"][1]


def test_a_truncated_or_foreign_bundle_is_one_line_and_imports_nothing(vault, other, sb, tmp_path, bundle_pass):
    _populate(vault, sb)
    bundle = tmp_path / "whole.kwb"
    assert vault("export", "--encrypted", str(bundle), "--bundle-passphrase-file", str(bundle_pass)).code == 0
    blob = bundle.read_bytes()
    cut = tmp_path / "cut.kwb"
    for size in (8, 20, 60, len(blob) // 2, len(blob) - 1):
        cut.write_bytes(blob[:size])
        r = other("import", str(cut), "--bundle-passphrase-file", str(bundle_pass))
        assert r.code == 14, (size, r.both)
        assert r.err.count("\n") == 1 and "the bundle is damaged or not a bundle" in r.err and "vault file" not in r.err
    assert json.loads(other("list", "--json").out) == []


def test_bundle_passphrase_is_prompted_twice_on_a_terminal(vault, other, sb, tmp_path):
    accounts = _populate(vault, sb)
    bundle = tmp_path / "typed.kwb"
    child = spawn(vault, "export", "--encrypted", str(bundle), "kx")
    for _ in range(3):  # asked again after a mistyped repeat, three tries in all
        child.expect("Passphrase for the bundle: ")
        child.sendline("typed granite bundle passphrase")
        child.expect(r"Passphrase for the bundle \(again\): ")
        child.sendline("typed granite bundle passphrase, mistyped")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == NotConfirmed.exit_code and "the two passphrases differ" in child.before
    assert not bundle.exists()
    child = spawn(vault, "export", "--encrypted", str(bundle), "kx")
    child.expect("Passphrase for the bundle: ")
    child.sendline("typed granite bundle passphrase")
    child.expect(r"\(again\): ")
    child.sendline("typed granite bundle passphrase")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "exported 1 account to" in child.before
    assert "typed granite bundle passphrase" not in child.before  # not echoed
    child = spawn(other, "import", str(bundle))
    child.expect("Bundle passphrase: ")
    child.sendline("typed granite bundle passphrase")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "imported 1 of 1" in child.before
    assert stored(other.vault_path, "kx").fields == accounts["kx"][1]


def test_a_bundle_carries_chosen_settings_only_and_checks_them(vault, other, sb, tmp_path, bundle_pass):
    """Settings travel (a key-age maximum, a health path) but the exporting machine's
    state does not (a recorded failed Kiiex login would stop keyward logging in on the
    other side), and a crafted setting is refused before anything is imported."""
    from vault.ops import bundle as bundle_mod
    from vault.core.service import VaultService

    from .conftest import SMALL_KDF

    kx = issue(sb, "kiiex")
    assert vault("capture", "kiiex", "kx", "--base-url", sb.base_url("kiiex"), input=json.dumps(kx)).code == 0
    assert vault("key-age", "kx", "--max-days", "30").code == 0
    service = VaultService.unlock(vault.vault_path, PASSPHRASE)
    service.update_account("kx", lambda a: a.settings.update({"login_failed_at": 1.0, "login_failure": "Locked",
                                                               "oms_id": 7}))
    path = tmp_path / "settings.kwb"
    assert vault("export", "--encrypted", str(path), "--bundle-passphrase-file", str(bundle_pass)).code == 0
    assert other("import", str(path), "--bundle-passphrase-file", str(bundle_pass)).code == 0
    moved = stored(other.vault_path, "kx")
    assert moved.settings == {"key_max_age_days": 30, "oms_id": 7}
    assert other("check", "kx").code == 0  # not blocked by the other machine's failed login

    crafted = service.get("kx")
    crafted.settings = {"health_path": "@evil.example/steal"}
    passphrase = bundle_pass.read_text().strip()
    payload = {"bundle": 1, "created_at": 0, "accounts": [bundle_mod._moved(crafted) | {"label": "evil"}]}
    payload["accounts"][0]["settings"] = {"health_path": "@evil.example/steal"}
    blob = ff.encrypt_new(json.dumps(payload).encode(), passphrase, SMALL_KDF, magic=ff.MAGIC_BUNDLE)[2]
    path.write_bytes(blob)
    r = other("import", str(path), "--bundle-passphrase-file", str(bundle_pass))
    assert r.code == 14 and "invalid setting 'health_path'" in r.err and r.err.count("\n") == 1
    assert other.vault_path.exists() and VaultService.unlock(other.vault_path, PASSPHRASE).data.find("evil") is None


def test_a_bundle_asking_for_gigabytes_is_refused_before_any_kdf(monkeypatch):
    """A crafted bundle chooses the memory import spends before the passphrase is checked:
    above the bundle ceiling it is refused unopened."""
    import hashlib
    import struct

    import pytest as _pytest

    from vault.ops import bundle
    from vault.core import fileformat as ff
    from vault.core.errors import UnsafeKdfParameters

    assert bundle.bundle_kdf(ff.KdfParams(3, 4 * 1024 * 1024, 4)).memory_kib == bundle.BUNDLE_MEMORY_CEILING_KIB
    payload = b'{"bundle": 1, "created_at": 0, "accounts": []}'
    blob = bytearray(ff.encrypt_new(payload, "bundle passphrase", ff.KdfParams(1, 8192, 1), magic=ff.MAGIC_BUNDLE)[2])
    struct.pack_into(">I", blob, 14, 2 * 1024 * 1024)  # 2 GiB: within a vault's range, not a bundle's
    body = bytes(blob[:-32])
    crafted = body + hashlib.sha256(body).digest()

    def must_not_run(*a, **k):
        raise AssertionError("the KDF ran")

    monkeypatch.setattr("vault.core.fileformat.derive_kek", must_not_run)
    with _pytest.raises(UnsafeKdfParameters, match="2048 MiB"):
        bundle.open_bundle(crafted, "bundle passphrase")
