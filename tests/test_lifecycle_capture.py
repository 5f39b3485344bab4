"""Capturing one-time secrets at the source: `register` over real loopback HTTP, `capture`
from each venue's format (file, stdin, a hidden paste on a real pty), paste accidents
repaired or refused, `--shred-source`; and nothing secret in any output or file."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pexpect
import pytest

from vault.ops import capture
from vault.core.errors import EmptyInput, FileUnusable, InputError, InvalidCredential
from vault.venues import get_provider, secret_names
from vault.core.service import VaultService

from .conftest import PASSPHRASE, REPO


# --- helpers shared with the other lifecycle tests ------------------------------------------


def secret_values(venue: str, fields: dict[str, str]) -> list[str]:
    """Every secret value of a credential set, PEM bodies line by line too (a leak of one
    line of a private key is a leak)."""
    names = secret_names(get_provider(venue))
    out = []
    for name, value in fields.items():
        if name not in names:
            continue
        out.append(value.strip())
        if "-----BEGIN" in value:
            out += [line for line in value.strip().splitlines()[1:-1] if len(line) >= 16]
    return out


def canonical(venue: str, issued: dict) -> dict[str, str]:
    """Sandbox issuance -> the canonical field names the vault stores."""
    if venue == "kiiex":
        return {"api_key": issued["APIKey"], "api_secret": issued["APISecret"], "nonce": issued["Nonce"],
                "user_id": issued["UserId"], "username": issued["UserName"]}
    if venue == "tradeready":
        keep = ("api_key", "api_secret", "account_id", "agent_id", "agent_api_key")
        return {k: issued[k] for k in keep if k in issued}
    return dict(issued)


def assert_no_secrets(secrets: list[str], *outputs: str, root: Path | None = None, allow: tuple[Path, ...] = ()) -> int:
    """No secret in any output, nor in any file under `root` except those in `allow`
    (explicit plaintext exports, the files the test itself wrote).  Returns files scanned."""
    assert secrets and all(len(s) >= 8 for s in secrets), "the test must know real secrets"
    for text in outputs:
        for s in secrets:
            assert s not in text, "a secret leaked into command output"
    scanned = 0
    if root is not None:
        allowed = {p.resolve() for p in allow}
        for path in root.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            if path.resolve() in allowed or any(a in path.resolve().parents for a in allowed):
                continue
            data = path.read_bytes()
            scanned += 1
            for s in secrets:
                assert s.encode() not in data, f"a secret leaked into {path}"
    return scanned


def stored(vault_path: Path, label: str):
    return VaultService.unlock(vault_path, PASSPHRASE).get(label)


def ec_pem(curve=None, *, sec1: bool = False) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(curve or ec.SECP256R1())
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if sec1 else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def public_pem(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    return d


# --- register -----------------------------------------------------------------------------


def test_register_stores_the_one_time_secret_without_printing_it(vault, sb, tmp_path):
    r = vault("register", "tradeready", "bot", "--display-name", "Bot One", "--email", "bot1@example.com",
              "--base-url", sb.base_url("tradeready"))
    assert r.code == 0, r.err
    assert "registered bot" in r.out and "not shown" in r.out
    acct = stored(vault.vault_path, "bot")
    assert acct.fields["api_key"].startswith("ak_live_") and acct.fields["api_secret"].startswith("sk_live_")
    assert acct.fields["agent_api_key"].startswith("ak_live_") and acct.fields["agent_id"]
    # The stored secret is the real one: the venue logs it in, over loopback HTTP.
    import httpx

    login = httpx.post(sb.base_url("tradeready") + "/api/v1/auth/login",
                       json={"api_key": acct.fields["api_key"], "api_secret": acct.fields["api_secret"]})
    assert login.status_code == 200
    check = vault("check", "bot")
    assert check.code == 0, check.both
    audit = vault("audit", "bot", "--json")
    assert [e["action"] for e in json.loads(audit.out)["entries"]][:1] == ["register"]
    secrets = secret_values("tradeready", acct.fields)
    assert assert_no_secrets(secrets, r.out, r.err, check.both, audit.both, root=tmp_path) >= 2


def test_register_refuses_a_taken_label_before_calling_the_venue(vault, sb, tmp_path):
    (tmp_path / "src.json").write_text(json.dumps(sb.issue("tradeready", display_name="x")))
    assert vault("import", str(tmp_path / "src.json"), "--label", "bot").code == 0
    r = vault("register", "tradeready", "bot", "--display-name", "Dup", "--email", "dup-check@example.com",
              "--base-url", sb.base_url("tradeready"))
    assert r.code == 23 and "already exists" in r.err
    # Had it reached the venue, this email would now be taken.
    again = vault("register", "tradeready", "bot2", "--display-name", "Dup", "--email", "dup-check@example.com",
                  "--base-url", sb.base_url("tradeready"))
    assert again.code == 0, again.err


def test_register_venue_errors_are_one_line_and_change_nothing(vault, sb):
    r1 = vault("register", "tradeready", "a1", "--display-name", "A", "--email", "same@example.com",
               "--base-url", sb.base_url("tradeready"))
    assert r1.code == 0
    r2 = vault("register", "tradeready", "a2", "--display-name", "A", "--email", "same@example.com",
               "--base-url", sb.base_url("tradeready"))
    assert r2.code != 0 and "Traceback" not in r2.err
    assert [x for x in r2.err.splitlines() if x.startswith("keyward:")] and "email" in r2.err
    assert [a["label"] for a in json.loads(vault("list", "--json").out)] == ["a1"]
    r3 = vault("register", "powertrade", "p", "--display-name", "P")
    assert r3.code == InputError.exit_code and "capture powertrade" in r3.err


def test_register_whose_answer_is_lost_says_the_account_exists(vault, sb):
    """The venue said 201 (the account exists now) but the body is unreadable: the keys
    are gone for good, so "retry" would be the wrong advice.  One line, recorded."""
    sb.configure(malformed_json=True)
    try:
        r = vault("register", "tradeready", "lost", "--display-name", "Lost", "--base-url", sb.base_url("tradeready"))
    finally:
        sb.configure(malformed_json=False)
    assert r.code == 30 and r.out == ""
    assert r.err.count("\n") == 1 and "HTTP 201 (account created)" in r.err and "support" in r.err
    assert json.loads(vault("list", "--json").out) == []
    entries = json.loads(vault("audit", "--json").out)["entries"]
    assert [(e["action"], e["account"], e["outcome"]) for e in entries] == [("register", "lost", "failed")]


# --- capture from each venue's format ---------------------------------------------------------


def _material(venue: str, issued: dict) -> str:
    """What the venue's one-time screen gives, in the shape a user would paste or save."""
    if venue == "tradeready":
        return json.dumps(issued, indent=2)  # the registration response
    if venue == "kiiex":
        return json.dumps(issued)  # "Export to JSON"
    if venue == "powertrade":
        return f"API Key: {issued['api_key']}\nPrivate Key:\n{issued['private_key']}"  # key + PEM
    return f"API Key\n{issued['api_key']}\nJWT Key\n{issued['jwt_key']}\n"  # key + JWT key, as the page lays them out


