"""The unlocked vault: the one service layer the CLI, the dashboard and the agent share.

Every change goes through `transact()`: take the file lock, reload if another process
saved since we loaded (the dashboard open while a CLI call adds an account), apply the
change to the fresh data, save atomically.  A change is a function, so it can be
re-applied to whatever is on disk instead of overwriting it: no lost updates.
"""

from __future__ import annotations

import gc
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from vault.core import audit
from vault.core import fileformat as ff
from vault.core.errors import (
    AccountExists,
    AccountNotFound,
    CorruptVault,
    KeywardError,
    VaultBusy,
    UnsupportedVersion,
    VaultChanged,
    VaultExists,
    VaultLocked,
    VaultRolledBack,
)
from vault.core.model import SCHEMA_VERSION, Account, AuditEntry, VaultData, _flat
from vault.core.storage import SeenStore, VaultFile, read_regular, warn, write_private

# Set to 1 to open a vault whose Argon2id cost is over fileformat.VAULT_BUDGET (one
# open; keyward then remembers the accepted cost for that vault path).
ALLOW_KDF_COST_ENV = "KEYWARD_ALLOW_KDF_COST"

T = TypeVar("T")
Clock = Callable[[], float]


@contextmanager
def _no_collector_pauses() -> Iterator[None]:
    """Building or taking apart the whole vault makes tens of thousands of dicts and
    objects at once, none of them in a cycle; each batch of allocations wakes Python's
    cyclic collector, which then walks everything alive.  At 10,000 accounts that was
    half of an open.  Plain reference counting still frees all of it; the collector
    resumes afterwards (unless someone else had switched it off).

    Resumed as it was, the collector found everything just built in its youngest
    generation, over its threshold, and walked it all at the next allocation: 25 ms of
    an open at 10,000 accounts, in every process that keeps it on (the agent, the
    dashboard, the Python API).  What was built is long-lived, so it goes straight to
    the oldest generation: gc.freeze() then gc.unfreeze() moves every tracked object
    there (documented behaviour) and starts the young count afresh.  Not if something
    else has frozen objects: unfreezing would undo that."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def encode_payload(data: VaultData, audit_texts: AuditTexts | None = None) -> bytes:
    """The payload: compact JSON of `data.to_dict()`.  With `audit_texts` (a service's
    own, kept between its saves), each audit entry already encoded by an earlier save is
    reused: the same bytes, without encoding the whole trail again."""
    with _no_collector_pauses():
        if audit_texts is None:
            return json.dumps(data.to_dict(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        text = json.dumps(data.to_dict(with_audit=False), separators=(",", ":"), ensure_ascii=False)
        # (the trail comes last in to_dict: it is spliced in before the closing "}")
        return (text[:-1] + ',"audit":[' + ",".join(audit_texts.encode(data.audit)) + "]}").encode("utf-8")


class AuditTexts:
    """The JSON text of each audit entry, as the last save wrote it.

    Every save rewrites the whole trail (up to audit.MAX_ENTRIES entries), and a bot's
    `keyward token` through the agent makes one save per call: encoding 10,000 entries
    was 26 of the 37 ms such a save took.  The entries are appended and never changed,
    so a save encodes only the new ones.  An entry's text is reused only for the very
    same object at the same place, holding exactly the values it was encoded from."""

    def __init__(self) -> None:
        self._kept: list[tuple[AuditEntry, dict[str, Any], str]] = []

    def encode(self, entries: list[AuditEntry]) -> list[str]:
        kept, fresh, texts = self._kept, [], []
        for i, entry in enumerate(entries):
            if i < len(kept):
                old = kept[i]
                if old[0] is entry and old[1] == entry.__dict__:
                    fresh.append(old)
                    texts.append(old[2])
                    continue
            values = _flat(entry)  # (a copy: compared with the entry at the next save)
            text = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
            fresh.append((entry, values, text))
            texts.append(text)
        self._kept = fresh
        return texts


def decode_payload(plaintext: bytes) -> VaultData:
    with _no_collector_pauses():
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


def audit_head(data: VaultData) -> str:
    return data.audit[-1].digest if data.audit else audit.GENESIS


@dataclass
class KeyChange:
    """What `change_passphrase` / `rekey` did to the files beside the vault."""

    resealed: list[Path] = field(default_factory=list)  # re-sealed under the new key
    left: list[Path] = field(default_factory=list)  # sealed under some other key: keyward cannot tell what they hold


READ_RACE_TRIES = 50  # re-reads after a concurrent save; each is a file read, no KDF


class _ReadRaced(VaultBusy):
    """The file changed between reading it and checking it against what was seen: read
    it again.  The opening paths here retry; anywhere else it is a typed "busy" error."""

    def __init__(self) -> None:
        super().__init__("the vault changed while it was being read", hint="retry in a moment")


class VaultService:
    """An unlocked vault.  Holds the data key (never the passphrase) while unlocked."""

    def __init__(self, vfile: VaultFile, header: ff.Header, data_key: bytes, data: VaultData, clock: Clock,
                 *, notify: Callable[[str], None] = warn) -> None:
        """`header` and `data` must be authenticated (decrypted) already.  Refuses a file
        older than one keyward has opened or written at this path (VaultRolledBack), so
        every face, the agent's included, gets the check by constructing the service."""
        self.file = vfile
        self.clock = clock
        self.notify = notify
        self.seen = SeenStore(vfile.path)
        self._high: tuple[int, str] | None = None  # the newest (generation, audit head) this process saw
        self.upgrading_from: int | None = None  # format version read, until the first save rewrites it
        self._check_not_older(header.generation, data)
        self._header = header
        self._key: bytes | None = data_key
        self._data: VaultData | None = data
        self._audit_texts = AuditTexts()  # the trail as this service last saved it
        self.generation = header.generation
        self._remember(header.generation, data)

    def __repr__(self) -> str:
        return f"VaultService(path={str(self.file.path)!r}, generation={self.generation}, locked={self._key is None})"

    # --- opening ---------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: Path, passphrase: str, kdf: ff.KdfParams = ff.DEFAULT_KDF, *, clock: Clock = time.time,
        allow_kdf_cost: bool = False,
    ) -> VaultService:
        """A new vault.  A KDF cost over the vault budget needs `allow_kdf_cost` (and is
        then remembered for this path, so opening it later needs nothing more)."""
        kdf.check()
        if not allow_kdf_cost:
            ff.VAULT_BUDGET.check(kdf, override="choose a lower cost, or pass --allow-kdf-cost if you mean it")
        vfile = VaultFile(path)
        with vfile.locked():
            if vfile.exists():
                raise VaultExists(f"a vault already exists at {path}", hint="use it, or pass another --vault path")
            data = VaultData()
            header, key, blob = ff.encrypt_new(encode_payload(data), passphrase, kdf)
            vfile.write(blob)
            # A new vault at this path starts a new history: what was seen here before is
            # another vault's (init is deliberate, as restore is).
            SeenStore(vfile.path).put(1, audit_head(data), force=True, now=clock(),
                                      kdf=_kdf_tuple(kdf) if allow_kdf_cost else None)
        return cls(vfile, header, key, data, clock)

    @classmethod
    def unlock(cls, path: Path, passphrase: str, *, clock: Clock = time.time, allow_kdf_cost: bool = False,
               notify: Callable[[str], None] = warn) -> VaultService:
        """Open with the passphrase.  A v1 file gets its v2 header here (the
        key-encryption key is at hand only now) and is rewritten as v2 by the first save."""
        vfile = VaultFile(path)
        blob = vfile.read()
        seen = SeenStore(vfile.path)
        allow = allow_kdf_cost or os.environ.get(ALLOW_KDF_COST_ENV) == "1"
        budget = None if allow else ff.VAULT_BUDGET
        if budget is not None:
            # (the cost unchecked, as the first bytes say it: ff.unlock checks the file,
            # and the checksum over all of it is computed there, once)
            cost = ff.peek_cost(blob)
            if cost is not None and seen.accepted_kdf() == _kdf_tuple(cost[0]):
                budget = None  # this user accepted this cost for this vault before
        header, key, plaintext, read_version = ff.unlock(blob, passphrase, budget=budget)
        for _ in range(READ_RACE_TRIES):
            try:
                service = cls(vfile, header, key, decode_payload(plaintext), clock, notify=notify)
                break
            except _ReadRaced:
                # Another process saved while we derived the key: its file opens with the
                # same data key (a re-key would fail here as CorruptVault), no KDF again.
                blob = vfile.read()
                fresh = ff.parse(blob)
                plaintext = ff.open_payload(blob, fresh, key)
                header = fresh if fresh.version == header.version else ff.replace(header, generation=fresh.generation)
        else:
            raise VaultBusy(f"{vfile.path} kept changing while it was read",
                            hint="another keyward is saving it again and again; retry in a moment")
        if read_version != ff.VERSION:
            service.upgrading_from = read_version
        if allow and not ff.VAULT_BUDGET.allows(header.kdf):
            seen.put(service.generation, audit_head(service.data), kdf=_kdf_tuple(header.kdf), now=clock())
        return service

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
        for _ in range(READ_RACE_TRIES):
            if not self.changed_on_disk():
                return False
            try:
                self._load(self.file.read())
                return True
            except _ReadRaced:
                continue  # another process saved between our read and our check: read again
        raise VaultBusy(f"{self.file.path} kept changing while it was read",
                        hint="another keyward is saving it again and again; retry in a moment")

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
        data = decode_payload(plaintext)
        self._check_not_older(header.generation, data)
        if header.version < self._header.version and (header.salt, header.kdf) == (self._header.salt, self._header.kdf):
            # A process holding only the data key (the agent on a v1 vault) saved v1; the
            # v2 header this process made from the passphrase still fits the same key.
            header = ff.replace(self._header, generation=header.generation)
            self.upgrading_from = self.upgrading_from or 1
        self._header, self._data, self.generation = header, data, header.generation
        self._remember(header.generation, data)

    # --- rollback detection ------------------------------------------------------------

    def _check_not_older(self, generation: int, data: VaultData) -> None:
        """Refuse a file older than the newest keyward has seen at this path: in this
        process (`_high`), or in any (the SeenStore in the state directory)."""
        head = audit_head(data)
        record = self.seen.get()
        known = [self._high] if self._high else []
        if record is not None:
            known.append((record["generation"], record["audit_head"]))
        for seen_gen, seen_head in known:
            older = generation < seen_gen or (generation == seen_gen and head != seen_head)
            if older and ff.peek_generation(self.file.read_head(ff.HEADER_LEN)) != generation:
                # What we read is already gone: another process saved (and recorded its
                # newer generation) between our read and this check.  Not a rollback.
                raise _ReadRaced()
            if generation < seen_gen:
                raise VaultRolledBack(
                    f"{self.file.path} holds generation {generation}, older than generation {seen_gen} keyward "
                    "already opened or wrote there (an older copy or a .bak was put in its place); nothing was read from it",
                    hint=f"if you mean to go back to it, `keyward restore {self.file.path}` says what would be lost and does it",
                )
            if generation == seen_gen and head != seen_head:
                raise VaultRolledBack(
                    f"{self.file.path} holds a generation {generation} with another history than the generation "
                    f"{generation} keyward saw there (audit head {head[:12]}, not {seen_head[:12]}); nothing was read from it",
                    hint=f"if you mean to use this file, `keyward restore {self.file.path}` says what would be lost and does it",
                )

    def _remember(self, generation: int, data: VaultData) -> None:
        head = audit_head(data)
        if self._high is None or generation >= self._high[0]:
            self._high = (generation, head)
        self.seen.put(generation, head, now=self.clock())

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
        if self._key is None:
            raise VaultLocked("the vault is locked", hint="unlock it again")
        blob = ff.seal(self._header, self._key, encode_payload(self.data, self._audit_texts), self.generation + 1)
        self.file.write(blob)
        self._header = ff.parse_header(blob)
        self.generation = self._header.generation
        self._remember(self.generation, self.data)
        if self.upgrading_from is not None and self._header.version == ff.VERSION:
            self.upgrading_from = None
            self.notify(
                f"keyward: rewrote {self.file.path} in vault format v{ff.VERSION} (key commitment, header MAC); "
                f"keyward releases that read only v1 cannot open it, and {self.file.bak_path.name} keeps the v1 file"
            )

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

    def change_passphrase(self, new_passphrase: str, kdf: ff.KdfParams | None = None, *,
                          allow_kdf_cost: bool = False) -> KeyChange:
        """A new passphrase *and a new data key*: whoever learned the old passphrase, or the
        data key it unwrapped, opens nothing keyward saves from now on.  The `.bak` and any
        rescue files that the old key opens are re-sealed under the new one."""
        return self._replace_key(new_passphrase, kdf, "passwd", allow_kdf_cost)

    def rekey(self, passphrase: str, kdf: ff.KdfParams | None = None, *, allow_kdf_cost: bool = False) -> KeyChange:
        """A new data key and a full re-encryption (after a suspected key exposure)."""
        return self._replace_key(passphrase, kdf, "rekey", allow_kdf_cost)

    def _replace_key(self, passphrase: str, kdf: ff.KdfParams | None, action: str, allow_kdf_cost: bool) -> KeyChange:
        kdf = kdf or self._header.kdf
        kdf.check()
        allow_kdf_cost = allow_kdf_cost or os.environ.get(ALLOW_KDF_COST_ENV) == "1"
        if not allow_kdf_cost and not ff.VAULT_BUDGET.allows(kdf) and self.seen.accepted_kdf() != _kdf_tuple(kdf):
            ff.VAULT_BUDGET.check(kdf, override=f"nothing was changed; pass --upgrade-kdf for the default cost, or set "
                                                f"{ALLOW_KDF_COST_ENV}=1 if you mean it")
        salt, new_key = os.urandom(16), os.urandom(32)
        header = ff.wrap_key(ff.MAGIC_VAULT, ff.derive_kek(passphrase, salt, kdf), new_key, kdf, salt)
        old_key = self._key

        def change(data: VaultData) -> None:
            self._header, self._key = header, new_key
            self.audit(data, action, None)

        self.transact(change)
        if allow_kdf_cost and not ff.VAULT_BUDGET.allows(kdf):
            self.seen.put(self.generation, audit_head(self.data), kdf=_kdf_tuple(kdf), now=self.clock())
        assert old_key is not None
        return self._reseal_leftovers(old_key)

    def leftover_paths(self) -> list[Path]:
        """Files keyward writes beside the vault that hold a whole vault: the `.bak` and
        rescue files (vault/ops/rotation.py)."""
        path = self.file.path
        found = [self.file.bak_path] + sorted(path.parent.glob(f"{path.name}.rescue-*"))
        return [p for p in found if p.is_file() and not p.is_symlink()]

    def _reseal_leftovers(self, old_key: bytes) -> KeyChange:
        """Re-seal, under the current header and key, every leftover the old key opens;
        keep each one's content and generation (a .bak stays the previous generation)."""
        report = KeyChange()
        assert self._key is not None
        with self.file.locked():
            for path in self.leftover_paths():
                try:
                    blob = read_regular(path)
                    header = ff.parse(blob)
                except KeywardError:
                    report.left.append(path)
                    continue
                try:
                    ff.open_payload(blob, header, self._key)
                    continue  # already under the new key (a save since)
                except CorruptVault:
                    pass
                try:
                    plaintext = ff.open_payload(blob, header, old_key)
                except CorruptVault:
                    report.left.append(path)
                    continue
                write_private(path, ff.seal(self._header, self._key, plaintext, header.generation))
                report.resealed.append(path)
        return report

    def lock(self) -> None:
        """Drop the decrypted state.  Python cannot wipe memory; we drop every reference."""
        self._key = None
        self._data = None
        self._audit_texts = AuditTexts()

    @property
    def locked(self) -> bool:
        return self._key is None


