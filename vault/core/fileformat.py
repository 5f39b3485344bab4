"""The keyward vault file, versions 1 and 2: bytes in, bytes out.  No I/O here.

The layout is specified in docs/vault-format.md; this module is its reference
implementation and should read like it.  All integers are big-endian.  keyward reads
both versions and writes version 2.

Version 2 (written since the format gained key commitment):

    offset size  field
    0      8     magic            b"KWVAULT\\0" (vault) or b"KWBUNDL\\0" (export bundle)
    8      1     version          2
    9      1     kdf id           1 = Argon2id v1.3
    10     4     t                iterations
    14     4     m                memory, KiB
    18     4     p                parallelism
    22     16    salt
    38     32    commitment       HMAC-SHA256(HKDF(kek, "keyward v2 kek commitment"), bytes[0:38])
    70     12    wrap nonce
    82     48    wrapped key      AES-256-GCM(HKDF(kek, "keyward v2 key wrap"), wrap nonce, data key, aad=bytes[0:82])
    130    8     generation
    138    12    payload nonce
    150    32    header MAC       HMAC-SHA256(HKDF(data key, "keyward v2 header mac"), bytes[0:150])
    182    n+16  payload          AES-256-GCM(HKDF(data key, "keyward v2 payload"), payload nonce, json, aad=bytes[0:182])
    end-32 32    checksum         SHA-256 of every byte before it

Version 1 (read only; the agent, which holds a data key and no passphrase, keeps a v1
file v1 until a process that has the passphrase saves it):

    0 magic(8) 8 version=1 9 kdf id 10 t 14 m 18 p 22 salt(16) 38 wrap nonce(12)
    50 wrapped key(48, AES-256-GCM(kek, aad=bytes[0:50])) 98 generation(8)
    106 payload nonce(12) 118 payload(n+16, AES-256-GCM(data key, aad=bytes[0:118]))
    end-32 checksum(32)

The checksum is not a security feature (anyone can recompute it): it lets keyward tell
a damaged file from a wrong passphrase before spending a second on the KDF.  Security
comes from the commitment, the AEAD tags and the header MAC.  The commitment is checked
before the key wrap, so a passphrase either opens a v2 file or fails exactly as any wrong
passphrase does: a file crafted so that one key wrap authenticates under several
passphrase-derived keys (AES-GCM does not commit to its key) opens under at most one.
"""

from __future__ import annotations

import os
import struct
from collections import namedtuple

from vault.core.errors import (
    CorruptVault, KdfCostRefused, KeywardError, UnsafeKdfParameters, UnsupportedVersion, WrongPassphrase,
)
from vault.core.kdf import derive_ahead, derive_kek  # (Argon2id itself, and running it early)

MAGIC_VAULT = b"KWVAULT\x00"
MAGIC_BUNDLE = b"KWBUNDL\x00"
VERSION = 2  # what keyward writes
READ_VERSIONS = (1, 2)
KDF_ARGON2ID = 1

_COST = struct.Struct(">8sBBIII16s")  # magic .. salt: 38 bytes, the same in both versions
_GEN = struct.Struct(">Q12s")  # generation, payload nonce
_WRAPPED_LEN = 32 + 16
_COMMIT_LEN = 32
_MAC_LEN = 32
TAG_LEN = 16
CHECKSUM_LEN = 32
V1_HEADER_LEN = _COST.size + 12 + _WRAPPED_LEN + _GEN.size  # 118
V2_HEADER_LEN = _COST.size + _COMMIT_LEN + 12 + _WRAPPED_LEN + _GEN.size + _MAC_LEN  # 182
HEADER_LEN = V2_HEADER_LEN  # enough bytes to read either version's header
_HEADER_LEN = {1: V1_HEADER_LEN, 2: V2_HEADER_LEN}
_GEN_OFFSET = {1: 98, 2: 130}

# HKDF `info` strings of version 2: one key per purpose, never one key for two.
INFO_COMMIT = b"keyward v2 kek commitment"
INFO_WRAP = b"keyward v2 key wrap"
INFO_MAC = b"keyward v2 header mac"
INFO_PAYLOAD = b"keyward v2 payload"


def header_len(version: int) -> int:
    return _HEADER_LEN[version]


def min_file_len(version: int) -> int:
    """The shortest possible file: a header, an empty payload's tag, the checksum."""
    return _HEADER_LEN[version] + TAG_LEN + CHECKSUM_LEN


