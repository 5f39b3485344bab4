"""Encrypted export bundles: moving accounts between vaults without plaintext on disk.

A bundle is a file of the vault's own format (docs/vault-format.md) with the magic
``KWBUNDL\\0`` instead of ``KWVAULT\\0``, sealed under a passphrase of its own (never the
vault's) with a fresh salt and data key, and at least the default Argon2id cost
(`bundle_kdf`).  Its payload is JSON::

    {"bundle": 1, "created_at": <posix seconds>, "accounts": [<account>, ...]}

where an account is the vault's account object reduced to what moves: label, venue, env,
base_url, fields, created_at, rotated_at, notes, tags, and the settings a user chose (the
venue's declared settings and the key-age maximum, validated again on import).  Cached
tokens, health, rate limits, retired generations and a recorded failed login stay
behind (a token may be bound to this machine's IP; old generations are secrets nobody
should need elsewhere).

Importing validates every account as if it were typed in (label rules, the venue's
field checks, https-only base URLs) before touching the vault, then merges in one
transaction.  A label that exists already is a conflict, settled per account by a
policy: ``keep-both`` (the incoming one gets ``LABEL-2``...), ``skip`` or ``replace``
(the replaced credential set is kept as a retired generation when the venue matches).
An incoming account identical to the one already there is left alone, without asking.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from vault.core import fileformat as ff
from vault.core.errors import CorruptVault, InputError, KdfCostRefused, UnsupportedVersion, WrongPassphrase
from vault.core.model import Account, VaultData

BUNDLE_VERSION = 1
POLICIES = ("keep-both", "skip", "replace")
_MOVED = ("label", "venue", "env", "base_url", "fields", "created_at", "rotated_at", "notes", "tags", "settings")


# A bundle comes from elsewhere: whoever crafted it chooses what `import` spends before
# the passphrase is even checked.  Bundles are sealed within fileformat.BUNDLE_BUDGET
# (tighter than a vault's), and one asking for more is refused unopened, before the KDF.
BUNDLE_MEMORY_CEILING_KIB = ff.BUNDLE_BUDGET.max_memory_kib


def bundle_kdf(vault_kdf: ff.KdfParams) -> ff.KdfParams:
    """The vault's Argon2id cost, raised to at least the default's: a bundle is made to
    travel (a USB stick, a mail, a shared drive), where anyone who copies it can try
    passphrases offline for as long as they like, and its passphrase is a new one.  Then
    lowered into the bundle budget, so that every keyward opens what keyward seals."""
    default, budget = ff.DEFAULT_KDF, ff.BUNDLE_BUDGET
    memory = min(max(vault_kdf.memory_kib, default.memory_kib), budget.max_memory_kib)
    return ff.KdfParams(
        iterations=max(min(max(vault_kdf.iterations, default.iterations), budget.max_work_kib // memory), 1),
        memory_kib=memory,
        parallelism=max(vault_kdf.parallelism, default.parallelism),
    )


def is_bundle(head: bytes) -> bool:
    return head[:8] == ff.MAGIC_BUNDLE


def seal(accounts: list[Account], passphrase: str, kdf: ff.KdfParams, now: float) -> bytes:
    """The bundle file's bytes for `accounts`, sealed with `bundle_kdf(kdf)` (the vault's
    cost, never below the default)."""
    payload = {
        "bundle": BUNDLE_VERSION,
        "created_at": now,
        "accounts": [_moved(a) for a in accounts],
    }
    plaintext = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    _header, _key, blob = ff.encrypt_new(plaintext, passphrase, bundle_kdf(kdf), magic=ff.MAGIC_BUNDLE)
    return blob


def _moved(acct: Account) -> dict[str, object]:
    from vault.venues import get_provider

    out = {k: getattr(acct, k) for k in _MOVED}
    specs = {spec.name for spec in getattr(get_provider(acct.venue), "settings", ())}
    out["settings"] = {k: v for k, v in acct.settings.items() if k in specs or k == KEY_AGE_SETTING}
    return out


def open_bundle(blob: bytes, passphrase: str, *, allow_kdf_cost: bool = False) -> list[Account]:
    """Decrypt and validate a bundle.  Raises WrongPassphrase, CorruptVault, KdfCostRefused
    (over fileformat.BUNDLE_BUDGET, before any derivation, unless `allow_kdf_cost` or
    KEYWARD_ALLOW_KDF_COST=1) or InputError."""
    import os

    allow = allow_kdf_cost or os.environ.get("KEYWARD_ALLOW_KDF_COST") == "1"
    try:
        _header, _key, plaintext = ff.decrypt(blob, passphrase, expect_magic=ff.MAGIC_BUNDLE,
                                              budget=None if allow else ff.BUNDLE_BUDGET)
    except KdfCostRefused:
        raise
    except WrongPassphrase:
        raise WrongPassphrase(
            "wrong bundle passphrase", hint="use the passphrase chosen at `keyward export --encrypted`; nothing was imported"
        ) from None
    except CorruptVault as exc:
        why = exc.message.replace("the vault file is ", "").replace("not a keyward vault (bad magic bytes)", "bad magic bytes")
        why = why.replace("damaged (checksum mismatch)", "checksum mismatch").replace("the vault payload", "its content")
        raise CorruptVault(f"the bundle is damaged or not a bundle ({why})",
                           hint="copy it again from where it was made, or export it again") from None
    try:
        raw = json.loads(plaintext)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptVault("the bundle decrypted but holds no valid JSON", hint="export it again") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("accounts"), list):
        raise CorruptVault("the bundle has the wrong shape", hint="export it again")
    if raw.get("bundle", 0) > BUNDLE_VERSION:
        raise UnsupportedVersion(f"bundle version {raw['bundle']} is newer than this keyward", hint="upgrade keyward")
    return [validate(entry) for entry in raw["accounts"]]


def validate(entry: object) -> Account:
    """One bundled account, checked as strictly as `keyward add` checks typed input."""
    from vault.core.model import check_label
    from vault.net.endpoints import check_base_url
    from vault.venues import get_provider

    if not isinstance(entry, dict) or not isinstance(entry.get("fields"), dict):
        raise CorruptVault("a bundled account has the wrong shape", hint="export it again")
    label = entry.get("label")
    if not isinstance(label, str):
        raise CorruptVault("a bundled account has no label", hint="export it again")
    check_label(label)
    provider = get_provider(str(entry.get("venue")))
    base_url = entry.get("base_url")
    if not isinstance(base_url, str):
        raise CorruptVault(f"bundled account {label!r} has no base URL", hint="export it again")
    settings = portable_settings(provider, entry.get("settings"), label)
    tags = entry.get("tags") if isinstance(entry.get("tags"), list) else []
    created = entry.get("created_at")
    rotated = entry.get("rotated_at")
    return Account(
        label=label,
        venue=provider.venue,
        base_url=check_base_url(base_url),
        env=entry.get("env") if isinstance(entry.get("env"), str) else None,
        fields=provider.normalize(entry["fields"]),
        created_at=float(created) if isinstance(created, (int, float)) else 0.0,
        rotated_at=float(rotated) if isinstance(rotated, (int, float)) else None,
        notes=str(entry.get("notes") or ""),
        tags=[str(t) for t in tags],
        settings=settings,
    )


KEY_AGE_SETTING = "key_max_age_days"


def portable_settings(provider, raw: object, label: str) -> dict[str, object]:
    """The settings an account carries to another vault: the venue's declared settings
    (checked like `keyward setting` checks them) and its key-age maximum.  Anything else
    is state of the machine it came from (a recorded failed login that would stop
    keyward logging in, say) or unknown, and stays behind."""
    if not isinstance(raw, dict):
        return {}
    specs = {spec.name: spec for spec in getattr(provider, "settings", ())}
    out: dict[str, object] = {}
    for name, value in raw.items():
        try:
            if name in specs:
                out[name] = specs[name].parse(value)
            elif name == KEY_AGE_SETTING:
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
                    raise InputError("out of range", hint="")
                out[name] = value
        except InputError:
            raise CorruptVault(f"bundled account {label!r} has an invalid setting {str(name)[:40]!r}",
                               hint="fix it in the source vault (`keyward setting`), then export again") from None
    return out


# --- merging -------------------------------------------------------------------------------


@dataclass
class MergeItem:
    incoming: Account
    action: str  # "add", "keep-both", "skip", "replace", "identical"
    label: str  # the label it ends up under (for keep-both, the new one)
    moved: tuple[str, str] | None = None  # replace: (old host, new host) when the base URL changes

    def describe(self) -> str:
        source = self.incoming.label
        return {
            "add": f"added {self.label}",
            "keep-both": f"added {source} as {self.label} (kept both)",
            "skip": f"skipped {source} (a different account has that label)",
            "replace": f"replaced {self.label}" + (f" (its base URL moves from {self.moved[0]} to {self.moved[1]})"
                                                   if self.moved else ""),
            "identical": f"{source} is already in the vault{'' if self.label == source else ' as ' + self.label}, unchanged",
        }[self.action]


# What an import would change in an account already there, by name: every part a bundle
# carries (_MOVED) except its label and timestamps.  An account equal in all of them is
# "already in the vault, unchanged"; one that differs in any, settings included, is a
# conflict to decide (replace, keep both, skip), never silently dropped.
_COMPARED = (("venue", ("venue",)), ("location", ("env", "base_url")), ("credentials", ("fields",)),
             ("settings", ("settings",)), ("notes and tags", ("notes", "tags")))


def differences(existing: Account, incoming: Account) -> list[str]:
    """What differs between the two, by part ("settings", ...): names only, no values."""
    a, b = _moved(existing), _moved(incoming)
    return [part for part, keys in _COMPARED if any(a[k] != b[k] for k in keys)]


def same_account(a: Account, b: Account) -> bool:
    return not differences(a, b)


def copy_of(data: VaultData, acct: Account) -> Account | None:
    """The account already in the vault that is `acct` (under its label, else any)."""
    existing = data.find(acct.label)
    if existing is not None and same_account(existing, acct):
        return existing
    return next((a for a in data.accounts if same_account(a, acct)), None)


def conflicts(data: VaultData, incoming: list[Account]) -> list[Account]:
    """Incoming accounts whose label is taken by a different account."""
    out = []
    for acct in incoming:
        existing = data.find(acct.label)
        if existing is not None and not same_account(existing, acct):
            out.append(acct)
    return out


def free_label(base: str, taken: set[str]) -> str:
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: 64 - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        n += 1


def plan(data: VaultData, incoming: list[Account], decide: Callable[[Account, Account], str]) -> list[MergeItem]:
    """What importing `incoming` does; `decide(incoming, existing)` settles each conflict."""
    labels = [a.label for a in incoming]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise CorruptVault(f"the bundle holds label {dupes[0]!r} twice", hint="export it again")
    taken = {a.label for a in data.accounts} | set(labels)
    items: list[MergeItem] = []
    for acct in incoming:
        existing = data.find(acct.label)
        if existing is None:
            items.append(MergeItem(acct, "add", acct.label))
        elif same_account(existing, acct):
            items.append(MergeItem(acct, "identical", acct.label))
        else:
            action = decide(acct, existing)
            if action not in POLICIES:
                raise InputError(f"unknown conflict choice {action!r}", hint=f"choose one of: {', '.join(POLICIES)}")
            label = acct.label
            copy = copy_of(data, acct)
            if action == "keep-both" and copy is not None:
                # Kept both already (a bundle imported twice): not a copy each time.
                items.append(MergeItem(acct, "identical", copy.label))
                continue
            if action == "keep-both":
                label = free_label(acct.label, taken)
                taken.add(label)
            moved = None
            if action == "replace" and existing.base_url != acct.base_url:
                moved = (host_of(existing.base_url), host_of(acct.base_url))
            items.append(MergeItem(acct, action, label, moved))
    return items


def host_of(url: str) -> str:
    """scheme://host[:port] of a base URL, for messages and the audit trail."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url[:80]


