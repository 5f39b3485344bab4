"""Vault format v2 (issue 11): key commitment, the header MAC, the KDF cost budget,
reading v1 and writing v2, a passwd that rotates the data key, and the spec's answers.

Everything v2 is recomputed here from docs/vault-format.md's definitions with hashlib
and hmac, not from vault.core.fileformat's helpers, so the code and the spec are held
to each other."""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import math
import os
import re
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vault.core import audit
from vault.core import fileformat as ff
from vault.core.errors import CorruptVault, KdfCostRefused, WrongPassphrase
from vault.core.model import Account, AuditEntry, VaultData
from vault.core.service import VaultService, encode_payload

from .conftest import PASSPHRASE, REPO, SMALL_KDF

VECTORS = Path(__file__).parent / "vectors"
DOC = REPO / "docs" / "vault-format.md"
VECTOR_PASSPHRASE = "keyward test vector"


def reference_decoder():
    """The decoder printed in docs/vault-format.md, executed as written."""
    section = DOC.read_text().split("## Reference decoder", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "vault-format.md", "exec"), scope)
    return scope["decrypt_vault"], code


def hkdf(ikm: bytes, info: bytes) -> bytes:
    prk = hmac.new(bytes(32), ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def argon2(passphrase: str, salt: bytes, t: int = 1, m: int = 8192, p: int = 1) -> bytes:
    from argon2.low_level import Type, hash_secret_raw

    return hash_secret_raw(passphrase.encode(), salt, time_cost=t, memory_cost=m, parallelism=p, hash_len=32,
                           type=Type.ID, version=19)


def kiiex(label: str) -> Account:
    return Account(label, "kiiex", "https://alphaprod.proxy.kiiex.io/ap",
                   {"api_key": "k-" + label, "api_secret": "s-" + label, "nonce": "n", "user_id": "1"})


# --- the vectors and the in-doc decoder ---------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_each_vector_decodes_with_the_in_doc_decoder(version):
    decode, _ = reference_decoder()
    blob = (VECTORS / f"vector-v{version}.kw").read_bytes()
    assert blob[8] == version
    assert decode(blob, VECTOR_PASSPHRASE) == json.loads((VECTORS / f"vector-v{version}.json").read_text())


def test_the_in_doc_decoder_checks_without_assert():
    """`python -O` strips assert statements: a check written as one would vanish."""
    decode, code = reference_decoder()
    assert not [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Assert)]
    blob = bytearray((VECTORS / "vector-v2.kw").read_bytes())
    with pytest.raises(Exception):
        decode(bytes(blob), "not the passphrase")
    blob[-1] ^= 1
    with pytest.raises(Exception):
        decode(bytes(blob), VECTOR_PASSPHRASE)


def test_the_doc_states_the_decoder_length_the_readme_repeats():
    decode, code = reference_decoder()
    lines = len([line for line in code.splitlines() if line.strip()])
    doc, readme = DOC.read_text(), (REPO / "README.md").read_text()
    claimed = {int(n) for n in re.findall(r"(\d+)-line reference decoder", doc + readme)}
    assert claimed == {lines}, (claimed, lines)


@pytest.mark.parametrize("version", [1, 2])
def test_keyward_opens_each_vector(tmp_path, version):
    path = tmp_path / "vault.kw"
    path.write_bytes((VECTORS / f"vector-v{version}.kw").read_bytes())
    service = VaultService.unlock(path, VECTOR_PASSPHRASE)
    got, expected = json.loads(encode_payload(service.data)), json.loads((VECTORS / f"vector-v{version}.json").read_text())
    # (a newer keyward may add settings with defaults: the vector's own content must be there)
    assert got["accounts"] == expected["accounts"] and got["audit"] == expected["audit"]
    assert got["settings"].items() >= expected["settings"].items()