MIN_FILE_LEN = min_file_len(VERSION)


# The header's values are named tuples, not dataclasses: immutable, compared by value,
# and cheap to define.  A cold command imports this module before it starts the KDF,
# where `dataclasses` (which imports `inspect`) and its generated methods cost about 10 ms
# that nothing overlapped.


class KdfParams(namedtuple("KdfParams", ("iterations", "memory_kib", "parallelism"), defaults=(3, 64 * 1024, 4))):
    """Argon2id cost (iterations: int, memory_kib: int, parallelism: int).  The default
    is RFC 9106's second recommended option."""

    __slots__ = ()

    # Below the floor a vault is too cheap to brute-force; above the ceiling no file is
    # ever valid (no flag goes past it).  Between the two, a KdfBudget decides.
    FLOOR = (1, 8 * 1024, 1)
    CEILING = (64, 4 * 1024 * 1024, 64)

    def check(self) -> None:
        if not self.within_bounds():
            (t0, m0, p0), (t1, m1, p1) = self.FLOOR, self.CEILING
            raise UnsafeKdfParameters(
                f"Argon2id parameters t={self.iterations}, m={self.memory_kib} KiB, p={self.parallelism} "
                "are outside the accepted range",
                hint=f"use t {t0}-{t1}, memory {m0 // 1024} MiB-{m1 // 1024 // 1024} GiB, parallelism {p0}-{p1} "
                "and at least 8 KiB of memory per lane",
            )

    def within_bounds(self) -> bool:
        t, m, p = self.iterations, self.memory_kib, self.parallelism
        (t0, m0, p0), (t1, m1, p1) = self.FLOOR, self.CEILING
        return t0 <= t <= t1 and m0 <= m <= m1 and p0 <= p <= p1 and m >= 8 * p

    def weaker_than(self, other: KdfParams) -> bool:
        return self.iterations < other.iterations or self.memory_kib < other.memory_kib

    def describe(self) -> str:
        return f"Argon2id t={self.iterations} m={self.memory_kib // 1024} MiB p={self.parallelism}"


DEFAULT_KDF = KdfParams()


class KdfBudget(namedtuple("KdfBudget", ("max_memory_kib", "max_work_kib", "name"), defaults=("vault",))):
    """How much one derivation may cost: memory alone (max_memory_kib: int), and memory x
    iterations (max_work_kib: int, in KiB-passes; the time a derivation takes grows with
    it), for a `name` ("vault" or "bundle").  Checked on the header's numbers before
    Argon2id runs, so a crafted file costs nothing to refuse."""

    __slots__ = ()

    def allows(self, kdf: KdfParams) -> bool:
        return kdf.memory_kib <= self.max_memory_kib and kdf.memory_kib * kdf.iterations <= self.max_work_kib

    def check(self, kdf: KdfParams, *, override: str) -> None:
        if self.allows(kdf):
            return
        mib, work = kdf.memory_kib // 1024, kdf.memory_kib * kdf.iterations // 1024
        raise KdfCostRefused(
            f"this {self.name} asks Argon2id for {mib} MiB of memory x {kdf.iterations} iterations "
            f"({work} MiB-passes), over the {self.name} budget of {self.max_memory_kib // 1024} MiB and "
            f"{self.max_work_kib // 1024} MiB-passes; nothing was derived",
            hint=override,
        )


# The user's own vault: 2 GiB of memory, 16 GiB-passes (t=8 at 2 GiB, t=64 at 256 MiB);
# the default costs 192.  A bundle arrives from elsewhere: 1 GiB and 4 GiB-passes.
VAULT_BUDGET = KdfBudget(2 * 1024 * 1024, 16 * 1024 * 1024, "vault")
BUNDLE_BUDGET = KdfBudget(1024 * 1024, 4 * 1024 * 1024, "bundle")


_HEADER_FIELDS = ("magic", "kdf", "salt", "wrap_nonce", "wrapped_key", "generation", "payload_nonce", "version", "commitment")


