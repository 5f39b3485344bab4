"""Account changes whose input a command gathers itself: storing a new account, merging
a bundle, rotating, and the explicit ways a stored secret leaves (copy, export).

They are methods of VaultOps, and so of VenueOps (through this mixin), for one reason:
whoever holds the unlocked vault runs them.  The CLI reads files, stdin, a hidden paste
and answers to its questions in its own process, with its own terminal; then it hands
plain data to `ctx.ops()`, which is this process's VaultOps or VenueOps after a
passphrase prompt, or the unlock agent, which runs the very same method on its vault
(vault.agent.server).  Each method
is one short operation, never a wait on a person: the agent serves one operation at a
time, and a bot's `keyward token` must not queue behind someone pasting a key.

Every method validates what it is given as if it came from outside (it may come over
the agent's socket), and every change is one `transact` with its audit entry.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Iterable

from vault.core.errors import AccountExists, InputError, InvalidCredential, SecretsWithheld, VaultLocked
from vault.core.model import Account, check_label

if TYPE_CHECKING:  # pragma: no cover
    from vault.core.fileformat import KdfParams

# How a new account arrived: the audit action its entry gets.
STORE_ACTIONS = ("add", "import", "capture", "register")
# What a caller may record as failed after the operation itself succeeded (the venue
# refused to register; an export could not be written).
FAILURE_ACTIONS = ("register", "export")
IMPORT_POLICIES = ("keep-both", "skip", "replace")
MAX_BATCH = 1000


# The audit details keyward's own commands write for account changes.  An unlock agent
# records a client's detail only if it is one of these (a path may be any text without
# control characters), so another process cannot write prose of its choosing into the
# trail.
_PATH = r"[^\x00-\x1f\x7f-\x9f]{1,256}"
AUDIT_DETAILS = (
    r"",
    r"imported",
    r"registered through the API; stored [a-z_]+(, [a-z_]+)*",
    r"HTTP \d{3}: (the answer is not a JSON object|no API key and secret in the answer)",
    r"from [A-Za-z0-9][A-Za-z0-9 ._-]{0,60}(; \d{1,3} repair\(s\))?",
    r" ?from [A-Za-z0-9][A-Za-z0-9 ._-]{0,60}",
    r"plaintext (env|json|native) to " + _PATH,
    r"encrypted bundle to " + _PATH,
    r"could not write " + _PATH,
)
_audit_detail: re.Pattern[str] | None = None  # compiled on first use: only the agent checks details


def audit_detail_allowed(detail: str) -> bool:
    global _audit_detail
    if _audit_detail is None:
        _audit_detail = re.compile("|".join(f"(?:{p})" for p in AUDIT_DETAILS))
    return _audit_detail.fullmatch(detail) is not None


def check_account(acct: object) -> Account:
    """An Account as a request may carry it: right types, a known venue, a valid label,
    fields the venue's own normalisation accepts (it raises InvalidCredential)."""
    from vault.venues import get_provider

    if not isinstance(acct, Account):
        raise InputError("the request carries no account", hint="pass the account to store")
    check_label(acct.label)
    if not isinstance(acct.venue, str) or not isinstance(acct.base_url, str) or not acct.base_url:
        raise InputError(f"account {acct.label!r} has no venue or base URL", hint="give both")
    if acct.env is not None and not isinstance(acct.env, str):
        raise InputError(f"account {acct.label!r} has a malformed environment", hint="pass --env NAME")
    if not isinstance(acct.fields, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in acct.fields.items()):
        raise InvalidCredential(f"the fields of {acct.label!r} are not text", hint="check the input")
    if not isinstance(acct.notes, str) or not isinstance(acct.tags, list) or not all(isinstance(t, str) for t in acct.tags):
        raise InputError(f"the notes or tags of {acct.label!r} are malformed", hint="tags are text, one per --tag")
    provider = get_provider(acct.venue)  # an unknown venue is its own typed error
    acct.venue = provider.venue
    acct.fields = provider.normalize(acct.fields)
    return acct


def check_accounts(accounts: object) -> list[Account]:
    if not isinstance(accounts, list) or not accounts or len(accounts) > MAX_BATCH:
        raise InputError("the request carries no list of accounts", hint="pass the accounts to import")
    return [check_account(a) for a in accounts]


def check_labels(labels: object) -> list[str]:
    if not isinstance(labels, list) or not labels or len(labels) > MAX_BATCH:
        raise InputError("the request names no accounts", hint="pass account labels")
    return [check_label(x) for x in labels]