@pytest.mark.parametrize("venue,via", [("tradeready", "file"), ("kiiex", "stdin"), ("powertrade", "stdin"),
                                       ("hypersolutions", "file")])
def test_capture_each_venue_format_and_the_credentials_work(vault, sb, src, tmp_path, venue, via):
    params = {"display_name": "Cap"} if venue == "tradeready" else {}
    issued = sb.issue(venue, **params)
    text = _material(venue, issued)
    args = ["capture", venue, "acct", "--base-url", sb.base_url(venue)]
    if via == "file":
        (src / "paste.txt").write_text(text)
        r = vault(*args, "--file", str(src / "paste.txt"))
    else:
        r = vault(*args, input=text)
    assert r.code == 0, r.err
    assert r.out.startswith("captured acct")
    assert stored(vault.vault_path, "acct").fields == canonical(venue, issued)
    check = vault("check", "acct")  # real HTTP to the sandbox with what was stored
    assert check.code == 0, check.both
    secrets = secret_values(venue, canonical(venue, issued))
    assert_no_secrets(secrets, r.out, r.err, check.both, root=tmp_path, allow=(src,))


def test_stdin_takes_canonical_json(vault, sb):
    issued = sb.issue("hypersolutions", organization=True)
    r = vault("capture", "hypersolutions", "org", "--base-url", sb.base_url("hypersolutions"), input=json.dumps(issued))
    assert r.code == 0, r.err
    assert stored(vault.vault_path, "org").fields == issued
    assert vault("check", "org").code == 0


