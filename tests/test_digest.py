"""vault.core.digest against the standard library's hashlib and hmac."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from vault.core import digest


@given(st.binary(max_size=4096))
def test_sha256_is_hashlibs(data: bytes) -> None:
    assert digest.sha256(data) == hashlib.sha256(data).digest()


@given(st.binary(max_size=200), st.binary(max_size=4096))
def test_hmac_sha256_is_hmacs(key: bytes, data: bytes) -> None:
    # keys longer than the block size (64 bytes) are hashed first: the range covers both
    assert digest.hmac_sha256(key, data) == hmac.new(key, data, hashlib.sha256).digest()


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_equal_is_equality(a: bytes, b: bytes) -> None:
    assert digest.equal(a, b) is (a == b)
    assert digest.equal(a, a)


def test_known_answers() -> None:
    # FIPS 180-2 "abc" and RFC 4231 test case 2
    assert digest.sha256(b"abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert digest.hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
