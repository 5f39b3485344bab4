"""Rotation with generations, after aws-vault's rotate: make the new credential, store it at
once, verify it works, then retire the old one; if verification fails, keep using the old
one and say so.

The current credential set lives in `Account.fields`; retired sets are `Generation`s,
newest last, at most MAX_GENERATIONS of them.  Two ways in:

- `replace(label, new_fields)`: the venue made the new key in its web UI (PowerTrade,
  Hyper Solutions, Kiiex, a TradeReady account key).  The new set is stored as current
  and the old one retired; then `verify(label)` (the health check) decides.  On failure
  the old set comes back and the new one is kept as a retired generation marked
  "failed verification", so a one-time secret is never thrown away: `rollback` switches
  to it once the cause (a key not yet activated, say) is fixed.
- `regenerate_tradeready(label)`: TradeReady agents rotate through the API
  (`POST /api/v1/agents/{agent_id}/regenerate-key` with the bearer JWT).  The venue
  revokes the old key at once, so after a failed verification keyward checks whether
  the venue still takes the old key: if it does the old one comes back, if not the new
  one stays (it is the only one that can work) and the command says so.

`rollback(label)` swaps the current set with the newest retired one (twice = no change).
A save that fails after the venue issued a key writes the vault's content, new key
included, to a rescue file beside the vault sealed with the same key (see `rescue`):
the one-time secret is neither lost nor written anywhere in plaintext.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from vault.core.errors import InvalidCredential, KeywardError, VaultError, VaultSaveFailed, VenueError
from vault.core.model import Account, Generation, Health, VaultData

T = TypeVar("T")
MAX_GENERATIONS = 5
REGENERATE_PATH = "/api/v1/agents/{agent_id}/regenerate-key"
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,128}")

Verify = Callable[[str], Health]


@dataclass
class RotationResult:
    label: str
    outcome: str  # verified | unverified | rolled-back | kept-new | switched
    message: str
    ok: bool


# --- the generation bookkeeping (pure) ---------------------------------------------------------


def trim_generations(acct: Account, keep: int = MAX_GENERATIONS) -> None:
    if len(acct.generations) > keep:
        del acct.generations[: len(acct.generations) - keep]


def retired(acct: Account, now: float, reason: str) -> Generation:
    """The account's current credential set as a retired generation, with where it is used."""
    return Generation(dict(acct.fields), acct.rotated_at or acct.created_at, now, reason, acct.base_url, acct.env)


def install(acct: Account, new_fields: dict[str, str], now: float, reason: str = "rotated") -> None:
    """Make `new_fields` current; the current set becomes the newest retired generation."""
    acct.generations.append(retired(acct, now, reason))
    trim_generations(acct)
    acct.fields = dict(new_fields)
    acct.rotated_at = now
    _forget_session(acct)


def swap_back(acct: Account, now: float, reason: str) -> Generation:
    """Bring back the newest retired generation; the current set takes its place."""
    if not acct.generations:
        raise InvalidCredential(f"{acct.label!r} has no earlier credential to roll back to", hint="nothing was changed")
    previous = acct.generations.pop()
    acct.generations.append(retired(acct, now, reason))
    acct.fields = dict(previous.fields)
    if previous.base_url is not None:  # the credential goes back to where it was used
        acct.base_url, acct.env = previous.base_url, previous.env
    acct.rotated_at = previous.created_at or now
    _forget_session(acct)
    return previous


def _forget_session(acct: Account) -> None:
    # A cached token or session, the last health and a recorded failed login (which stops
    # keyward from logging in again on its own) all belong to the credential they were
    # about, not to the one now current.
    from vault.ops.venue_ops import LOGIN_FAILED_AT, LOGIN_FAILURE

    acct.token = None
    acct.health = None
    acct.settings.pop(LOGIN_FAILED_AT, None)
    acct.settings.pop(LOGIN_FAILURE, None)


def _short(message: str, limit: int = 160) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _health_of(verify: Verify, label: str, clock: Callable[[], float]) -> Health:
    try:
        return verify(label)
    except KeywardError as err:  # messages carry no secrets (vault.core.errors)
        return Health(ok=False, checked_at=clock(), message=str(err))


# --- saving without losing a one-time secret ---------------------------------------------------


def rescue_path(vault_path: Path, now: float) -> Path:
    return vault_path.with_name(f"{vault_path.name}.rescue-{int(now)}")


def rescue(service, change: Callable[[VaultData], object], now: float) -> Path:
    """Seal (the vault's content + `change`) with the vault's own key and header into a file
    beside it: a complete vault that the same passphrase opens."""
    from vault.core import fileformat as ff
    from vault.core.service import encode_payload
    from vault.core.storage import write_private

    data = copy.deepcopy(service.data)
    change(data)
    blob = ff.seal(service._header, service._key, encode_payload(data), service.generation + 1)
    path = rescue_path(service.file.path, now)
    write_private(path, blob)
    return path