def test_paste_accidents_are_repaired_and_reported(vault, sb, tmp_path):
    pt = sb.issue("powertrade")
    body = "\n".join(pt["private_key"].strip().splitlines()[1:-1])
    # Trailing spaces after the key, a PEM that lost its BEGIN/END lines, a BOM, CRLFs.
    text = "\ufeff" + f"{pt['api_key']}   \r\n{body}\r\n"
    r = vault("capture", "powertrade", "pt", "--base-url", sb.base_url("powertrade"), input=text)
    assert r.code == 0, r.err
    assert "repaired: api_key: removed trailing whitespace" in r.out
    assert "repaired: private_key: restored the missing PEM BEGIN/END lines" in r.out
    assert "invisible characters" in r.out
    assert stored(vault.vault_path, "pt").fields == pt
    assert vault("check", "pt").code == 0

    kx = sb.issue("kiiex")
    noisy = dict(kx, APISecret=kx["APISecret"] + "\n", APIKey="  " + kx["APIKey"])
    r = vault("capture", "kiiex", "kx", "--base-url", sb.base_url("kiiex"), input=json.dumps(noisy))
    assert r.code == 0, r.err
    assert "repaired: api_secret: removed a trailing newline" in r.out
    assert "repaired: api_key: removed surrounding whitespace" in r.out
    assert stored(vault.vault_path, "kx").fields == canonical("kiiex", kx)
    assert_no_secrets(secret_values("powertrade", pt) + secret_values("kiiex", canonical("kiiex", kx)),
                      r.out, r.err, root=tmp_path)


def test_paste_accidents_that_cannot_be_repaired_are_refused(vault, sb, tmp_path):
    good = ec_pem()
    tr = sb.issue("tradeready", display_name="T")
    cases = [
        ("powertrade", f"API key: k-1\n{public_pem(good)}", 20, "public key, not the private key"),
        ("powertrade", f"API key: k-1\n{ec_pem(__import__('cryptography.hazmat.primitives.asymmetric.ec', fromlist=['ec']).SECP384R1())}",
         20, "not P-256"),
        ("kiiex", json.dumps(tr), 20, "TradeReady credentials, not Kiiex"),
        ("tradeready", json.dumps({"api_key": tr["api_secret"], "api_secret": tr["api_key"]}), 20, "swapped"),
        ("hypersolutions", "API key: abcdef0123456789\nJWT key: eyJhbGciOiJIUzI1NiJ9.eyJrZXkiOiJ4In0.c2ln", 20,
         "signed token"),
        ("tradeready", "API key: ak_l\u2026\nAPI secret: sk_live_0123456789abcdef", 20, "masked value"),
        ("powertrade", f"k-1\n-----BEGIN PRIVATE KEY-----\n{good.splitlines()[1]}\n", 20, "no matching END"),
        ("kiiex", "", EmptyInput.exit_code, "nothing to capture"),
    ]
    for venue, text, code, needle in cases:
        r = vault("capture", venue, "x", input=text)
        assert r.code == code, (venue, needle, r.err)
        lines = [x for x in r.err.splitlines() if x.startswith("keyward:")]
        assert len(lines) == 1 and needle in lines[0], (needle, r.err)
        assert "Traceback" not in r.err
    assert json.loads(vault("list", "--json").out) == []
    assert_no_secrets([tr["api_secret"], tr["api_key"]] + secret_values("powertrade", {"private_key": good}),
                      root=tmp_path)


def test_capture_refuses_a_taken_label_and_keeps_the_first(vault, sb):
    a, b = sb.issue("hypersolutions"), sb.issue("hypersolutions")
    assert vault("capture", "hypersolutions", "h", input=json.dumps(a)).code == 0
    r = vault("capture", "hypersolutions", "h", input=json.dumps(b))
    assert r.code == 23 and "rotate" in r.err
    assert stored(vault.vault_path, "h").fields == a


# --- --shred-source -------------------------------------------------------------------------


def test_shred_source_overwrites_then_deletes_after_the_save(vault, sb, src, tmp_path):
    issued = sb.issue("kiiex")
    path = src / "kiiex-export.json"
    path.write_text(json.dumps(issued))
    size = path.stat().st_size
    os.link(path, src / "second-name")  # a hard link sees the overwrite: proof it was not only unlinked
    r = vault("capture", "kiiex", "kx", "--file", str(path), "--shred-source", "--base-url", sb.base_url("kiiex"))
    assert r.code == 0, r.err
    assert not path.exists() and f"shredded {path}" in r.out
    leftover = (src / "second-name").read_bytes()
    assert len(leftover) == size and leftover != json.dumps(issued).encode()
    assert stored(vault.vault_path, "kx").fields == canonical("kiiex", issued)
    assert_no_secrets(secret_values("kiiex", canonical("kiiex", issued)), r.out, r.err, root=tmp_path)