def test_v2_layout_is_the_documented_one_byte_for_byte():
    blob = ff.encrypt_new(encode_payload(VaultData(accounts=[kiiex("a")])), PASSPHRASE, SMALL_KDF)[2]
    assert blob[:10] == b"KWVAULT\x00\x02\x01"
    t, m, p = struct.unpack_from(">III", blob, 10)
    salt = blob[22:38]
    kek = argon2(PASSPHRASE, salt, t, m, p)
    assert hmac.new(hkdf(kek, b"keyward v2 kek commitment"), blob[:38], hashlib.sha256).digest() == blob[38:70]
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data_key = AESGCM(hkdf(kek, b"keyward v2 key wrap")).decrypt(blob[70:82], blob[82:130], blob[:82])
    assert struct.unpack_from(">Q", blob, 130)[0] == 1
    assert hmac.new(hkdf(data_key, b"keyward v2 header mac"), blob[:150], hashlib.sha256).digest() == blob[150:182]
    plain = AESGCM(hkdf(data_key, b"keyward v2 payload")).decrypt(blob[138:150], blob[182:-32], blob[:182])
    assert json.loads(plain)["accounts"][0]["label"] == "a"
    assert hashlib.sha256(blob[:-32]).digest() == blob[-32:]


# --- v1 in, v2 out ---------------------------------------------------------------------------------


def test_a_v1_vault_opens_and_is_rewritten_as_v2_saying_so_once(tmp_path):
    path = tmp_path / "vault.kw"
    path.write_bytes((VECTORS / "vector-v1.kw").read_bytes())
    said: list[str] = []
    service = VaultService.unlock(path, VECTOR_PASSPHRASE, notify=said.append)
    assert path.read_bytes()[8] == 1 and said == []  # opening alone writes nothing
    service.add_account(kiiex("new"))
    assert path.read_bytes()[8] == 2
    assert len(said) == 1 and "v2" in said[0] and "vault.kw" in said[0]
    service.add_account(kiiex("newer"))
    assert len(said) == 1  # once
    decode, _ = reference_decoder()
    labels = [a["label"] for a in decode(path.read_bytes(), VECTOR_PASSPHRASE)["accounts"]]
    assert labels[-2:] == ["new", "newer"] and len(labels) == 6
    assert path.with_name("vault.kw.bak").read_bytes()[8] == 2  # the previous save, v2 already
    assert VaultService.unlock(path, VECTOR_PASSPHRASE).generation == service.generation


def test_the_cli_says_once_that_it_rewrote_a_v1_vault(kw, tmp_path):
    kw.vault_path.parent.mkdir(mode=0o700)
    kw.vault_path.write_bytes((VECTORS / "vector-v1.kw").read_bytes())
    kw.vault_path.chmod(0o600)
    kw.passphrase_file.write_text(VECTOR_PASSPHRASE + "\n")
    first = kw("remove", "kiiex-1", "--yes")
    assert first.code == 0, first.both
    assert first.err.count("vault format v2") == 1
    assert kw.vault_path.read_bytes()[8] == 2
    second = kw("remove", "hyper", "--yes")
    assert second.code == 0 and "format" not in second.err


# --- key commitment ------------------------------------------------------------------------------


_R = 0xE1 << 120


def _gf_mul(x: int, y: int) -> int:
    """Multiplication in GCM's GF(2^128) (NIST SP 800-38D, bit-reflected)."""
    z, v = 0, x
    for i in range(127, -1, -1):
        if (y >> i) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def _gf_inv(x: int) -> int:
    result, base, e = 1 << 127, x, (1 << 128) - 2
    while e:
        if e & 1:
            result = _gf_mul(result, base)
        base = _gf_mul(base, base)
        e >>= 1
    return result


def _ghash(h: int, aad: bytes, ct: bytes) -> int:
    def blocks(b: bytes):
        b = b + bytes(-len(b) % 16)
        return [int.from_bytes(b[i : i + 16], "big") for i in range(0, len(b), 16)]

    x = 0
    for block in blocks(aad) + blocks(ct) + [(len(aad) * 8) << 64 | len(ct) * 8]:
        x = _gf_mul(x ^ block, h)
    return x


