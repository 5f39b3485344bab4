"""Argon2id, the one slow step of an unlock, and how a cold command starts it early.

A cold `keyward show` spends tens of milliseconds loading code and a tenth of a second
or more in Argon2id, which runs in C without holding the GIL.  Run one after the other,
they add up; `derive_ahead` starts the derivation on a thread of its own as soon as the
passphrase and the file's salt and cost are known, and the command loads the code that
will use the key meanwhile.  `derive_kek` then takes that result, but only for exactly
the same passphrase, salt and cost; anything else derives afresh.

The same thread answers Ctrl-C: the C call looks at no signal, so on the main thread a
Ctrl-C used to wait for the whole derivation.  The main thread now waits for the KDF's
thread in a join, which a signal interrupts (tests/test_kdf.py).
"""

from __future__ import annotations

import threading

from vault.core.errors import KdfCostRefused

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from vault.core.fileformat import KdfParams


def derive_kek(passphrase: str, salt: bytes, kdf: KdfParams) -> bytes:
    """The key-encryption key: Argon2id v1.3 (passphrase as UTF-8, salt) -> 32 bytes.
    Callers holding a file check its KdfBudget first (see fileformat.decrypt).  A
    derivation started by `derive_ahead` for the same inputs is waited for, not repeated;
    called on the main thread, it runs on a thread of its own all the same.  (A failed
    derivation is tried once more here, so that its error is raised here.)"""
    kdf.check()
    secret = passphrase.encode("utf-8")
    ahead = _take_ahead(secret, salt, kdf)
    if ahead is None and threading.current_thread() is threading.main_thread():
        # The C call looks at no signal: on the main thread a Ctrl-C would wait for the
        # whole derivation.  On a thread of its own (not the shared slot of derive_ahead),
        # the main thread waits in a join that a signal interrupts.
        own = _Ahead(secret, salt, kdf)
        own.thread.start()
        ahead = own.result()
    return ahead if ahead is not None else _argon2id(secret, salt, kdf)


def derive_ahead(passphrase: str, salt: bytes, kdf: KdfParams) -> None:
    """Start deriving the key for these inputs on a daemon thread and return at once.
    Only the latest one is kept; one nobody takes is left to finish (or to die with the
    process) and its result dropped.  The caller has checked the cost (within bounds and
    within its budget): this spends exactly what `derive_kek` would."""
    global _pending
    kdf.check()
    ahead = _Ahead(passphrase.encode("utf-8"), salt, kdf)
    with _lock:
        _pending = ahead
    ahead.thread.start()


def _argon2id(secret: bytes, salt: bytes, kdf: KdfParams) -> bytes:
    """Called through argon2-cffi-bindings (the C library argon2-cffi wraps, with its SSE2
    code on x86-64) rather than argon2-cffi's `hash_secret_raw`: the same call, without
    importing argon2-cffi's password-hashing layer and `platform`, which every unlock
    paid for.  tests/test_kdf.py checks it against argon2-cffi and against OpenSSL's
    Argon2id (through cryptography), and tests/vectors against stored files.  cffi
    releases the GIL for the call, so other threads run meanwhile."""
    from _argon2_cffi_bindings import ffi, lib

    out = ffi.new("uint8_t[]", 32)
    rc = lib.argon2_hash(kdf.iterations, kdf.memory_kib, kdf.parallelism, secret, len(secret), salt, len(salt),
                         out, 32, ffi.NULL, 0, lib.Argon2_id, lib.ARGON2_VERSION_13)
    if rc != lib.ARGON2_OK:  # the parameters passed check(): what is left is memory or threads
        reason = ffi.string(lib.argon2_error_message(rc)).decode("ascii", "replace")
        raise KdfCostRefused(f"Argon2id at {kdf.describe()} could not run here: {reason}",
                             hint="free some memory and retry, or open the vault on a machine with more")
    return bytes(ffi.buffer(out, 32))


class _Ahead:
    """One derivation running ahead of its caller."""

    def __init__(self, secret: bytes, salt: bytes, kdf: KdfParams) -> None:
        self.secret, self.salt, self.kdf = secret, salt, kdf
        self.kek: bytes | None = None  # None after a failure too: derive_kek then fails as usual
        self.thread = threading.Thread(target=self._run, name="keyward-kdf", daemon=True)

    def _run(self) -> None:
        try:
            self.kek = _argon2id(self.secret, self.salt, self.kdf)
        except Exception:  # noqa: BLE001 - reported by the derive_kek that finds no result
            self.kek = None

    def result(self) -> bytes | None:
        self.thread.join()  # (interrupted by Ctrl-C like any wait: the C call is not)
        self.secret = b""
        return self.kek

    def matches(self, secret: bytes, salt: bytes, kdf: KdfParams) -> bool:
        from vault.core.digest import equal

        return self.salt == salt and self.kdf == kdf and equal(self.secret, secret)


_lock = threading.Lock()
_pending: _Ahead | None = None


def _take_ahead(secret: bytes, salt: bytes, kdf: KdfParams) -> bytes | None:
    global _pending
    with _lock:
        ahead, _pending = _pending, None
    if ahead is None or not ahead.matches(secret, salt, kdf):
        return None
    return ahead.result()