class Header(namedtuple("Header", _HEADER_FIELDS, defaults=(VERSION, b""))):
    """Everything before the payload: magic (bytes), kdf (KdfParams), salt, wrap_nonce,
    wrapped_key (bytes), generation (int), payload_nonce (bytes), version (int) and
    commitment (bytes, empty in v1).  `wrapped_key` is the sealed data key; in version 2
    `commitment` binds the file to one passphrase-derived key.  The header MAC is not
    kept here: `seal` computes it and `open_payload` checks it.  A changed copy comes from
    `replace`."""

    __slots__ = ()

    @property
    def length(self) -> int:
        return _HEADER_LEN[self.version]

    def cost_bytes(self) -> bytes:
        k = self.kdf
        return _COST.pack(self.magic, self.version, KDF_ARGON2ID, k.iterations, k.memory_kib, k.parallelism, self.salt)

    def wrap_aad(self) -> bytes:
        """The key wrap's associated data: bytes[0:50] in v1, bytes[0:82] in v2."""
        if self.version == 1:
            return self.cost_bytes() + self.wrap_nonce
        return self.cost_bytes() + self.commitment + self.wrap_nonce

    def encode(self) -> bytes:
        """The header without the v2 MAC: bytes[0:118] in v1, bytes[0:150] in v2."""
        return self.wrap_aad() + self.wrapped_key + _GEN.pack(self.generation, self.payload_nonce)


def replace(header: Header, **changes) -> Header:
    """A copy of `header` with `changes` (as dataclasses.replace would make it)."""
    return header._replace(**changes)


