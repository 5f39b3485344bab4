"""The keyward vault file, version 1: bytes in, bytes out.  No I/O here.

The layout is specified in docs/vault-format.md; this module is its reference
implementation and should read like it.  All integers are big-endian.

    offset size  field
    0      8     magic            b"KWVAULT\\0" (vault) or b"KWBUNDL\\0" (export bundle)
    8      1     version          1
    9      1     kdf id           1 = Argon2id v1.3
    10     4     t                iterations
    14     4     m                memory, KiB
    18     4     p                parallelism
    22     16    salt
    38     12    wrap nonce
    50     48    wrapped key      AES-256-GCM(kek, wrap nonce, data key, aad=bytes[0:50])
    98     8     generation
    106    12    payload nonce
    118    n+16  payload          AES-256-GCM(data key, payload nonce, json, aad=bytes[0:118])
    end-32 32    checksum         SHA-256 of every byte before it

The checksum is not a security feature (anyone can recompute it): it lets keyward tell
a damaged file from a wrong passphrase before spending a second on the KDF.  Security
comes from the two AEAD tags, which together authenticate every byte of the file.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass

from vault.core.errors import CorruptVault, UnsafeKdfParameters, UnsupportedVersion, WrongPassphrase

MAGIC_VAULT = b"KWVAULT\x00"
MAGIC_BUNDLE = b"KWBUNDL\x00"
VERSION = 1
KDF_ARGON2ID = 1

_PREFIX = struct.Struct(">8sBBIII16s12s")  # magic .. wrap nonce: the wrap's associated data
_WRAPPED_LEN = 32 + 16
_GEN = struct.Struct(">Q12s")
HEADER_LEN = _PREFIX.size + _WRAPPED_LEN + _GEN.size  # 118
CHECKSUM_LEN = 32
MIN_FILE_LEN = HEADER_LEN + 16 + CHECKSUM_LEN


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost.  The default is RFC 9106's second recommended option."""

    iterations: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4

    # Below the floor a vault is too cheap to brute-force; above the ceiling a crafted
    # file could make `open` allocate until the machine falls over.
    FLOOR = (1, 8 * 1024, 1)
    CEILING = (64, 4 * 1024 * 1024, 64)

    def check(self) -> None:
        t, m, p = self.iterations, self.memory_kib, self.parallelism
        (t0, m0, p0), (t1, m1, p1) = self.FLOOR, self.CEILING
        if not (t0 <= t <= t1 and m0 <= m <= m1 and p0 <= p <= p1) or m < 8 * p:
            raise UnsafeKdfParameters(
                f"Argon2id parameters t={t}, m={m} KiB, p={p} are outside the accepted range",
                hint=f"use t {t0}-{t1}, memory {m0 // 1024} MiB-{m1 // 1024 // 1024} GiB, parallelism {p0}-{p1}",
            )

    def weaker_than(self, other: KdfParams) -> bool:
        return self.iterations < other.iterations or self.memory_kib < other.memory_kib

    def describe(self) -> str:
        return f"Argon2id t={self.iterations} m={self.memory_kib // 1024} MiB p={self.parallelism}"


DEFAULT_KDF = KdfParams()


@dataclass(frozen=True)
class Header:
    """Everything before the payload.  `wrapped_key` is the sealed data key."""

    magic: bytes
    kdf: KdfParams
    salt: bytes
    wrap_nonce: bytes
    wrapped_key: bytes
    generation: int
    payload_nonce: bytes

    def wrap_aad(self) -> bytes:
        k = self.kdf
        return _PREFIX.pack(
            self.magic, VERSION, KDF_ARGON2ID, k.iterations, k.memory_kib, k.parallelism, self.salt, self.wrap_nonce
        )

    def encode(self) -> bytes:
        return self.wrap_aad() + self.wrapped_key + _GEN.pack(self.generation, self.payload_nonce)


def derive_kek(passphrase: str, salt: bytes, kdf: KdfParams) -> bytes:
    """The key-encryption key: Argon2id(passphrase as UTF-8, salt) -> 32 bytes."""
    from argon2.low_level import Type, hash_secret_raw

    kdf.check()
    return hash_secret_raw(
        passphrase.encode("utf-8"),
        salt,
        time_cost=kdf.iterations,
        memory_cost=kdf.memory_kib,
        parallelism=kdf.parallelism,
        hash_len=32,
        type=Type.ID,
        version=19,
    )


