"""The file format (v2 written, v1 read): round trips, the test vectors, and every way a file can be damaged."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from functools import lru_cache
from pathlib import Path

import pytest

from vault.core import fileformat as ff
from vault.core.errors import CorruptVault, KeywardError, UnsafeKdfParameters, UnsupportedVersion, WrongPassphrase
from vault.core.model import Account, VaultData
from vault.core.service import VaultService, decode_payload, encode_payload

from .conftest import PASSPHRASE, SMALL_KDF

FIXTURES = Path(__file__).parent / "vectors"
DOC = Path(__file__).parent.parent / "docs" / "vault-format.md"
VECTOR_PASSPHRASE = "keyward test vector"


def small_vault() -> bytes:
    data = VaultData(accounts=[Account("a", "kiiex", "https://x", {"api_key": "k", "api_secret": "s3cr3t-value"})])
    return ff.encrypt_new(encode_payload(data), PASSPHRASE, SMALL_KDF)[2]


@pytest.fixture(scope="module")
def blob() -> bytes:
    return small_vault()


# --- the spec and the vector -----------------------------------------------------------


def reference_decoder():
    """The decoder printed in docs/vault-format.md, executed as written."""
    text = DOC.read_text()
    section = text.split("## Reference decoder", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(code, scope)
    return scope["decrypt_vault"]


def test_reference_decoder_from_the_spec_opens_the_test_vector():
    payload = reference_decoder()((FIXTURES / "vector-v1.kw").read_bytes(), VECTOR_PASSPHRASE)
    assert payload == json.loads((FIXTURES / "vector-v1.json").read_text())


def test_keyward_opens_the_test_vector(tmp_path):
    path = tmp_path / "vector.kw"
    path.write_bytes((FIXTURES / "vector-v1.kw").read_bytes())
    service = VaultService.unlock(path, VECTOR_PASSPHRASE)
    expected = json.loads((FIXTURES / "vector-v1.json").read_text())
    got = json.loads(encode_payload(service.data))
    assert got["accounts"] == expected["accounts"] and got["audit"] == expected["audit"]
    assert [a.venue for a in service.accounts] == ["powertrade", "tradeready", "hypersolutions", "kiiex"]


def test_reference_decoder_reads_what_keyward_writes(service):
    service.add_account(Account("x", "kiiex", "https://x", {"api_key": "k", "api_secret": "s", "nonce": "n", "user_id": "1"}))
    payload = reference_decoder()(service.file.path.read_bytes(), PASSPHRASE)
    assert payload["accounts"][0]["label"] == "x"


def test_layout_offsets_match_the_spec(blob):
    assert ff.HEADER_LEN == ff.V2_HEADER_LEN == 182 and ff.V1_HEADER_LEN == 118
    assert blob[:8] == b"KWVAULT\x00" and blob[8] == 2 and blob[9] == 1
    assert struct.unpack_from(">III", blob, 10) == (1, 8192, 1)
    assert struct.unpack_from(">Q", blob, 130)[0] == 1
    assert ff.peek_generation(blob[: ff.HEADER_LEN]) == 1
    v1 = (FIXTURES / "vector-v1.kw").read_bytes()
    assert ff.peek_generation(v1[:ff.HEADER_LEN]) == struct.unpack_from(">Q", v1, 98)[0]


# --- round trips ---------------------------------------------------------------------------


def test_round_trip_preserves_content():
    data = VaultData(accounts=[Account("a", "tradeready", "https://api.tradeready.io", {"api_key": "ak_live_x", "api_secret": "ü-ß-秘密"})])
    header, key, blob = ff.encrypt_new(encode_payload(data), "pässphrase", SMALL_KDF)
    _, _, plain = ff.decrypt(blob, "pässphrase")
    assert decode_payload(plain).accounts[0].fields["api_secret"] == "ü-ß-秘密"


def test_every_save_uses_a_fresh_nonce():
    data = encode_payload(VaultData())
    header, key, blob = ff.encrypt_new(data, PASSPHRASE, SMALL_KDF)
    h = ff.parse(blob)
    nonces = {ff.parse(ff.seal(h, key, data, 2)).payload_nonce for _ in range(50)}
    assert len(nonces) == 50


def test_secrets_are_not_in_the_file_bytes(blob):
    assert b"s3cr3t-value" not in blob
    assert b"api_secret" not in blob  # even field names are encrypted


def test_wrong_passphrase_is_typed(blob):
    with pytest.raises(WrongPassphrase):
        ff.decrypt(blob, "not the passphrase")


# --- damage ---------------------------------------------------------------------------------


def test_every_single_bit_flip_is_rejected(blob):
    """Exhaustive over a small vault: 8 bits x every byte."""
    for i in range(len(blob)):
        for bit in range(8):
            damaged = bytearray(blob)
            damaged[i] ^= 1 << bit
            with pytest.raises(KeywardError):
                ff.decrypt(bytes(damaged), PASSPHRASE)


def test_every_truncation_is_rejected(blob):
    for n in range(len(blob)):
        with pytest.raises(CorruptVault):
            ff.decrypt(blob[:n], PASSPHRASE)


def test_appended_bytes_are_rejected(blob):
    with pytest.raises(CorruptVault):
        ff.decrypt(blob + b"\x00", PASSPHRASE)


@lru_cache(maxsize=None)
def _kek(passphrase: str, salt: bytes, kdf: ff.KdfParams) -> bytes:
    return ff.derive_kek(passphrase, salt, kdf)


def _decrypt_with_cached_kdf(blob: bytes):
    header = ff.parse(blob)
    key = ff.unwrap_key(header, _kek(PASSPHRASE, header.salt, header.kdf))
    return ff.open_payload(blob, header, key)


def _fix_checksum(damaged: bytearray) -> bytes:
    body = bytes(damaged[: -ff.CHECKSUM_LEN])
    return body + hashlib.sha256(body).digest()


def test_aead_alone_catches_every_flip_outside_the_kdf_cost_fields(blob):
    """An attacker can recompute the checksum: the two GCM tags must still catch every
    flip.  (Flips of t/m/p change the KDF cost itself; they are covered below without
    letting a test allocate gigabytes.)"""
    cost_fields = range(10, 22)
    for i in range(len(blob) - ff.CHECKSUM_LEN):
        if i in cost_fields:
            continue
        for bit in range(8):
            damaged = bytearray(blob)
            damaged[i] ^= 1 << bit
            with pytest.raises((CorruptVault, WrongPassphrase, UnsupportedVersion)):
                _decrypt_with_cached_kdf(_fix_checksum(damaged))


@pytest.mark.parametrize("offset,value", [(10, 2), (14, 8193), (18, 2), (14, 9000)])
def test_changed_kdf_cost_within_range_fails_authentication(blob, offset, value):
    damaged = bytearray(blob)
    struct.pack_into(">I", damaged, offset, value)
    with pytest.raises(WrongPassphrase):
        _decrypt_with_cached_kdf(_fix_checksum(damaged))


def test_random_byte_corruption_property(blob):
    """Any one byte replaced by any other value is rejected: exhaustive, every byte of a
    small vault (header, wrapped key, payload, tags, checksum) times its 255 other values
    (the whole space the random sampling of 10,000 cases drew from, in a second)."""
    accepted = []
    for i in range(len(blob)):
        for new in range(256):
            if new == blob[i]:
                continue
            damaged = bytearray(blob)
            damaged[i] = new
            try:
                ff.decrypt(bytes(damaged), PASSPHRASE)
            except KeywardError:
                continue
            accepted.append((i, new))
    assert accepted == []


# --- versions and KDF bounds ------------------------------------------------------------


def test_unknown_version_is_refused_with_upgrade_hint(blob):
    damaged = bytearray(blob)
    damaged[8] = 3
    with pytest.raises(UnsupportedVersion, match="upgrade keyward"):
        ff.decrypt(_fix_checksum(damaged), PASSPHRASE)


def test_not_a_vault():
    with pytest.raises(CorruptVault, match="not a keyward vault"):
        ff.decrypt(b"hello world" * 20, PASSPHRASE)


@pytest.mark.parametrize(
    "t,m,p",
    [(0, 8192, 1), (65, 8192, 1), (1, 4096, 1), (1, 4 * 1024 * 1024 + 1, 1), (1, 0xFFFFFFFF, 1), (1, 8192, 0), (1, 8192, 65), (1, 8192, 2000)],
)
def test_absurd_kdf_parameters_are_refused_before_deriving(blob, t, m, p, monkeypatch):
    damaged = bytearray(blob)
    struct.pack_into(">III", damaged, 10, t, m, p)

    def must_not_run(*a, **k):  # the refusal must come before any memory is spent
        raise AssertionError("KDF ran on absurd parameters")

    monkeypatch.setattr("vault.core.fileformat.derive_kek", must_not_run)
    with pytest.raises(UnsafeKdfParameters):
        ff.decrypt(_fix_checksum(damaged), PASSPHRASE)


def test_newer_payload_schema_is_refused():
    with pytest.raises(UnsupportedVersion):
        decode_payload(json.dumps({"schema": 99}).encode())


def test_default_kdf_is_rfc9106_second_option():
    assert (ff.DEFAULT_KDF.iterations, ff.DEFAULT_KDF.memory_kib, ff.DEFAULT_KDF.parallelism) == (3, 65536, 4)


def test_default_parameters_round_trip(tmp_path):
    """The one test that pays for the real default KDF."""
    path = tmp_path / "v.kw"
    VaultService.create(path, PASSPHRASE)
    service = VaultService.unlock(path, PASSPHRASE)
    assert service.kdf == ff.DEFAULT_KDF
    assert struct.unpack_from(">III", path.read_bytes(), 10) == (3, 65536, 4)


def test_an_opened_vault_goes_to_the_oldest_generation_not_to_the_collectors_next_walk() -> None:
    """decode_payload builds with the cyclic collector paused; resumed as it was, the
    collector found every account in its youngest generation and walked them all at the
    next allocation (25 ms of an open at 10,000 accounts in the agent or the dashboard).
    They go straight to the oldest generation, unless something else froze objects."""
    import gc

    from vault.core.model import Account

    data = VaultData(accounts=[Account(label=f"a{i}", venue="kiiex", base_url="https://x", fields={"api_key": str(i)})
                               for i in range(2000)])
    payload = encode_payload(data)
    assert gc.isenabled()
    opened = decode_payload(payload)
    young = {id(obj) for obj in gc.get_objects(generation=0)}
    assert not any(id(acct) in young or id(acct.fields) in young for acct in opened.accounts)
    oldest = {id(obj) for obj in gc.get_objects(generation=2)}
    assert all(id(acct) in oldest for acct in opened.accounts[::100])
    gc.freeze()  # someone else's frozen objects stay frozen
    try:
        frozen = gc.get_freeze_count()
        decode_payload(payload)
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()