def test_shred_source_refuses_what_it_cannot_shred_before_saving(vault, sb, src):
    issued = sb.issue("hypersolutions")
    real = src / "real.json"
    real.write_text(json.dumps(issued))
    (src / "link.json").symlink_to(real)
    r = vault("capture", "hypersolutions", "h", "--file", str(src / "link.json"), "--shred-source")
    assert r.code == FileUnusable.exit_code and "symbolic link" in r.err
    r = vault("capture", "hypersolutions", "h", "--shred-source", input=json.dumps(issued))
    assert r.code == 2 and "--shred-source needs --file" in r.err
    assert json.loads(vault("list", "--json").out) == [] and real.exists()


def test_failed_validation_does_not_shred(vault, src):
    path = src / "bad.txt"
    path.write_text("API key: k-1\n" + public_pem(ec_pem()))
    r = vault("capture", "powertrade", "p", "--file", str(path), "--shred-source")
    assert r.code == 20 and path.exists()


# --- a hidden paste on a real terminal ----------------------------------------------------------


def test_paste_on_a_terminal_is_not_echoed(vault, sb):
    issued = sb.issue("powertrade")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {"PYTHONPATH": str(REPO)}
    child = pexpect.spawn(sys.executable, ["-m", "vault", "--vault", str(vault.vault_path), "--passphrase-file",
                                           str(vault.passphrase_file), "capture", "powertrade", "pt", "--base-url",
                                           sb.base_url("powertrade")], env=env, encoding="utf-8", timeout=30)
    child.expect("input is hidden")
    child.sendline(f"API key: {issued['api_key']}")
    for line in issued["private_key"].strip().splitlines():
        child.sendline(line)
    child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    transcript = child.before
    assert "captured pt" in transcript and "not shown" in transcript
    assert_no_secrets(secret_values("powertrade", issued) + [issued["api_key"]], transcript)
    assert stored(vault.vault_path, "pt").fields == issued