def apply(data: VaultData, items: list[MergeItem], now: float, audit: Callable[..., None]) -> None:
    """Carry out a plan inside a transaction (`audit` is VaultService.audit bound to data)."""
    for item in items:
        acct = item.incoming
        if item.action in ("skip", "identical"):
            continue
        new = Account(
            label=item.label,
            venue=acct.venue,
            base_url=acct.base_url,
            env=acct.env,
            fields=dict(acct.fields),
            created_at=acct.created_at or now,
            rotated_at=acct.rotated_at,
            notes=acct.notes,
            tags=list(acct.tags),
            settings=dict(acct.settings),
        )
        if item.action == "replace":
            old = data.find(item.label)
            if old is not None:
                if old.venue == new.venue:
                    from vault.ops.rotation import retired, trim_generations

                    new.generations = list(old.generations) + [retired(old, now, "replaced by import")]
                    trim_generations(new)
                data.accounts[data.accounts.index(old)] = new
                detail = "replaced from an encrypted bundle"
                if old.base_url != new.base_url:  # where its credentials go changed: say so
                    detail += f"; base URL {host_of(old.base_url)} -> {host_of(new.base_url)}"
                audit(data, "import", item.label, "ok", detail)
                continue
        data.accounts.append(new)
        detail = "from an encrypted bundle" + (f" (bundled as {acct.label})" if item.label != acct.label else "")
        audit(data, "import", item.label, "ok", detail)
