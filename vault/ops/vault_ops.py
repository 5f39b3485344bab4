"""VaultOps: the operations on an unlocked vault that talk to no venue.

The reads of vault.ops.vault_reads (`list`, `audit`, `key-age`, `pubkey`) and the
account changes of vault.ops.account_ops (`show`, `remove`, `import`, `export`, `copy`)
work on the vault alone.  VenueOps (vault.ops.venue_ops) is this class plus tokens,
headers, logins and checks; a command that needs none of those asks for VaultOps
(`Context.ops(venues=False)`) and does not load the HTTP layer, the request signing or
PowerTrade's key cache: on a cold `keyward list` or `show` that was about 3 ms, while
the KDF could not hide it.  Both answer the same methods alike, and so does the unlock
agent, which always serves VenueOps.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable

from vault.core.errors import AccountNotFound, InputError, VaultLocked
from vault.ops.account_ops import AccountChanges
from vault.ops.vault_reads import VaultReads

if TYPE_CHECKING:  # pragma: no cover
    from vault.core.model import Account, VaultData
    from vault.core.service import VaultService


def _stderr(message: str) -> None:
    import sys

    from vault.core.text import printable

    print(f"keyward: {printable(message)}", file=sys.stderr, flush=True)  # hosts, labels: shown, not obeyed


class VaultOps(AccountChanges, VaultReads):
    """The vault-only operations of an unlocked vault (see the module's docstring)."""

    def __init__(self, service: VaultService, clock: Callable[[], float] | None = None, *,
                 notify: Callable[[str], None] | None = None) -> None:
        self.service = service
        self.clock = clock or service.clock
        self.notify = notify or _stderr  # warnings; the dashboard passes its own
        self._lock = threading.RLock()  # the service (and VenueOps' client) are shared by threads
        self._providers: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.service!r})"

    # --- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        """Drop what must not outlive an unlock (VenueOps: parsed keys, connections)."""

    def __enter__(self) -> VaultOps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads and settings ------------------------------------------------------------

    def labels(self) -> list[str]:
        with self._lock:
            if self.service.locked:
                raise VaultLocked("the vault is locked", hint="unlock it again")
            return [a.label for a in self.service.accounts]

    def summary(self, label: str) -> dict[str, Any]:
        """The account's non-secret summary (`list --json`'s object): rate limit, token
        expiry, health and key age for `check` and the dashboard."""
        from vault.ops.views import summary

        acct, _ = self._lookup(label)
        return summary(acct, self.clock(), default_max_age=self.service.data.settings.key_max_age_days)

    def settings(self, label: str) -> list[tuple[Any, Any]]:
        """The account's settings: (SettingSpec, its value or None for the default)."""
        acct, provider = self._lookup(label)
        return [(spec, acct.settings.get(spec.name)) for spec in provider.settings]

    def set_setting(self, label: str, name: str, value: Any = None) -> list[str]:
        """Set one of the venue's per-account settings (None: back to its default).
        Returns the warnings the new value earns (a window longer than documented)."""
        acct, provider = self._lookup(label)
        specs = {spec.name: spec for spec in provider.settings}
        if name not in specs:
            raise InputError(
                f"{provider.title} accounts have no setting {name!r}",
                hint=f"settings: {', '.join(specs)}",
            )
        parsed = None if value is None else specs[name].parse(value)

        def change(a: Account, data: VaultData) -> None:
            if parsed is None:
                a.settings.pop(name, None)
            else:
                a.settings[name] = parsed
            # Settings are not secrets (lifetimes, paths), and a changed health_path or
            # token lifetime is worth finding in the trail.
            self.service.audit(data, "setting", label, "ok", f"{name}={'default' if parsed is None else parsed}")

        self._change(label, change)
        acct, provider = self._lookup(label)
        return provider.warnings(acct)

    # --- plumbing --------------------------------------------------------------------

    def _locked(self) -> None:
        """Called under the lock when the vault turned out locked (VenueOps drops its keys)."""

    def _lookup(self, label: str) -> tuple[Account, Any]:
        lock = self._lock
        lock.acquire()  # once per request (sign): acquire/release cost less than a `with`
        try:
            if self.service.locked:
                self._locked()
                raise VaultLocked("the vault is locked", hint="unlock it again")
            acct = self.service.get(label)
            provider = self._providers.get(acct.venue)
            if provider is None:  # get_provider imports by name: not per request
                from vault.venues import get_provider

                provider = self._providers[acct.venue] = get_provider(acct.venue)
            return acct, provider
        finally:
            lock.release()

    def _change(self, label: str, fn: Callable[[Account, VaultData], None]) -> None:
        def apply(data: VaultData) -> None:
            acct = data.find(label)
            if acct is None:
                raise AccountNotFound(f"no account labelled {label!r}", hint="it was removed meanwhile; see `keyward list`")
            fn(acct, data)

        with self._lock:
            self.service.transact(apply)