def hkdf(ikm: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) with no salt and 32 bytes of output: one HMAC to extract,
    one to expand."""
    from vault.core.digest import hmac_sha256

    return hmac_sha256(hmac_sha256(b"\x00" * 32, ikm), info + b"\x01")


def _hmac(key: bytes, data: bytes) -> bytes:
    # (vault.core.digest, and with it cryptography, is imported where first used: a cold
    # command loads cryptography while the KDF runs, see `unlock_ahead`)
    from vault.core.digest import hmac_sha256

    return hmac_sha256(key, data)


def _aead(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _commitment(kek: bytes, header: Header) -> bytes:
    return _hmac(hkdf(kek, INFO_COMMIT), header.cost_bytes())


def wrap_key(magic: bytes, kek: bytes, data_key: bytes, kdf: KdfParams, salt: bytes, *, generation: int = 0) -> Header:
    """A version-2 header (no payload nonce yet) holding `data_key` sealed under `kek`."""
    partial = Header(magic, kdf, salt, os.urandom(12), b"", generation, b"", VERSION, b"")
    partial = replace(partial, commitment=_commitment(kek, partial))
    wrapped = _aead(hkdf(kek, INFO_WRAP)).encrypt(partial.wrap_nonce, data_key, partial.wrap_aad())
    return replace(partial, wrapped_key=wrapped)


def upgrade(header: Header, kek: bytes, data_key: bytes) -> Header:
    """The version-2 header for a version-1 file's data key (same salt and KDF cost, so
    the same passphrase opens it); its generation is kept."""
    return wrap_key(header.magic, kek, data_key, header.kdf, header.salt, generation=header.generation)


def _wrong_passphrase() -> WrongPassphrase:
    return WrongPassphrase("wrong passphrase", hint="try again; the vault file was not changed")


def unwrap_key(header: Header, kek: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    from vault.core.digest import equal

    wrong = _wrong_passphrase()
    if header.version == 1:
        try:
            return _aead(kek).decrypt(header.wrap_nonce, header.wrapped_key, header.wrap_aad())
        except InvalidTag:
            raise wrong from None
    if not equal(_commitment(kek, header), header.commitment):
        raise wrong
    try:
        return _aead(hkdf(kek, INFO_WRAP)).decrypt(header.wrap_nonce, header.wrapped_key, header.wrap_aad())
    except InvalidTag:
        # The passphrase is proved by the commitment: the wrap itself was altered.
        raise CorruptVault(
            "the vault's key wrap failed authentication although the passphrase is right (tampered with)",
            hint="restore the .bak file",
        ) from None


def seal(header: Header, data_key: bytes, plaintext: bytes, generation: int) -> bytes:
    """The complete file for `plaintext`, with a fresh payload nonce, in `header`'s version
    (a v1 header is upgraded by whoever holds the passphrase: see `upgrade`)."""
    h = replace(header, generation=generation, payload_nonce=os.urandom(12))
    head = h.encode()
    if h.version == 1:
        key = data_key
    else:
        head += _hmac(hkdf(data_key, INFO_MAC), head)
        key = hkdf(data_key, INFO_PAYLOAD)
    body = head + _aead(key).encrypt(h.payload_nonce, plaintext, head)
    from vault.core.digest import sha256

    return body + sha256(body)


def parse(blob: bytes, *, expect_magic: bytes = MAGIC_VAULT) -> Header:
    """Check the framing and the checksum, and decode the header.  No key needed.

    The order of checks is the spec's: magic, version, kind, length, checksum, KDF id,
    KDF bounds."""
    if len(blob) < 9 or blob[:8] not in (MAGIC_VAULT, MAGIC_BUNDLE):
        raise CorruptVault("not a keyward vault (bad magic bytes)", hint="check the path, or restore the .bak file")
    version = blob[8]
    if version not in READ_VERSIONS:
        raise UnsupportedVersion(
            f"vault format version {version} is not supported by this keyward (it reads versions "
            f"{', '.join(map(str, READ_VERSIONS))})",
            hint="upgrade keyward",
        )
    if blob[:8] != expect_magic:
        kind = "an export bundle" if blob[:8] == MAGIC_BUNDLE else "a vault"
        raise CorruptVault(f"this file is {kind}, not what was expected", hint="use `keyward import` for bundles")
    if len(blob) < min_file_len(version):
        raise CorruptVault("the vault file is truncated", hint="restore it from the .bak file beside it")
    from vault.core.digest import equal, sha256

    if not equal(sha256(blob[:-CHECKSUM_LEN]), blob[-CHECKSUM_LEN:]):
        raise CorruptVault("the vault file is damaged (checksum mismatch)", hint="restore it from the .bak file beside it")
    return parse_header(blob)


def parse_header(blob: bytes) -> Header:
    magic, version, kdf, salt = _read_cost(blob)
    kdf.check()
    off = _COST.size
    commitment = b""
    if version == 2:
        commitment, off = blob[off : off + _COMMIT_LEN], off + _COMMIT_LEN
    wrap_nonce, off = blob[off : off + 12], off + 12
    wrapped, off = blob[off : off + _WRAPPED_LEN], off + _WRAPPED_LEN
    generation, payload_nonce = _GEN.unpack_from(blob, off)
    return Header(magic, kdf, salt, wrap_nonce, wrapped, generation, payload_nonce, version, commitment)


def _read_cost(blob: bytes) -> tuple[bytes, int, KdfParams, bytes]:
    """Magic, version, KDF cost and salt: the first 38 bytes, alike in both versions."""
    magic, version, kdf_id, t, m, p, salt = _COST.unpack_from(blob, 0)
    if kdf_id != KDF_ARGON2ID:
        raise CorruptVault(f"unknown key-derivation function id {kdf_id}", hint="restore the .bak file")
    return magic, version, KdfParams(t, m, p), salt


def peek_cost(blob_head: bytes) -> tuple[KdfParams, bytes] | None:
    """The KDF cost and salt from a vault file's first bytes, unchecked (no checksum, no
    bounds): None if they are not a readable vault's.  For choosing a budget and for
    starting the KDF early; `parse` checks everything before a key is used."""
    if len(blob_head) < _COST.size or blob_head[:8] != MAGIC_VAULT or blob_head[8] not in READ_VERSIONS:
        return None
    try:
        _magic, _version, kdf, salt = _read_cost(blob_head)
    except KeywardError:
        return None
    return kdf, salt


def peek_generation(blob_head: bytes) -> int | None:
    """The generation counter from a file's first bytes, unauthenticated: a hint that
    someone else saved, confirmed later by decrypting."""
    if len(blob_head) < 9 or blob_head[:8] not in (MAGIC_VAULT, MAGIC_BUNDLE) or blob_head[8] not in _GEN_OFFSET:
        return None
    off = _GEN_OFFSET[blob_head[8]]
    if len(blob_head) < off + 8:
        return None
    return int.from_bytes(blob_head[off : off + 8], "big")


def open_payload(blob: bytes, header: Header, data_key: bytes) -> bytes:
    """The plaintext payload, with the data key alone (no passphrase): in version 2 the
    header MAC is checked first, so no header byte is trusted unauthenticated."""
    from cryptography.exceptions import InvalidTag

    from vault.core.digest import equal

    n = header.length
    failed = CorruptVault(
        "the vault payload failed authentication (tampered with, or sealed with another key)",
        hint="restore the .bak file",
    )
    if header.version == 1:
        key = data_key
    else:
        if not equal(_hmac(hkdf(data_key, INFO_MAC), blob[: n - _MAC_LEN]), blob[n - _MAC_LEN : n]):
            raise failed
        key = hkdf(data_key, INFO_PAYLOAD)
    try:
        return _aead(key).decrypt(header.payload_nonce, blob[n:-CHECKSUM_LEN], blob[:n])
    except InvalidTag:
        raise failed from None


def budget_hint(budget: KdfBudget) -> str:
    if budget.name == "bundle":
        return ("nothing was imported; ask for a new export, or set KEYWARD_ALLOW_KDF_COST=1 for this import "
                "if you trust where it came from")
    return "if you chose that cost, set KEYWARD_ALLOW_KDF_COST=1 for one open (keyward then remembers it for this vault)"


def decrypt(
    blob: bytes, passphrase: str, *, expect_magic: bytes = MAGIC_VAULT, budget: KdfBudget | None = VAULT_BUDGET
) -> tuple[Header, bytes, bytes]:
    """Whole-file decryption: returns (header, data key, plaintext payload).  The header is
    the file's own (v1 stays v1); `unlock` also returns the header to save with."""
    header, data_key, plaintext, _kek = _decrypt(blob, passphrase, expect_magic, budget)
    return header, data_key, plaintext