def test_a_wrong_paste_on_a_terminal_can_be_pasted_again(vault, sb):
    issued = sb.issue("hypersolutions")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {"PYTHONPATH": str(REPO)}
    child = pexpect.spawn(sys.executable, ["-m", "vault", "--vault", str(vault.vault_path), "--passphrase-file",
                                           str(vault.passphrase_file), "capture", "hypersolutions", "h"],
                          env=env, encoding="utf-8", timeout=30)
    child.expect("input is hidden")
    child.sendline(f"{issued['api_key']}\neyJhbGciOiJIUzI1NiJ9.eyJrZXkiOiJ4In0.c2ln\n")
    child.expect(r"try 1 of 3; paste again")
    child.expect("input is hidden")
    child.sendline(f"{issued['api_key']}\n{issued['jwt_key']}\n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert issued["jwt_key"] not in child.before
    assert stored(vault.vault_path, "h").fields == issued


def _spawn_capture(vault, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {"PYTHONPATH": str(REPO)}
    return pexpect.spawn(sys.executable, ["-m", "vault", "--vault", str(vault.vault_path), "--passphrase-file",
                                          str(vault.passphrase_file), "capture", *args], env=env, encoding="utf-8",
                         timeout=30)


def test_a_paste_with_empty_lines_inside_is_read_whole(vault, sb):
    """A one-time screen copied off a web page has empty lines between its sections: the
    paste (one burst) must not end at the first of them, nor lose the rest."""
    issued = sb.issue("powertrade")
    page = f"API Key\n\n{issued['api_key']}\n\nPrivate Key\n\n{issued['private_key']}\n"
    child = _spawn_capture(vault, "powertrade", "pt", "--base-url", sb.base_url("powertrade"))
    child.expect("input is hidden")
    child.send(page.replace("\n", "\r"))  # one write, as a terminal delivers a paste
    child.send("\r")  # then Enter on an empty line
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "try 1 of 3" not in child.before and "captured pt" in child.before
    assert stored(vault.vault_path, "pt").fields == issued
    assert_no_secrets(secret_values("powertrade", issued), child.before)


def test_a_paste_is_held_to_its_limit_once_not_twice(vault):
    """The paste limit (vault.core.inputs.MAX_INPUT_BYTES, 1 MiB) counts each byte once:
    600 KB of pasted page text is read and then judged as credentials (each byte was
    counted twice, so a paste over half the limit was refused as too large)."""
    child = _spawn_capture(vault, "hypersolutions", "h")
    child.expect("input is hidden")
    child.send(("page text " * 9 + "\r") * 6_000)  # 600,000 bytes in 100-byte lines
    time.sleep(0.5)
    child.sendeof()
    found = child.expect([r"read 6000 lines, not shown", "too large", pexpect.EOF])
    child.terminate(force=True)
    assert found == 0, child.before[-300:]


def test_an_open_pem_keeps_the_paste_going_and_says_so(vault, sb):
    """Enter on an empty line in the middle of a PEM (typed, or a paste in two goes) is not
    the end: keyward says what is missing and waits for the rest."""
    issued = sb.issue("powertrade")
    lines = issued["private_key"].strip().splitlines()
    child = _spawn_capture(vault, "powertrade", "pt", "--base-url", sb.base_url("powertrade"))
    child.expect("input is hidden")
    child.send(f"API key: {issued['api_key']}\r{lines[0]}\r{lines[1]}\r")
    time.sleep(1.0)  # well past the paste grace period: a person pressing Enter
    child.send("\r")
    child.expect(r"the PEM block has no END line yet: paste the rest, or press Ctrl-D")
    child.send("\r".join(lines[2:]) + "\r")
    time.sleep(1.0)
    child.send("\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert stored(vault.vault_path, "pt").fields == issued
    assert_no_secrets(secret_values("powertrade", issued), child.before)


def test_a_paste_ended_with_ctrl_d(vault, sb):
    issued = sb.issue("hypersolutions")
    child = _spawn_capture(vault, "hypersolutions", "h")
    child.expect("input is hidden")
    child.send(f"{issued['api_key']}\r{issued['jwt_key']}\r")
    time.sleep(0.5)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert stored(vault.vault_path, "h").fields == issued


def test_unfinished_structures():
    pem = ec_pem()
    head = "\n".join(pem.splitlines()[:2])
    assert capture.unfinished(f"API key: k\n{head}\n") == "the PEM block has no END line yet"
    assert capture.unfinished(f"API key: k\n{pem}") is None
    assert capture.unfinished('{"api_key": "a{b",\n') == "the JSON object is not closed yet"
    assert capture.unfinished('{"api_key": "a}b\\"}",\n') == "the JSON object is not closed yet"
    assert capture.unfinished('{"api_key": "a}b"}') is None
    assert capture.unfinished("\ufeff{\u201capi_key\u201d: \u201cx\u201d") == "the JSON object is not closed yet"
    assert capture.unfinished("API key: k") is None


# --- the parser, in-process ---------------------------------------------------------------------


def test_parser_layouts():
    pem = ec_pem()
    cases = [
        # label and value on one line, PEM first
        (f"{pem}\nAPI key: k-1", "powertrade", {"api_key": "k-1"}),
        # JSON with literal \n escapes in the PEM (a PEM pasted out of a .env)
        (json.dumps({"api_key": "k-1", "private_key": pem.replace("\n", "\\n")}).replace("\\\\n", "\\n"), "powertrade",
         {"api_key": "k-1"}),
        # quoted values with trailing commas (lines copied out of JSON)
        ('"api_key": "abcdef0123456789",\n"jwt_key": "JWTKEY-0123456789",', "hypersolutions",
         {"api_key": "abcdef0123456789", "jwt_key": "JWTKEY-0123456789"}),
        # organisation keys with their labels
        ("x-api-key: abcdef0123456789\nApp key: app_1\nApp secret: APPSECRET-0123", "hypersolutions",
         {"api_key": "abcdef0123456789", "app_key": "app_1", "app_secret": "APPSECRET-0123"}),
        # typographic quotes from a chat client
        ("\u201capi_key\u201d: \u201cabcdef0123456789\u201d}".join(["{", ""]), "hypersolutions",
         {"api_key": "abcdef0123456789"}),
    ]
    for text, venue, expected in cases:
        got = capture.parse(text, venue)
        for k, v in expected.items():
            assert got.fields[k] == v, (text[:30], k)
    sec1 = capture.parse(f"k-1\n{ec_pem(sec1=True)}", "powertrade")
    assert sec1.fields["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert any("SEC1" in r for r in sec1.repairs)


def test_parser_errors_never_quote_values():
    secret = "SUPERSECRETVALUE-0123456789"
    for text, venue in [
        (f"Secret Sauce: {secret}", "kiiex"),
        (f"{{\"api_key\": \"{secret}\", \"bogus\": \"{secret}\"}}", "hypersolutions"),
        (f"{{\"api_key\": \"{secret}\"", "hypersolutions"),  # invalid JSON
        (f"a {secret}\nb\nc\nd\ne", "hypersolutions"),
        (f"{secret}\n{secret}", "hypersolutions"),
    ]:
        with pytest.raises((InputError, InvalidCredential)) as info:
            capture.parse(text, venue)
        assert secret not in str(info.value) and secret not in repr(info.value)
