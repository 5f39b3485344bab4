"""The key derivation against two other implementations of Argon2id v1.3.

keyward calls the C library through argon2-cffi-bindings directly (vault.core.fileformat
.derive_kek); argon2-cffi's own wrapper and OpenSSL's Argon2id (through cryptography,
an implementation that shares no code with it) must derive the same bytes."""

from __future__ import annotations

import pytest

from vault.core import fileformat as ff
from vault.core.errors import UnsafeKdfParameters

CASES = [
    ("correct horse battery staple", bytes(range(16)), ff.KdfParams(1, 8 * 1024, 1)),
    ("plinth ochre gambit sundial (benchmark)", b"\xff" * 16, ff.KdfParams(2, 16 * 1024, 2)),
    ("pässwörd ☃ with non-ASCII", b"0123456789abcdef", ff.KdfParams(3, 8 * 1024, 4)),
]


@pytest.mark.parametrize("passphrase,salt,kdf", CASES)
def test_derive_kek_is_argon2id_as_argon2_cffi_derives_it(passphrase: str, salt: bytes, kdf: ff.KdfParams) -> None:
    from argon2.low_level import Type, hash_secret_raw

    expected = hash_secret_raw(passphrase.encode("utf-8"), salt, time_cost=kdf.iterations, memory_cost=kdf.memory_kib,
                               parallelism=kdf.parallelism, hash_len=32, type=Type.ID, version=19)
    assert ff.derive_kek(passphrase, salt, kdf) == expected


@pytest.mark.parametrize("passphrase,salt,kdf", CASES)
def test_derive_kek_is_argon2id_as_openssl_derives_it(passphrase: str, salt: bytes, kdf: ff.KdfParams) -> None:
    try:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        oracle = Argon2id(salt=salt, length=32, iterations=kdf.iterations, lanes=kdf.parallelism,
                          memory_cost=kdf.memory_kib)
        expected = oracle.derive(passphrase.encode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - an OpenSSL older than 3.2 has no Argon2
        pytest.skip(f"this cryptography/OpenSSL has no Argon2id ({type(exc).__name__})")
    assert ff.derive_kek(passphrase, salt, kdf) == expected


def test_parameters_outside_the_bounds_never_reach_the_library() -> None:
    with pytest.raises(UnsafeKdfParameters):
        ff.derive_kek("x", bytes(16), ff.KdfParams(0, 8 * 1024, 1))