def unlock(
    blob: bytes, passphrase: str, *, expect_magic: bytes = MAGIC_VAULT, budget: KdfBudget | None = VAULT_BUDGET
) -> tuple[Header, bytes, bytes, int]:
    """Like `decrypt`, but the header returned is the one to save with: a v1 file's is
    upgraded to v2 here, while the key-encryption key is at hand.  Returns (header,
    data key, plaintext, the version that was read)."""
    header, data_key, plaintext, kek = _decrypt(blob, passphrase, expect_magic, budget)
    read = header.version
    if read != VERSION:
        header = upgrade(header, kek, data_key)
    return header, data_key, plaintext, read


def unlock_ahead(blob: bytes, passphrase: str, *, budget: KdfBudget = VAULT_BUDGET) -> None:
    """Start the KDF that `unlock(blob, passphrase)` will need on a thread of its own
    (vault.core.kdf.derive_ahead), then load the ciphers while it runs: a cold command
    calls this as soon as it has the passphrase, and loads its own code meanwhile.

    Only the cost and salt are read here (the checksum needs SHA-256, which is among what
    loads meanwhile).  A vault of an unknown version or KDF, or a cost out of bounds or
    over `budget`, starts nothing; whatever else is wrong with the file, `unlock` reports
    before it would use the key."""
    cost = peek_cost(blob)
    if cost is None or not cost[0].within_bounds() or not budget.allows(cost[0]):
        return
    derive_ahead(passphrase, cost[1], cost[0])
    from cryptography.exceptions import InvalidTag  # noqa: F401 - cryptography's import is ~10 ms
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: F401


def _decrypt(blob: bytes, passphrase: str, expect_magic: bytes, budget: KdfBudget | None):
    header = parse(blob, expect_magic=expect_magic)
    if budget is not None:
        budget.check(header.kdf, override=budget_hint(budget))
    kek = derive_kek(passphrase, header.salt, header.kdf)
    data_key = unwrap_key(header, kek)
    try:
        plaintext = open_payload(blob, header, data_key)
    except CorruptVault:
        if header.version == 1:
            # v1 has no commitment: a key wrap crafted to authenticate under several
            # passphrases' keys unwraps a wrong data key for all but one.  Answering that
            # exactly as a wrong passphrase leaves the crafter no oracle (13 vs 14).
            raise _wrong_passphrase() from None
        raise
    return header, data_key, plaintext, kek


def encrypt_new(plaintext: bytes, passphrase: str, kdf: KdfParams, *, magic: bytes = MAGIC_VAULT) -> tuple[Header, bytes, bytes]:
    """A brand-new file: fresh salt and data key.  Returns (header, data key, file bytes)."""
    kdf.check()
    salt, data_key = os.urandom(16), os.urandom(32)
    header = wrap_key(magic, derive_kek(passphrase, salt, kdf), data_key, kdf, salt)
    blob = seal(header, data_key, plaintext, 1)
    return parse_header(blob), data_key, blob