def _aead(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def wrap_key(magic: bytes, kek: bytes, data_key: bytes, kdf: KdfParams, salt: bytes) -> Header:
    """A header (generation 0, no payload nonce yet) holding `data_key` sealed under `kek`."""
    partial = Header(magic, kdf, salt, os.urandom(12), b"", 0, b"")
    wrapped = _aead(kek).encrypt(partial.wrap_nonce, data_key, partial.wrap_aad())
    return Header(magic, kdf, salt, partial.wrap_nonce, wrapped, 0, b"")


def unwrap_key(header: Header, kek: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    try:
        return _aead(kek).decrypt(header.wrap_nonce, header.wrapped_key, header.wrap_aad())
    except InvalidTag:
        raise WrongPassphrase(
            "wrong passphrase", hint="try again; the vault file was not changed"
        ) from None


def seal(header: Header, data_key: bytes, plaintext: bytes, generation: int) -> bytes:
    """The complete file for `plaintext`, with a fresh payload nonce."""
    head = Header(
        header.magic, header.kdf, header.salt, header.wrap_nonce, header.wrapped_key, generation, os.urandom(12)
    ).encode()
    body = head + _aead(data_key).encrypt(head[-12:], plaintext, head)
    return body + hashlib.sha256(body).digest()


def parse(blob: bytes, *, expect_magic: bytes = MAGIC_VAULT) -> Header:
    """Check the framing and the checksum, and decode the header.  No key needed."""
    if len(blob) < 9 or blob[:8] not in (MAGIC_VAULT, MAGIC_BUNDLE):
        raise CorruptVault("not a keyward vault (bad magic bytes)", hint="check the path, or restore the .bak file")
    if blob[8] != VERSION:
        raise UnsupportedVersion(
            f"vault format version {blob[8]} is not supported by this keyward (it reads version {VERSION})",
            hint="upgrade keyward",
        )
    if blob[:8] != expect_magic:
        kind = "an export bundle" if blob[:8] == MAGIC_BUNDLE else "a vault"
        raise CorruptVault(f"this file is {kind}, not what was expected", hint="use `keyward import` for bundles")
    if len(blob) < MIN_FILE_LEN:
        raise CorruptVault("the vault file is truncated", hint="restore it from the .bak file beside it")
    if hashlib.sha256(blob[:-CHECKSUM_LEN]).digest() != blob[-CHECKSUM_LEN:]:
        raise CorruptVault("the vault file is damaged (checksum mismatch)", hint="restore it from the .bak file beside it")
    return parse_header(blob)


def parse_header(blob: bytes) -> Header:
    magic, _version, kdf_id, t, m, p, salt, wrap_nonce = _PREFIX.unpack_from(blob, 0)
    if kdf_id != KDF_ARGON2ID:
        raise CorruptVault(f"unknown key-derivation function id {kdf_id}", hint="restore the .bak file")
    kdf = KdfParams(t, m, p)
    kdf.check()
    off = _PREFIX.size
    wrapped = blob[off : off + _WRAPPED_LEN]
    generation, payload_nonce = _GEN.unpack_from(blob, off + _WRAPPED_LEN)
    return Header(magic, kdf, salt, wrap_nonce, wrapped, generation, payload_nonce)


def peek_generation(blob_head: bytes) -> int | None:
    """The generation counter from the first HEADER_LEN bytes, unauthenticated: a hint
    that someone else saved, confirmed later by decrypting."""
    if len(blob_head) < HEADER_LEN or blob_head[:8] not in (MAGIC_VAULT, MAGIC_BUNDLE):
        return None
    return _GEN.unpack_from(blob_head, _PREFIX.size + _WRAPPED_LEN)[0]


def open_payload(blob: bytes, header: Header, data_key: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    try:
        return _aead(data_key).decrypt(header.payload_nonce, blob[HEADER_LEN:-CHECKSUM_LEN], blob[:HEADER_LEN])
    except InvalidTag:
        raise CorruptVault(
            "the vault payload failed authentication (tampered with, or sealed with another key)",
            hint="restore the .bak file",
        ) from None


def decrypt(blob: bytes, passphrase: str, *, expect_magic: bytes = MAGIC_VAULT) -> tuple[Header, bytes, bytes]:
    """Whole-file decryption: returns (header, data key, plaintext payload)."""
    header = parse(blob, expect_magic=expect_magic)
    data_key = unwrap_key(header, derive_kek(passphrase, header.salt, header.kdf))
    return header, data_key, open_payload(blob, header, data_key)


def encrypt_new(plaintext: bytes, passphrase: str, kdf: KdfParams, *, magic: bytes = MAGIC_VAULT) -> tuple[Header, bytes, bytes]:
    """A brand-new file: fresh salt and data key.  Returns (header, data key, file bytes)."""
    kdf.check()
    salt, data_key = os.urandom(16), os.urandom(32)
    header = wrap_key(magic, derive_kek(passphrase, salt, kdf), data_key, kdf, salt)
    return header, data_key, seal(header, data_key, plaintext, 1)