def _kdf_tuple(kdf: ff.KdfParams) -> tuple[int, int, int]:
    return (kdf.iterations, kdf.memory_kib, kdf.parallelism)


# --- restoring an older file on purpose ------------------------------------------------------


@dataclass
class OpenedFile:
    """A vault file decrypted for `keyward restore`, without the rollback check (an older
    file is what restore is for)."""

    path: Path
    header: ff.Header
    key: bytes
    data: VaultData

    @property
    def generation(self) -> int:
        return self.header.generation


def open_for_restore(path: Path, passphrase: str) -> OpenedFile:
    vfile = VaultFile(path)
    header, key, plaintext, _read = ff.unlock(vfile.read(), passphrase)
    return OpenedFile(vfile.path, header, key, decode_payload(plaintext))


@dataclass
class RestoreLoss:
    """What making `source` the vault loses, against what is there now (`current`, when
    it could be read) and what keyward last saw there (`seen_generation`)."""

    lost_accounts: list[str]
    returning_accounts: list[str]
    changed_accounts: list[str]
    lost_audit_entries: int
    seen_generation: int | None

    @classmethod
    def between(cls, vault_path: Path, source: OpenedFile, current: OpenedFile | None) -> RestoreLoss:
        record = SeenStore(vault_path).get()
        seen = record["generation"] if record else None
        if current is None:
            return cls([], [], [], 0, seen)
        have = {a.label: a for a in current.data.accounts}
        back = {a.label: a for a in source.data.accounts}
        kept_digests = {e.digest for e in source.data.audit}
        return cls(
            lost_accounts=sorted(set(have) - set(back)),
            returning_accounts=sorted(set(back) - set(have)),
            changed_accounts=sorted(k for k in set(have) & set(back)
                                    if (have[k].fields, have[k].base_url) != (back[k].fields, back[k].base_url)),
            lost_audit_entries=sum(1 for e in current.data.audit if e.digest not in kept_digests),
            seen_generation=seen,
        )