def _ecb(key: bytes, block: bytes) -> int:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return int.from_bytes(enc.update(block) + enc.finalize(), "big")


def two_key_wrap(k1: bytes, k2: bytes, nonce: bytes, aad: bytes) -> bytes:
    """A 32-byte AES-GCM ciphertext and tag that authenticate under both k1 and k2
    (Len, Grubbs and Ristenpart's partitioning-oracle construction): GCM's tag is
    linear in each ciphertext block, so one block solves T(k1) = T(k2)."""
    h1, h2 = _ecb(k1, bytes(16)), _ecb(k2, bytes(16))
    j0 = nonce + b"\x00\x00\x00\x01"
    e1, e2 = _ecb(k1, j0), _ecb(k2, j0)
    c1 = os.urandom(16)
    g1, g2 = _ghash(h1, aad, c1 + bytes(16)), _ghash(h2, aad, c1 + bytes(16))
    c2 = _gf_mul(g1 ^ g2 ^ e1 ^ e2, _gf_inv(_gf_mul(h1, h1) ^ _gf_mul(h2, h2)))
    ct = c1 + c2.to_bytes(16, "big")
    tag = _ghash(h1, aad, ct) ^ e1
    return ct + tag.to_bytes(16, "big")


def crafted(version: int, first: str, second: str) -> bytes:
    """A vault file whose key wrap authenticates under both passphrases' keys; its payload
    is sealed under the data key the first one unwraps."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, wrap_nonce, payload_nonce = os.urandom(16), os.urandom(12), os.urandom(12)
    kek1, kek2 = argon2(first, salt), argon2(second, salt)
    cost = b"KWVAULT\x00" + bytes([version, 1]) + struct.pack(">III", 1, 8192, 1) + salt
    plaintext = encode_payload(VaultData(accounts=[kiiex("a")]))
    if version == 1:
        aad = cost + wrap_nonce
        wrapped = two_key_wrap(kek1, kek2, wrap_nonce, aad)
        data_key = AESGCM(kek1).decrypt(wrap_nonce, wrapped, aad)
        head = aad + wrapped + struct.pack(">Q", 1) + payload_nonce
        body = head + AESGCM(data_key).encrypt(payload_nonce, plaintext, head)
    else:
        commitment = hmac.new(hkdf(kek1, b"keyward v2 kek commitment"), cost, hashlib.sha256).digest()
        aad = cost + commitment + wrap_nonce
        w1, w2 = hkdf(kek1, b"keyward v2 key wrap"), hkdf(kek2, b"keyward v2 key wrap")
        wrapped = two_key_wrap(w1, w2, wrap_nonce, aad)
        assert AESGCM(w2).decrypt(wrap_nonce, wrapped, aad)  # the wrap alone opens under both
        data_key = AESGCM(w1).decrypt(wrap_nonce, wrapped, aad)
        head = aad + wrapped + struct.pack(">Q", 1) + payload_nonce
        head += hmac.new(hkdf(data_key, b"keyward v2 header mac"), head, hashlib.sha256).digest()
        body = head + AESGCM(hkdf(data_key, b"keyward v2 payload")).encrypt(payload_nonce, plaintext, head)
    return body + hashlib.sha256(body).digest()


@pytest.mark.parametrize("version", [1, 2])
def test_a_file_crafted_to_open_under_two_passphrases_opens_under_one(kw, version):
    """The second passphrase must get exactly what any wrong passphrase gets: the same
    error, code and line (13 vs 14 would tell a crafted file's author which it was)."""
    blob = crafted(version, PASSPHRASE, "the other passphrase")
    with pytest.raises(WrongPassphrase) as second:
        ff.decrypt(blob, "the other passphrase")
    with pytest.raises(WrongPassphrase) as random_wrong:
        ff.decrypt(blob, "any wrong passphrase")
    assert str(second.value) == str(random_wrong.value)
    assert [a["label"] for a in json.loads(ff.decrypt(blob, PASSPHRASE)[2])["accounts"]] == ["a"]

    kw.vault_path.parent.mkdir(mode=0o700)
    kw.vault_path.write_bytes(blob)
    kw.vault_path.chmod(0o600)
    other, wrong = kw.passphrase_file.with_name("other"), kw.passphrase_file.with_name("wrong")
    other.write_text("the other passphrase\n")
    wrong.write_text("any wrong passphrase\n")
    a = kw("--passphrase-file", str(other), "list", passphrase=False)
    b = kw("--passphrase-file", str(wrong), "list", passphrase=False)
    assert (a.code, a.err) == (b.code, b.err) == (13, b.err)


# --- the KDF cost budget -------------------------------------------------------------------------------


RSS_PROBE = textwrap.dedent("""
    import resource, subprocess, sys
    def limit():  # a runaway derivation fails fast instead of taking the machine
        resource.setrlimit(resource.RLIMIT_AS, (768 << 20, 768 << 20))
    done = subprocess.run(sys.argv[1:], preexec_fn=limit, capture_output=True, text=True, timeout=120)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)
    print(done.stderr, end="")
""")


def run_measured(kw, *args: str) -> tuple[int, int, str]:
    """(peak RSS in KiB, exit code, stderr) of `keyward ARGS` in its own process."""
    cmd = [sys.executable, "-c", RSS_PROBE, sys.executable, "-m", "vault", "--vault", str(kw.vault_path),
           "--passphrase-file", str(kw.passphrase_file), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=kw.env, timeout=180,
                         stdin=subprocess.DEVNULL, start_new_session=True).stdout
    first, _, err = out.partition("\n")
    rss, code = map(int, first.split())
    return rss, code, err


def with_cost(blob: bytes, t: int, m: int, p: int) -> bytes:
    damaged = bytearray(blob)
    struct.pack_into(">III", damaged, 10, t, m, p)
    body = bytes(damaged[:-32])
    return body + hashlib.sha256(body).digest()


def test_a_crafted_vault_asking_64_passes_over_4_gib_is_refused_before_any_derivation(kw):
    kw.vault_path.parent.mkdir(mode=0o700)
    blob = ff.encrypt_new(encode_payload(VaultData()), PASSPHRASE, SMALL_KDF)[2]
    kw.vault_path.write_bytes(with_cost(blob, 64, 4 * 1024 * 1024, 64))
    kw.vault_path.chmod(0o600)
    rss, code, err = run_measured(kw, "list")
    assert code == KdfCostRefused.exit_code, err
    assert rss < 100 * 1024, f"peak RSS {rss} KiB: something was derived"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "4096 MiB" in lines[0] and "64 iterations" in lines[0]


def test_a_crafted_bundle_asking_64_passes_over_1_gib_is_refused_before_any_derivation(kw, tmp_path):
    assert kw.init().code == 0
    bundle = ff.encrypt_new(json.dumps({"bundle": 1, "accounts": []}).encode(), "bundle pass", SMALL_KDF,
                            magic=ff.MAGIC_BUNDLE)[2]
    path = tmp_path / "crafted.kwb"
    path.write_bytes(with_cost(bundle, 64, 1024 * 1024, 4))
    secret = tmp_path / "bundle-pass"
    secret.write_text("bundle pass\n")
    rss, code, err = run_measured(kw, "import", str(path), "--bundle-passphrase-file", str(secret))
    assert code == KdfCostRefused.exit_code, err
    assert rss < 100 * 1024, f"peak RSS {rss} KiB: something was derived"
    assert "1024 MiB" in err and "64 iterations" in err and "nothing was imported" in err


def test_the_budget_is_checked_before_the_kdf_in_process(monkeypatch):
    from vault.ops import bundle

    def must_not_run(*a, **k):
        raise AssertionError("Argon2id ran for a file over the budget")

    vault_blob = ff.encrypt_new(b"{}", PASSPHRASE, SMALL_KDF)[2]
    bundle_blob = ff.encrypt_new(b"{}", PASSPHRASE, SMALL_KDF, magic=ff.MAGIC_BUNDLE)[2]
    monkeypatch.setattr("vault.core.fileformat.derive_kek", must_not_run)
    with pytest.raises(KdfCostRefused):
        ff.decrypt(with_cost(vault_blob, 64, 4 * 1024 * 1024, 64), PASSPHRASE)
    with pytest.raises(KdfCostRefused):
        ff.decrypt(with_cost(vault_blob, 9, 2 * 1024 * 1024, 4), PASSPHRASE)  # memory fits, work does not
    with pytest.raises(KdfCostRefused):
        bundle.open_bundle(with_cost(bundle_blob, 64, 1024 * 1024, 4), PASSPHRASE)
    with pytest.raises(KdfCostRefused):
        bundle.open_bundle(with_cost(bundle_blob, 9, 512 * 1024, 4), PASSPHRASE)  # fine for a vault, not a bundle


def test_bundles_get_a_tighter_budget_and_are_sealed_within_it():
    from vault.ops.bundle import bundle_kdf

    assert ff.BUNDLE_BUDGET.max_memory_kib < ff.VAULT_BUDGET.max_memory_kib
    assert ff.BUNDLE_BUDGET.max_work_kib < ff.VAULT_BUDGET.max_work_kib
    for vault_kdf in (ff.DEFAULT_KDF, ff.KdfParams(8, 2 * 1024 * 1024, 4), ff.KdfParams(64, 256 * 1024, 4)):
        assert ff.VAULT_BUDGET.allows(vault_kdf)
        sealed = bundle_kdf(vault_kdf)
        assert ff.BUNDLE_BUDGET.allows(sealed) and not sealed.weaker_than(ff.DEFAULT_KDF)


def test_init_refuses_bad_kdf_parameters_as_input_errors(kw):
    for args in (["--kdf-iterations", "0"], ["--kdf-memory-mib", "1"], ["--kdf-parallelism", "65"],
                 ["--kdf-memory-mib", "99999999"]):
        done = kw("init", *args)
        assert done.code == 24, (args, done.both)  # InputError, not 14 ("damaged file")
        assert len(done.err.strip().splitlines()) == 1
    assert not kw.vault_path.exists()


def test_init_over_the_budget_needs_the_flag(kw):
    kw.passphrase_file.write_text("")  # refused before any passphrase is read (or typed twice)
    done = kw("init", "--kdf-iterations", "64", "--kdf-memory-mib", "4096", "--kdf-parallelism", "4")
    assert done.code == KdfCostRefused.exit_code and "--allow-kdf-cost" in done.err
    assert "262144 MiB-passes" in done.err
    assert not kw.vault_path.exists()


# --- passwd rotates the data key ---------------------------------------------------------------------


def test_the_old_data_key_does_not_open_the_vault_after_passwd(service, vault_path):
    service.add_account(kiiex("a"))
    old_key = service._key
    service.change_passphrase("a whole new passphrase")
    service.add_account(kiiex("b"))
    blob = vault_path.read_bytes()
    with pytest.raises(CorruptVault):
        ff.open_payload(blob, ff.parse(blob), old_key)
    with pytest.raises(WrongPassphrase):
        VaultService.unlock(vault_path, PASSPHRASE)
    assert [a.label for a in VaultService.unlock(vault_path, "a whole new passphrase").accounts] == ["a", "b"]


def test_no_file_under_the_old_passphrase_or_key_remains_after_passwd(vault, tmp_path):
    from vault.ops.rotation import rescue

    assert vault("add", "kiiex", "a", "--base-url", "https://alphaprod.proxy.kiiex.io/ap", "--from-json", "-",
                 input=json.dumps({"api_key": "k", "api_secret": "s", "nonce": "n", "user_id": "1"})).code == 0
    opened = VaultService.unlock(vault.vault_path, PASSPHRASE)
    old_key = opened._key
    rescue(opened, lambda data: None, 1_800_000_000)  # a rescue file beside it, sealed under the old key
    new = tmp_path / "new-passphrase"
    new.write_text("a different, long passphrase\n")
    done = vault("passwd", "--new-passphrase-file", str(new))
    assert done.code == 0, done.both
    assert "new data key" in done.out and "vault.kw.bak" in done.out and "rescue" in done.out
    files = [p for p in vault.vault_path.parent.iterdir() if p.is_file() and p.name != "vault.kw.lock"]
    assert {p.name for p in files} >= {"vault.kw", "vault.kw.bak", "vault.kw.rescue-1800000000"}
    for path in files:
        blob = path.read_bytes()
        with pytest.raises(WrongPassphrase):
            ff.decrypt(blob, PASSPHRASE)
        with pytest.raises(CorruptVault):
            ff.open_payload(blob, ff.parse(blob), old_key)
        ff.decrypt(blob, "a different, long passphrase")  # each still opens, under the new one


def test_rekey_reseals_the_bak_too(service, vault_path):
    service.add_account(kiiex("a"))
    old_key = service._key
    report = service.rekey(PASSPHRASE)
    bak = vault_path.with_name("vault.kw.bak")
    assert report.resealed == [bak] and report.left == []
    blob = bak.read_bytes()
    with pytest.raises(CorruptVault):
        ff.open_payload(blob, ff.parse(blob), old_key)
    assert [a.label for a in VaultService.unlock(bak, PASSPHRASE).accounts] == ["a"]


# --- the spec's answers ------------------------------------------------------------------------------


def canonical_from_the_spec(entry: dict) -> bytes:
    """The audit chain's canonical JSON, implemented from docs/vault-format.md's rule
    without json.dumps: keys sorted, no spaces, strings escaped as the rule says,
    numbers formatted as the rule says."""

    def string(s: str) -> str:
        out = ['"']
        short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
        for ch in s:
            cp = ord(ch)
            if ch in short:
                out.append(short[ch])
            elif cp < 0x20 or 0x7E < cp < 0x10000:
                out.append(f"\\u{cp:04x}")
            elif cp >= 0x10000:
                cp -= 0x10000
                out.append(f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}")
            else:
                out.append(ch)
        return "".join(out) + '"'

    def number(x: float) -> str:
        # The shortest digits that read back as the same double (the closest such)...
        sign, x = ("-" if math.copysign(1, x) < 0 else ""), abs(x)
        if x == 0:
            return sign + "0.0"
        for precision in range(17):
            sci = f"{x:.{precision}e}"
            if float(sci) == x:
                break
        mantissa, exp = sci.split("e")
        ds = mantissa.replace(".", "").rstrip("0") or "0"
        point = int(exp) + 1  # the decimal point sits after this many digits
        # ...laid out by the spec's rule (fixed within 1e-4 <= |x| < 1e16, else exponent).
        if -4 < point <= 16:
            if point <= 0:
                return f"{sign}0.{'0' * -point}{ds}"
            if point >= len(ds):
                return f"{sign}{ds}{'0' * (point - len(ds))}.0"
            return f"{sign}{ds[:point]}.{ds[point:]}"
        e = point - 1
        body = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{sign}{body}e{'+' if e >= 0 else '-'}{abs(e):02d}"

    def value(v) -> str:
        if v is None:
            return "null"
        if isinstance(v, str):
            return string(v)
        return number(v)

    return ("{" + ",".join(f"{string(k)}:{value(entry[k])}" for k in sorted(entry)) + "}").encode("ascii")


@pytest.mark.parametrize("at", [1796111002.0, 1796111002.25, 0.1, 1e16, 1.5e-05, 123456789012345.6, 0.0001, 5e-324])
@pytest.mark.parametrize("detail", ["plain", "ü-ß-秘密", "emoji 🔑", "quote \" back \\ slash / ", "ctl \x01\x1f\x7f \n\t"])
def test_the_audit_digest_follows_the_documented_canonical_json(at, detail):
    entry = AuditEntry(at=at, action="add", account="a", outcome="ok", detail=detail, prev="0" * 64)
    body = {"at": at, "action": "add", "account": "a", "outcome": "ok", "detail": detail, "prev": "0" * 64}
    assert audit._digest(entry) == hashlib.sha256(canonical_from_the_spec(body)).hexdigest()
    assert math.isfinite(at)


def test_the_spec_answers_the_questions_issue_11_listed():
    doc = DOC.read_text()
    for must in ("inclusive", "Order of checks", "Passphrase files", "Canonical JSON", "anchor",
                 "Bundle payload", "Rescue files", "generation", "without `assert`"):
        assert must in doc, must
    assert "re-seals only" not in doc


def test_a_cost_past_the_budget_is_the_users_explicit_choice_and_remembered_per_vault(tmp_path, monkeypatch):
    """With the budget shrunk to the floor, t=2 is "too costly": cheap to test for real."""
    monkeypatch.setattr(ff, "VAULT_BUDGET", ff.KdfBudget(8 * 1024, 8 * 1024, "vault"))
    costly = ff.KdfParams(2, 8 * 1024, 1)
    mine, theirs = tmp_path / "mine" / "vault.kw", tmp_path / "theirs" / "vault.kw"
    with pytest.raises(KdfCostRefused, match="16 MiB-passes"):
        VaultService.create(mine, PASSPHRASE, costly)
    assert not mine.exists()
    VaultService.create(mine, PASSPHRASE, costly, allow_kdf_cost=True).add_account(kiiex("a"))
    assert [a.label for a in VaultService.unlock(mine, PASSPHRASE).accounts] == ["a"]  # remembered for this path
    theirs.parent.mkdir()
    theirs.write_bytes(mine.read_bytes())  # the same cost elsewhere was never accepted
    with pytest.raises(KdfCostRefused, match="KEYWARD_ALLOW_KDF_COST"):
        VaultService.unlock(theirs, PASSPHRASE)
    monkeypatch.setenv("KEYWARD_ALLOW_KDF_COST", "1")
    VaultService.unlock(theirs, PASSPHRASE)  # the explicit override, once...
    monkeypatch.delenv("KEYWARD_ALLOW_KDF_COST")
    assert [a.label for a in VaultService.unlock(theirs, PASSPHRASE).accounts] == ["a"]  # ...then remembered


def test_a_data_key_holder_keeps_a_v1_file_v1_until_a_passphrase_holder_saves(tmp_path):
    """The agent holds the data key and no passphrase, so it cannot make a v2 header (the
    commitment needs the KEK): its saves stay v1, and the next save by a process that
    unlocked with the passphrase writes v2 over them without losing their changes."""
    from vault.core.service import decode_payload
    from vault.core.storage import VaultFile

    path = tmp_path / "vault.kw"
    path.write_bytes((VECTORS / "vector-v1.kw").read_bytes())
    said: list[str] = []
    cli = VaultService.unlock(path, VECTOR_PASSPHRASE, notify=said.append)
    blob = path.read_bytes()
    header = ff.parse(blob)
    agent = VaultService(VaultFile(path), header, cli._key, decode_payload(ff.open_payload(blob, header, cli._key)),
                         cli.clock, notify=said.append)
    agent.add_account(kiiex("by-agent"))
    assert path.read_bytes()[8] == 1 and said == []
    cli.add_account(kiiex("by-cli"))
    assert path.read_bytes()[8] == 2 and len(said) == 1
    labels = [a.label for a in VaultService.unlock(path, VECTOR_PASSPHRASE).accounts]
    assert labels[-2:] == ["by-agent", "by-cli"]
    agent.add_account(kiiex("agent-again"))  # the agent reloads the v2 file with its same data key
    assert path.read_bytes()[8] == 2
