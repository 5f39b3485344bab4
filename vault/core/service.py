"""The unlocked vault: the one service layer the CLI, the dashboard and the agent share.

Every change goes through `transact()`: take the file lock, reload if another process
saved since we loaded (the dashboard open while a CLI call adds an account), apply the
change to the fresh data, save atomically.  A change is a function, so it can be
re-applied to whatever is on disk instead of overwriting it: no lost updates.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, TypeVar

from vault.core import audit
from vault.core import fileformat as ff
from vault.core.errors import (
    AccountExists,
    AccountNotFound,
    CorruptVault,
    UnsupportedVersion,
    VaultChanged,
    VaultExists,
    VaultLocked,
)
from vault.core.model import SCHEMA_VERSION, Account, VaultData
from vault.core.storage import VaultFile

T = TypeVar("T")
Clock = Callable[[], float]


def encode_payload(data: VaultData) -> bytes:
    return json.dumps(data.to_dict(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_payload(plaintext: bytes) -> VaultData:
    try:
        raw = json.loads(plaintext)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptVault("the vault decrypted but its content is not valid JSON", hint="restore the .bak file") from None
    if not isinstance(raw, dict):
        raise CorruptVault("the vault content has the wrong shape", hint="restore the .bak file")
    if raw.get("schema", 0) > SCHEMA_VERSION:
        raise UnsupportedVersion(
            f"vault content schema {raw['schema']} is newer than this keyward understands",
            hint="upgrade keyward",
        )
    return VaultData.from_dict(raw)


class VaultService:
    """An unlocked vault.  Holds the data key (never the passphrase) while unlocked."""

    def __init__(self, vfile: VaultFile, header: ff.Header, data_key: bytes, data: VaultData, clock: Clock) -> None:
        self.file = vfile
        self.clock = clock
        self._header = header
        self._key: bytes | None = data_key
        self._data: VaultData | None = data
        self.generation = header.generation

    def __repr__(self) -> str:
        return f"VaultService(path={str(self.file.path)!r}, generation={self.generation}, locked={self._key is None})"

    # --- opening ---------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: Path, passphrase: str, kdf: ff.KdfParams = ff.DEFAULT_KDF, *, clock: Clock = time.time
    ) -> VaultService:
        vfile = VaultFile(path)
        with vfile.locked():
            if vfile.exists():
                raise VaultExists(f"a vault already exists at {path}", hint="use it, or pass another --vault path")
            data = VaultData()
            header, key, blob = ff.encrypt_new(encode_payload(data), passphrase, kdf)
            vfile.write(blob)
        return cls(vfile, ff.parse(blob), key, data, clock)

    @classmethod
    def unlock(cls, path: Path, passphrase: str, *, clock: Clock = time.time) -> VaultService:
        vfile = VaultFile(path)
        blob = vfile.read()
        header, key, plaintext = ff.decrypt(blob, passphrase)
        return cls(vfile, header, key, decode_payload(plaintext), clock)

    @property
    def kdf(self) -> ff.KdfParams:
        return self._header.kdf

    # --- reading ---------------------------------------------------------------------

    @property
    def data(self) -> VaultData:
        if self._data is None:
            raise VaultLocked("the vault is locked", hint="unlock it again")
        return self._data

    @property
    def accounts(self) -> list[Account]:
        return self.data.accounts

    def get(self, label: str) -> Account:
        acct = self.data.find(label)
        if acct is None:
            labels = [a.label for a in self.data.accounts]
            hint = f"known accounts: {', '.join(labels)}" if labels else "add one with `keyward add`"
            raise AccountNotFound(f"no account labelled {label!r}", hint=hint)
        return acct

    def changed_on_disk(self) -> bool:
        return ff.peek_generation(self.file.read_head(ff.HEADER_LEN)) != self.generation

    def reload(self) -> bool:
        """Pick up another process's save.  Returns True when something changed."""
        if not self.changed_on_disk():
            return False
        self._load(self.file.read())
        return True

    def _load(self, blob: bytes) -> None:
        if self._key is None:
            raise VaultLocked("the vault is locked", hint="unlock it again")
        header = ff.parse(blob)
        try:
            plaintext = ff.open_payload(blob, header, self._key)
        except CorruptVault:
            # Same checksum-valid file, but our data key no longer opens it: re-keyed.
            raise VaultChanged(
                "the vault was re-keyed by another keyward process", hint="unlock it again"
            ) from None
        self._header, self._data, self.generation = header, decode_payload(plaintext), header.generation

    # --- writing ---------------------------------------------------------------------

    def transact(self, change: Callable[[VaultData], T]) -> T:
        """Apply `change` to the freshest data under the lock and save; all or nothing."""
        with self.file.locked():
            self.reload()
            header, key = self._header, self._key
            try:
                result = change(self.data)
                self._save()
            except BaseException:
                # Drop the half-applied change (and any half-swapped key) by re-reading.
                self._header, self._key = header, key
                self._load(self.file.read())
                raise
            return result

    def _save(self) -> None:
        assert self._key is not None
        blob = ff.seal(self._header, self._key, encode_payload(self.data), self.generation + 1)
        self.file.write(blob)
        self._header = ff.parse_header(blob)
        self.generation = self._header.generation

    def audit(self, data: VaultData, action: str, account: str | None, outcome: str = "ok", detail: str = "") -> None:
        """Record an action inside the current transaction.  `detail` must hold no secret."""
        audit.append(data, self.clock(), action, account, outcome, detail)

    def record(self, action: str, account: str | None, outcome: str = "ok", detail: str = "") -> None:
        """An audit entry on its own (a reveal, a copy, a failed login), saved at once."""
        self.transact(lambda data: self.audit(data, action, account, outcome, detail))

    # --- accounts --------------------------------------------------------------------

    def add_account(self, account: Account) -> Account:
        account.created_at = account.created_at or self.clock()

        def change(data: VaultData) -> Account:
            if data.find(account.label) is not None:
                raise AccountExists(
                    f"an account labelled {account.label!r} already exists", hint="choose another label"
                )
            data.accounts.append(account)
            self.audit(data, "add", account.label)
            return account

        return self.transact(change)

    def remove_account(self, label: str) -> None:
        def change(data: VaultData) -> None:
            acct = data.find(label)
            if acct is None:
                raise AccountNotFound(f"no account labelled {label!r}", hint="see `keyward list`")
            data.accounts.remove(acct)
            self.audit(data, "remove", label)

        self.transact(change)

    def update_account(self, label: str, change: Callable[[Account], T]) -> T:
        def apply(data: VaultData) -> T:
            acct = data.find(label)
            if acct is None:
                raise AccountNotFound(f"no account labelled {label!r}", hint="see `keyward list`")
            return change(acct)

        return self.transact(apply)

    # --- keys ------------------------------------------------------------------------

    def change_passphrase(self, new_passphrase: str, kdf: ff.KdfParams | None = None) -> None:
        """Re-wrap the same data key under a new passphrase: no payload re-encryption
        with a new key, so it costs one KDF run whatever the vault's size."""
        kdf = kdf or self._header.kdf
        kdf.check()
        salt = os.urandom(16)
        kek = ff.derive_kek(new_passphrase, salt, kdf)

        def change(data: VaultData) -> None:
            assert self._key is not None
            self._header = ff.wrap_key(ff.MAGIC_VAULT, kek, self._key, kdf, salt)
            self.audit(data, "passwd", None)

        self.transact(change)

    def rekey(self, passphrase: str, kdf: ff.KdfParams | None = None) -> None:
        """A new data key and a full re-encryption (after a suspected key exposure)."""
        kdf = kdf or self._header.kdf
        salt, new_key = os.urandom(16), os.urandom(32)
        kek = ff.derive_kek(passphrase, salt, kdf)

        def change(data: VaultData) -> None:
            self._header = ff.wrap_key(ff.MAGIC_VAULT, kek, new_key, kdf, salt)
            self._key = new_key
            self.audit(data, "rekey", None)

        self.transact(change)

    def lock(self) -> None:
        """Drop the decrypted state.  Python cannot wipe memory; we drop every reference."""
        self._key = None
        self._data = None

    @property
    def locked(self) -> bool:
        return self._key is None