def apply_restore(vault_path: Path, source: OpenedFile, current: OpenedFile | None, loss: RestoreLoss,
                  *, clock: Clock = time.time) -> int:
    """Write `source`'s content as the vault's next generation (above every generation on
    disk, in `current` and remembered), audited as "restore", and record it as the newest
    seen.  Sealed under the current vault's passphrase and key when it could be opened (a
    restore never brings back a passphrase that `passwd` replaced), else under the source's.
    Returns the new generation."""
    vfile = VaultFile(vault_path)
    with vfile.locked():
        on_disk = ff.peek_generation(vfile.read_head(ff.HEADER_LEN))
        if current is not None and on_disk != current.generation:
            raise VaultChanged("the vault was saved by another keyward process while restore was asking",
                               hint="nothing was restored; run `keyward restore` again to see what it would lose now")
        record = SeenStore(vfile.path).get()
        generation = max(source.generation, on_disk or 0, current.generation if current else 0,
                         record["generation"] if record else 0) + 1
        header, key = (current.header, current.key) if current is not None else (source.header, source.key)
        data = decode_payload(encode_payload(source.data))  # a copy
        dropped = ", ".join(loss.lost_accounts[:5]) + (" ..." if len(loss.lost_accounts) > 5 else "")
        detail = (f"restored {source.path.name} (generation {source.generation}) over generation "
                  f"{current.generation if current else on_disk}; dropped {len(loss.lost_accounts)} accounts"
                  f"{' (' + dropped + ')' if dropped else ''} and {loss.lost_audit_entries} audit entries")
        if current is not None:
            detail += f"; the replaced audit head was {audit_head(current.data)[:16]}"
        audit.append(data, clock(), "restore", None, "ok", detail[:400])
        blob = ff.seal(header, key, encode_payload(data), generation)
        vfile.write(blob)
        SeenStore(vfile.path).put(generation, audit_head(data), force=True, now=clock())
    return generation
