"""The vault-wide reads and small settings changes the CLI renders: `list`, `audit`,
`key-age`, `setting` and `pubkey`, as VaultOps methods (and so VenueOps').

They are operations (not code that reaches into a VaultService) so that a running unlock
agent can answer them as typed requests, exactly as VaultOps answers them in the
caller's process: the agent never runs the command line, and every result here is plain
data (dicts of text and numbers), never an Account.  The secret-free rule holds for each:
key displays are masked, audit details are the trail's own text, a public key is public.
"""

from __future__ import annotations

from typing import Any

from vault.core.errors import InputError, VaultLocked

MAX_KEY_AGE_DAYS = 3650


class VaultReads:
    """Mixed into VaultOps (vault.ops.vault_ops): `self.service`, `self.clock`,
    `self._lock` and `self._lookup` are VaultOps'."""

    service: Any
    clock: Any
    _lock: Any

    def _lookup(self, label: str) -> tuple[Any, Any]:  # pragma: no cover - VaultOps' own
        raise NotImplementedError

    def _unlocked_service(self) -> Any:
        if self.service.locked:
            raise VaultLocked("the vault is locked", hint="unlock it again")
        return self.service

    def list_rows(self) -> list[dict[str, Any]]:
        """`keyward list`: each account's summary (the `list --json` object) and, for the
        table, its environment name and masked key."""
        from vault.ops.views import env_name, key_display, summary

        with self._lock:
            service = self._unlocked_service()
            now = self.clock()
            default_age = service.data.settings.key_max_age_days
            return [
                {"summary": summary(acct, now, default_max_age=default_age), "env": env_name(acct), "key": key_display(acct)}
                for acct in service.accounts
            ]

    def audit_log(self, label: str | None = None, limit: int | None = None, expect_head: str | None = None) -> dict[str, Any]:
        """`keyward audit`: the entries to show (all, one account's, the last `limit`),
        whether the chain verifies and where it breaks, and whether an entry with the
        digest prefix `expect_head` is still in it."""
        from vault.core import audit
        from vault.core.model import iso

        if expect_head is not None:
            want = expect_head.strip().lower()
            if len(want) < 12 or len(want) > 64 or any(c not in "0123456789abcdef" for c in want):
                raise InputError("--expect-head takes a hex digest (at least 12 characters)", hint="copy it from `keyward audit`")
        with self._lock:
            entries = list(self._unlocked_service().data.audit)
        broken = audit.verify(entries)
        # Entries of removed accounts stay in the trail, so the label need not exist.
        shown = [e for e in entries if label is None or e.account == label]
        if limit is not None:
            shown = shown[-limit:] if limit > 0 else []
        broken_entry = None
        if broken is not None:
            e = entries[broken]
            broken_entry = {"action": e.action, "at": iso(e.at)}
        return {
            "intact": broken is None,
            "broken_at": broken,
            "broken_entry": broken_entry,
            "entries_total": len(entries),
            "head": entries[-1].digest if entries else audit.GENESIS,
            "expect_head_found": None if expect_head is None else any(e.digest.startswith(want) for e in entries),
            "entries": [
                {"at": iso(e.at), "action": e.action, "account": e.account, "outcome": e.outcome,
                 "detail": e.detail, "digest": e.digest}
                for e in shown
            ],
        }

    def key_ages(self, label: str | None = None) -> list[dict[str, Any]]:
        """`keyward key-age`: age, maximum and how long until due, with the same age
        arithmetic as `list --json` and the dashboard."""
        from vault.ops.views import summary

        keys = ("label", "venue", "key_age_days", "key_max_age_days", "key_overdue")
        with self._lock:
            service = self._unlocked_service()
            now = self.clock()
            default = service.data.settings.key_max_age_days
            accounts = [service.get(label)] if label else list(service.accounts)
            rows = []
            for acct in accounts:
                row = {k: v for k, v in summary(acct, now, default_max_age=default).items() if k in keys}
                row["due_in_days"] = round(row["key_max_age_days"] - acct.key_age_days(now), 1)
                rows.append(row)
            return rows

    def set_key_max_age(self, label: str | None, days: int) -> None:
        """One account's maximum key age (0: back to the vault default), or the vault
        default (at least 1 day)."""
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_KEY_AGE_DAYS:
            raise InputError(f"--max-days must be between 0 and {MAX_KEY_AGE_DAYS}", hint="90 is the default")
        with self._lock:
            service = self._unlocked_service()
            if label:
                service.get(label)

                def set_one(acct: Any) -> None:
                    if days == 0:
                        acct.settings.pop("key_max_age_days", None)
                    else:
                        acct.settings["key_max_age_days"] = days

                service.update_account(label, set_one)
                return
            if days == 0:
                raise InputError("the vault default must be at least 1 day", hint="90 is the default")

            def set_default(data: Any) -> None:
                data.settings.key_max_age_days = days

            service.transact(set_default)

    def setting_rows(self, label: str) -> list[dict[str, Any]]:
        """`keyward setting LABEL`: name, value (None: the default), default and help."""
        acct, provider = self._lookup(label)
        return [
            {"name": spec.name, "value": acct.settings.get(spec.name), "default": spec.default, "help": spec.help}
            for spec in provider.settings
        ]

    def public_key(self, label: str) -> dict[str, Any]:
        """`keyward pubkey`: the PEM and JWK of a PowerTrade account's public key."""
        from vault.venues.powertrade import public_key

        acct, _ = self._lookup(label)
        if "private_key" not in acct.fields:
            raise InputError(f"{label!r} ({acct.venue}) has no private key", hint="pubkey is for PowerTrade accounts")
        pem, jwk = public_key(acct.fields["private_key"])
        if "api_key" in acct.fields:
            jwk["kid"] = acct.fields["api_key"]  # PowerTrade's API key is not secret
        return {"pem": pem, "jwk": jwk}