class AccountChanges:
    """Mixed into VaultOps (vault.ops.vault_ops): `self.service`, `self.clock`,
    `self.notify` and `self._lock` are VaultOps', `self.check` VenueOps'."""

    service: Any
    clock: Any
    notify: Any
    _lock: Any
    # False in an agent started with `keyward unlock --tokens-only`: stored secrets do
    # not leave through it, and the command asks for the passphrase instead.
    releases_secrets: bool = True

    def check(self, label: str) -> Any:  # pragma: no cover - VenueOps' own
        raise NotImplementedError

    # --- new accounts ---------------------------------------------------------------

    def store_account(self, acct: Account, *, action: str = "add", detail: str = "", keep_both: bool = False) -> str:
        """Store a new account; returns the label it was stored under.  With `keep_both`,
        a label taken meanwhile (the caller checked it before reading a one-time secret)
        gets a free variant instead of an error: a one-time secret must land somewhere.
        If the save fails, the whole vault, new account included, goes to a rescue file."""
        from vault.ops.bundle import free_label
        from vault.ops.rotation import store_or_rescue

        if action not in STORE_ACTIONS:
            raise InputError(f"unknown way to store an account {str(action)[:20]!r}", hint=f"one of: {', '.join(STORE_ACTIONS)}")
        acct = check_account(acct)
        wanted = acct.label
        acct.created_at = acct.created_at or self.clock()
        detail = str(detail)[:200]

        def change(data: Any) -> str:
            if data.find(acct.label) is not None:
                if not keep_both:
                    raise AccountExists(f"an account labelled {wanted!r} already exists", hint="choose another label")
                acct.label = free_label(wanted, {x.label for x in data.accounts})
            data.accounts.append(acct)
            self.service.audit(data, action, acct.label, "ok", detail)
            return acct.label

        what = "TradeReady registered the account" if action == "register" else f"the credentials for {wanted!r} were read"
        with self._lock:
            self._unlocked()
            return store_or_rescue(self.service, change, what)

    def remove_account(self, label: str) -> None:
        with self._lock:
            self._unlocked().remove_account(check_label(label))

    def record_failure(self, action: str, labels: Iterable[str], detail: str) -> None:
        """A failed register or export, in the trail (the label need not exist)."""
        if action not in FAILURE_ACTIONS:
            raise InputError(f"cannot record a failed {str(action)[:20]!r}", hint=f"one of: {', '.join(FAILURE_ACTIONS)}")
        labels = check_labels(list(labels))
        detail = str(detail)[:200]

        def change(data: Any) -> None:
            for label in labels:
                self.service.audit(data, action, label, "failed", detail)

        with self._lock:
            self._unlocked()
            self.service.transact(change)

    # --- bundles ----------------------------------------------------------------------

    def bundle_conflicts(self, incoming: list[Account]) -> list[dict[str, Any]]:
        """For each incoming account whose label a different account holds: what differs,
        for the question `import` asks (no credential values, only whether they differ)."""
        from vault.ops import bundle
        from vault.core.model import iso

        incoming = check_accounts(incoming)
        with self._lock:
            data = self._unlocked().data
            out = []
            for acct in bundle.conflicts(data, incoming):
                existing = data.find(acct.label)
                differs = bundle.differences(existing, acct)
                out.append({"label": acct.label, "venue": existing.venue, "where": existing.env or existing.base_url,
                            "created_at": iso(existing.created_at), "differs": differs})
            return out

    def import_accounts(self, incoming: list[Account], policy: str, decisions: dict[str, str] | None = None) -> list[dict[str, str]]:
        """Merge a bundle's accounts: `policy` for every clash, or "ask" with the caller's
        `decisions` per label.  Returns what happened to each (action, label, text)."""
        from vault.ops import bundle

        incoming = check_accounts(incoming)
        decisions = dict(decisions or {})
        if policy not in IMPORT_POLICIES + ("ask",) or not all(v in IMPORT_POLICIES for v in decisions.values()):
            raise InputError("unknown conflict policy", hint=f"one of: {', '.join(IMPORT_POLICIES)}")
        now = self.clock()

        def decide(incoming_acct: Account, existing: Account) -> str:
            if policy != "ask":
                return policy
            if incoming_acct.label not in decisions:
                raise InputError("the vault changed while you were answering", hint="run the import again; nothing was imported")
            return decisions[incoming_acct.label]

        def change(data: Any) -> list[Any]:
            items = bundle.plan(data, incoming, decide)
            bundle.apply(data, items, now, self.service.audit)
            return items

        with self._lock:
            self._unlocked()
            items = self.service.transact(change)
        return [{"action": i.action, "label": i.label, "text": i.describe()} for i in items]

    # --- secrets leaving, on request ------------------------------------------------

    def account_detail(self, label: str, *, reveal: bool = False) -> dict[str, Any]:
        """`show --json`'s object; with `reveal`, secrets in full, recorded first."""
        from vault.ops.views import detail

        if reveal:
            self._may_release("reveal")
        with self._lock:
            service = self._unlocked()
            acct = service.get(label)
            if reveal:
                service.record("reveal", label)
            return detail(acct, self.clock(), reveal=bool(reveal), default_max_age=service.data.settings.key_max_age_days)

    def fields_for_copy(self, label: str) -> dict[str, Any]:
        """The account's credential fields as JSON text for the clipboard, recorded as a
        copy first; and how long the clipboard may keep them (the vault's setting)."""
        from vault.ops.views import detail

        self._may_release("copy")
        with self._lock:
            service = self._unlocked()
            acct = service.get(label)
            text = json.dumps(detail(acct, self.clock(), reveal=True)["fields"])
            service.record("copy", label, "ok", "fields")
            return {"text": text, "clear_after": int(service.data.settings.clipboard_clear_seconds)}

    def export_accounts(self, labels: list[str], detail: str) -> list[Account]:
        """Whole accounts, secrets included, for an export the caller writes: each one is
        recorded as exported before it is handed over (an export that happened is never
        missing from the trail; a failed write is added with `record_failure`)."""
        import copy

        self._may_release("export")
        labels = check_labels(list(labels))
        detail = str(detail)[:200]

        def change(data: Any) -> list[Account]:
            out = []
            for label in labels:
                out.append(copy.deepcopy(self.service.get(label)))
            for label in labels:
                self.service.audit(data, "export", label, "ok", detail)
            return out

        with self._lock:
            self._unlocked()
            return self.service.transact(change)

    def vault_kdf(self) -> KdfParams:
        """The vault's Argon2id cost (a bundle is sealed at no less)."""
        with self._lock:
            return self._unlocked().kdf

    # --- rotation ---------------------------------------------------------------------

    def rotation_mode(self, label: str) -> str:
        """"regenerate" (a TradeReady agent: the venue makes the new key) or "replace"
        (new credentials made in the venue's web UI, to be pasted or read from a file)."""
        with self._lock:
            acct = self._unlocked().get(label)
            return "regenerate" if acct.venue == "tradeready" and acct.fields.get("agent_id") else "replace"

    def rotate(
        self,
        label: str,
        fields: dict[str, str] | None = None,
        *,
        rollback: bool = False,
        verify: bool = True,
        source: str = "",
    ) -> dict[str, Any]:
        """Store, verify, retire (vault.ops.rotation): with `fields`, the new credentials; with
        `rollback`, back to the previous set; with neither, TradeReady's regenerate-key.
        Returns {ok, outcome, message, warnings}; verification failures are results, not errors."""
        from vault.ops.rotation import Rotation

        warnings: list[str] = []
        with self._lock:
            service = self._unlocked()
            acct = service.get(label)
        rotation = Rotation(service, self.check if verify else None, clock=self.clock)
        if rollback:
            if fields is not None:
                raise InputError("--rollback reads no new credentials", hint="drop --file/--shred-source")
            result = rotation.rollback(label, verify=verify)
        elif fields is None:
            if not verify:
                raise InputError("TradeReady revokes the old agent key at once, so its rotation is always verified",
                                 hint="drop --no-verify")
            result = rotation.regenerate_tradeready(label)
        else:
            if not isinstance(fields, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items()):
                raise InvalidCredential("the new credentials are not text fields", hint="check the input")
            if acct.venue == "tradeready":
                # A new account key keeps the account's ids (and agent) unless the paste says otherwise.
                kept = ("account_id", "agent_id", "agent_api_key")
                fields = {k: v for k, v in acct.fields.items() if k in kept} | fields
            from vault.venues import get_provider

            fields = get_provider(acct.venue).normalize(fields)
            if acct.venue == "kiiex" and fields.get("user_id") != acct.fields.get("user_id"):
                warnings.append(f"warning: the new credentials belong to Kiiex user {fields.get('user_id')}, "
                                f"not {acct.fields.get('user_id')}")
            result = rotation.replace(label, fields, verify=verify, source=str(source)[:80])
        return {"ok": bool(result.ok), "outcome": result.outcome, "message": result.message, "warnings": warnings}

    # --- plumbing ---------------------------------------------------------------------

    def _may_release(self, what: str) -> None:
        if not self.releases_secrets:
            raise SecretsWithheld(f"this agent does not {what} stored secrets (--tokens-only)",
                                  hint="the command asks for the passphrase instead")

    def _unlocked(self) -> Any:
        if self.service.locked:
            raise VaultLocked("the vault is locked", hint="unlock it again")
        return self.service