def store_or_rescue(service, change: Callable[[VaultData], T], what: str) -> T:
    """`service.transact(change)`; if the save fails, a rescue file, and an error naming it."""
    try:
        return service.transact(change)
    except (VaultError, OSError) as exc:
        reason = exc.message if isinstance(exc, KeywardError) else (exc.strerror or type(exc).__name__)
        try:
            path = rescue(service, change, time.time())
        except Exception:  # noqa: BLE001 - the original failure is what to report
            if isinstance(exc, VaultSaveFailed):  # a full or read-only disk: say what is lost
                raise VaultSaveFailed(
                    f"{what} but NOT stored: {exc.message}, and no rescue file could be written either",
                    hint=f"{exc.hint}; what you entered exists only where it came from, so keep it until "
                    "the command succeeds",
                ) from None
            raise exc from None
        raise VaultError(
            f"{what} but the vault could not be saved ({reason}); everything, the new key included, "
            f"is in {path}, sealed with this vault's passphrase",
            hint=f"fix the cause, then `mv {path} {service.file.path}` (or open it with --vault)",
        ) from None


# --- rotation --------------------------------------------------------------------------------


class Rotation:
    def __init__(self, service, verify: Verify | None = None, clock: Callable[[], float] | None = None,
                 client_factory: Callable[[], object] | None = None) -> None:
        self.service = service
        self.verify = verify
        self.clock = clock or service.clock
        self.client_factory = client_factory

    # -- new credentials made elsewhere --
    def replace(self, label: str, new_fields: dict[str, str], *, verify: bool = True, source: str = "") -> RotationResult:
        acct = self.service.get(label)
        if new_fields == acct.fields:
            raise InvalidCredential(
                f"that is the credential {label!r} already uses", hint="create a new key in the venue's web UI first"
            )
        if any(g.fields == new_fields for g in acct.generations):
            raise InvalidCredential(
                f"that credential was retired from {label!r} earlier",
                hint="create a new key in the venue's web UI, or use `keyward rotate --rollback`",
            )
        now = self.clock()

        def store(data: VaultData) -> None:
            a = data.find(label)
            if a is None:
                raise VaultError(f"{label!r} was removed by another keyward process", hint="nothing was changed")
            install(a, new_fields, now)
            self.service.audit(data, "rotate", label, "stored", f"new credential stored{source}; verifying" if verify else f"new credential stored{source}; not verified")

        store_or_rescue(self.service, store, f"the new credential for {label!r} was read")
        if not verify or self.verify is None:
            return RotationResult(label, "unverified", f"rotated {label}: new credential stored, NOT verified (--no-verify)", True)
        health = _health_of(self.verify, label, self.clock)
        if health.ok:
            self.service.record("rotate", label, "ok", "verified; previous credential retired")
            return RotationResult(
                label, "verified",
                f"rotated {label}: the new credential works; the previous one is retired "
                f"(revoke it in the venue's web UI once nothing uses it)", True,
            )

        self._restore_after_failed_verification(
            label, health, "previous credential restored; the new one kept as a retired generation"
        )
        return RotationResult(
            label, "rolled-back",
            f"verification failed ({_short(health.message)}): {label} keeps using the previous credential; "
            f"the new one is kept as a retired generation (`keyward rotate --rollback {label}` switches to it)",
            False,
        )

    def _restore_after_failed_verification(self, label: str, health: Health, detail: str) -> None:
        """The previous set current again, the failed one kept as a generation; both the
        failure and the rollback in the trail, in one save."""

        def undo(data: VaultData) -> None:
            a = data.find(label)
            if a is None:
                return
            swap_back(a, self.clock(), "failed verification")
            self.service.audit(data, "rotate", label, "failed", _short(f"verification failed: {health.message}"))
            self.service.audit(data, "rollback", label, "ok", detail)

        self.service.transact(undo)

    # -- going back --
    def rollback(self, label: str, *, verify: bool = True) -> RotationResult:
        acct = self.service.get(label)
        if not acct.generations:
            raise InvalidCredential(f"{label!r} has no earlier credential to roll back to", hint="nothing was changed")

        def change(data: VaultData) -> None:
            a = data.find(label)
            if a is None:
                raise VaultError(f"{label!r} was removed by another keyward process", hint="nothing was changed")
            swap_back(a, self.clock(), "rolled back")
            self.service.audit(data, "rollback", label, "ok", "previous credential restored")

        self.service.transact(change)
        if not verify or self.verify is None:
            return RotationResult(label, "switched", f"rolled back {label} to its previous credential (not verified)", True)
        health = _health_of(self.verify, label, self.clock)
        if health.ok:
            return RotationResult(label, "switched", f"rolled back {label} to its previous credential; it works", True)
        return RotationResult(
            label, "switched",
            f"rolled back {label} to its previous credential, but it fails its check ({_short(health.message)}); "
            f"`keyward rotate --rollback {label}` again to undo",
            False,
        )

    # -- TradeReady agents, through the API --
    def regenerate_tradeready(self, label: str) -> RotationResult:
        from vault.net.http import Sender, json_body, make_client
        from vault.venues import get_provider

        acct = self.service.get(label)
        provider = get_provider("tradeready")
        agent_id = acct.fields.get("agent_id", "")
        if acct.venue != "tradeready" or not agent_id:
            raise InvalidCredential(
                f"{label!r} is not a TradeReady agent (no agent_id)",
                hint="paste the new credentials instead: `keyward rotate LABEL` reads them from the terminal or --file",
            )
        if not _SAFE_SEGMENT.fullmatch(agent_id):
            raise InvalidCredential(f"the agent_id of {label!r} is not a valid id", hint="fix it with `keyward capture`")
        old_key = acct.fields.get("agent_api_key")
        sender = Sender(clock=self.clock)
        factory = self.client_factory or make_client
        with factory() as client:
            # A bearer cached and fresh is used as it is: the backend allows a few logins a
            # minute per client IP, and rotations must not spend them.
            bearer = acct.token if provider.is_fresh(acct.token, self.clock(), acct) else None
            if bearer is None:
                try:
                    bearer = provider.login(acct, client, self.clock(), sender)
                except KeywardError as err:
                    code = getattr(err, "code", None) or type(err).__name__
                    status = getattr(err, "status", None)
                    self.service.record("login", label, "failed", f"HTTP {status} {code}" if status else code)
                    self.service.record("rotate", label, "failed", "no bearer for regenerate-key; nothing changed")
                    raise
                self.service.record("login", label, "ok", "bearer for regenerate-key")
            response = sender.send(
                client,
                "POST",
                acct.base_url + REGENERATE_PATH.format(agent_id=agent_id),
                headers={"Authorization": f"Bearer {bearer.value}"},
                idempotent=False,  # a second call would revoke the key the first one made
                venue=provider.title,
            )
            try:
                provider.raise_for_error(acct, response)
            except VenueError as err:
                self.service.record("rotate", label, "failed", _short(f"regenerate-key refused: {err.message}"))
                raise
            body = json_body(response, provider.title)
        new_key = body.get("api_key") if isinstance(body, dict) else None
        if not isinstance(new_key, str) or not new_key or any(c.isspace() for c in new_key) or new_key == old_key:
            self.service.record("rotate", label, "failed", "regenerate-key answered without a new key")
            raise VenueError(
                "TradeReady's regenerate-key answer carries no new key",
                hint=f"run `keyward check {label}`: the venue may have revoked the old key",
            )
        new_fields = dict(acct.fields) | {"agent_api_key": new_key}
        now = self.clock()

        def store(data: VaultData) -> None:
            a = data.find(label)
            if a is None:
                data.accounts.append(acct)  # removed meanwhile: the new key must still land
                a = acct
            install(a, new_fields, now)
            # The bearer belongs to the account's key and secret, which did not change.
            a.token = bearer
            self.service.audit(data, "rotate", label, "stored", "agent key regenerated by TradeReady; verifying")

        store_or_rescue(self.service, store, f"TradeReady issued a new agent key for {label!r}")
        if self.verify is None:
            return RotationResult(label, "unverified", f"rotated {label}: new agent key stored, not verified", True)
        health = _health_of(self.verify, label, self.clock)
        if health.ok:
            self.service.record("rotate", label, "ok", "verified; TradeReady revoked the previous agent key")
            return RotationResult(
                label, "verified", f"rotated {label}: the new agent key works; TradeReady revoked the previous one", True
            )
        # The venue documents that the old key dies at once; believe it only if it is so.
        old_works = old_key is not None and self._key_works(acct, old_key)
        if old_works:
            self._restore_after_failed_verification(
                label, health, "previous agent key restored (TradeReady still accepts it)"
            )
            return RotationResult(
                label, "rolled-back",
                f"verification failed ({_short(health.message)}) and TradeReady still accepts the previous key: "
                f"{label} keeps using it; the new one is kept as a retired generation",
                False,
            )
        self.service.record("rotate", label, "unverified", _short(f"new agent key failed verification: {health.message}"))
        return RotationResult(
            label, "kept-new",
            f"the new agent key failed verification ({_short(health.message)}) and TradeReady no longer accepts "
            f"the previous one, so {label} keeps the new key; run `keyward check {label}` again shortly",
            False,
        )

    def _key_works(self, acct: Account, api_key: str) -> bool:
        from vault.net.http import Sender, make_client
        from vault.venues import get_provider

        provider = get_provider(acct.venue)
        probe = copy.deepcopy(acct)
        probe.fields["agent_api_key"] = api_key
        method, path, body = provider.health_request(probe)
        factory = self.client_factory or make_client
        try:
            with factory() as client:
                response = Sender(clock=self.clock).send(
                    client, method, acct.base_url + path, headers=provider.headers(probe, None, self.clock(), path),
                    json=body, idempotent=True, venue=provider.title,
                )
        except KeywardError:
            return False
        return response.is_success
