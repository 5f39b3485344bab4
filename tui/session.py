"""What the dashboard holds while the vault is unlocked, and nothing it holds after.

A `Session` wraps the unlocked `VaultService` and the `VenueOps` built on it, and keeps
the few things that exist only while the dashboard runs (rate-limit samples for the
sparklines).  Its methods are the service calls the screens make, run from thread
workers; they hold no business logic of their own.  `close()` is the lock: the service
drops its key and data, and the session drops every reference it had.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from vault.core.errors import VaultLocked
from vault.core.model import Account, Credentials, Health, Settings

if TYPE_CHECKING:  # pragma: no cover
    from vault.core.service import VaultService

Clock = Callable[[], float]
HISTORY = 120  # rate-limit samples kept per account for the sparkline


class Session:
    def __init__(self, service: VaultService, ops: Any, clock: Clock, client_factory: Callable[[], Any] | None = None) -> None:
        self._service: VaultService | None = service
        self._ops = ops
        self.clock = clock
        self.client_factory = client_factory
        self._history: dict[str, deque[int]] = {}
        self._seen: dict[str, float] = {}
        self.observe()

    def __repr__(self) -> str:
        return f"Session(open={self.open})"

    # --- state ---------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        return self._service is not None and not self._service.locked

    @property
    def service(self) -> VaultService:
        if self._service is None:
            raise VaultLocked("the vault is locked", hint="unlock it again")
        return self._service

    @property
    def ops(self) -> Any:
        if self._ops is None:
            raise VaultLocked("the vault is locked", hint="unlock it again")
        return self._ops

    @property
    def accounts(self) -> list[Account]:
        return self.service.accounts

    @property
    def settings(self) -> Settings:
        return self.service.data.settings

    @property
    def vault_name(self) -> str:
        return self.service.file.path.name

    def get(self, label: str) -> Account:
        return self.service.get(label)

    def find(self, label: str) -> Account | None:
        return self.service.data.find(label)

    def recent_audit(self, label: str | None, n: int = 8) -> list:
        entries = self.service.data.audit
        if label is not None:
            entries = [e for e in entries if e.account == label]
        return entries[-n:]

    # --- the session's own observations ----------------------------------------------------

    def observe(self) -> None:
        """Sample each account's latest rate-limit reading once (called after every change)."""
        if not self.open:
            return
        for acct in self.service.accounts:
            rl = acct.rate_limit
            if rl is None or rl.remaining is None or self._seen.get(acct.label) == rl.observed_at:
                continue
            self._seen[acct.label] = rl.observed_at
            self._history.setdefault(acct.label, deque(maxlen=HISTORY)).append(rl.remaining)

    def history(self, label: str) -> list[int]:
        return list(self._history.get(label, ()))

    # --- calls made from workers -------------------------------------------------------------

    def mint(self, label: str) -> Credentials:
        return self.ops.token(label, force=True)

    def refresh(self, label: str) -> Credentials:
        """Renew a session that is no longer fresh, as an automatic (not explicit) login:
        VenueOps refuses it after a failed login of a venue that locks users out."""
        return self.ops.sign(label)

    def preview(self, label: str) -> Credentials:
        """The headers a request would carry now, without handing a token out (nothing
        audited or saved unless a login happens)."""
        return self.ops.sign(label)

    @staticmethod
    def has_session(acct: Account) -> bool:
        """Does the venue log in for a bearer or session token (the kinds that expire
        while unused and can be refreshed)?"""
        from vault.venues import get_provider

        return get_provider(acct.venue).token_kind in ("bearer", "session")

    @staticmethod
    def session_fresh(acct: Account, now: float) -> bool:
        from vault.venues import get_provider

        return bool(get_provider(acct.venue).is_fresh(acct.token, now))

    def credentials(self, label: str) -> Credentials:
        return self.ops.headers(label)

    def check(self, label: str) -> Health:
        return self.ops.check(label)

    def doctor(self, label: str) -> list[str]:
        return self.ops.doctor(label)

    def record(self, action: str, label: str | None, detail: str = "") -> None:
        self.service.record(action, label, detail=detail)

    def remove(self, label: str) -> None:
        self.service.remove_account(label)
        self._history.pop(label, None)
        self._seen.pop(label, None)

    def capture(self, account: Account, detail: str) -> None:
        """Store captured credentials, audited as a capture.  If the save fails, the
        one-time secrets go to a sealed rescue file instead of being lost."""
        from vault.core.errors import AccountExists
        from vault.ops.rotation import store_or_rescue

        service = self.service

        def change(data) -> None:
            if data.find(account.label) is not None:
                raise AccountExists(f"an account labelled {account.label!r} already exists", hint="choose another label")
            data.accounts.append(account)
            service.audit(data, "capture", account.label, "ok", detail)

        store_or_rescue(service, change, f"the credentials for {account.label!r} were read")

    def _rotation(self):
        from vault.ops.rotation import Rotation

        ops = self.ops
        return Rotation(self.service, lambda label: ops.check(label), clock=self.clock,
                        client_factory=self.client_factory)

    def rotate_replace(self, label: str, fields: dict[str, str], source: str):
        return self._rotation().replace(label, fields, verify=True, source=source)

    def rotate_regenerate(self, label: str):
        return self._rotation().regenerate_tradeready(label)

    def rollback(self, label: str):
        return self._rotation().rollback(label, verify=True)

    def export_plain(self, label: str, fmt: str, target) -> None:
        """A plaintext export to a new 0600 file, recorded before it is written."""
        from vault.core.errors import InputError
        from vault.ops.export import render
        from vault.core.storage import write_private

        text = render(self.get(label), fmt, self.clock())
        self.service.record("export", label, "ok", f"plaintext {fmt} to {target}")
        try:
            write_private(target, text.encode("utf-8"))
        except OSError as exc:
            self.service.record("export", label, "failed", f"could not write {target}")
            raise InputError(f"cannot write {target}: {exc.strerror}", hint="check the path and permissions") from None

    def export_bundle(self, labels: list[str], passphrase: str, target) -> None:
        """An encrypted bundle (the vault's own KDF cost) to a new 0600 file."""
        from vault.ops import bundle
        from vault.core.storage import write_private

        service = self.service
        accounts = [service.get(label) for label in labels]
        blob = bundle.seal(accounts, passphrase, service.kdf, self.clock())

        def change(data) -> None:
            for acct in accounts:
                service.audit(data, "export", acct.label, "ok", f"encrypted bundle to {target}")

        service.transact(change)
        write_private(target, blob)

    def save_settings(self, **values: int) -> None:
        def change(data) -> None:
            for name, value in values.items():
                setattr(data.settings, name, value)

        self.service.transact(change)

    def reload(self) -> bool:
        return self.service.reload()

    def changed_on_disk(self) -> bool:
        return self.open and self.service.changed_on_disk()

    # --- the lock ----------------------------------------------------------------------------

    def close(self) -> None:
        """Drop the decrypted state: the service forgets its key and data, we forget both."""
        service, self._service = self._service, None
        ops, self._ops = self._ops, None
        self._history.clear()
        self._seen.clear()
        if service is not None:
            service.lock()
        closer = getattr(ops, "close", None)
        if callable(closer):
            closer()
