"""VenueOps: tokens, headers, logins and health checks for the accounts of an unlocked vault.

The one service the CLI, the dashboard and the unlock agent call.  It owns what must
not outlive an unlock: the HTTP client and the parsed PowerTrade keys (`close()` drops
them, and every call refuses once the vault is locked).  What it learns (tokens and
sessions, health, rate limits, clock skew, latency) is saved through
`VaultService.transact`, one save per operation, together with its audit entry.

Kiiex locks a user out after several failed logins in a row.  So a Kiiex login is tried
at most once per operation, never retried, and once one has failed keyward will not log
in on its own again (`token`, `headers`, `check`, the Python API) until the user runs
`keyward login LABEL`, the only explicit login.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from vault.ops.vault_ops import VaultOps
from vault.core.errors import (
    AccountNotFound,
    AuthRejected,
    InputError,
    KeywardError,
    NetworkError,
    RateLimited,
    VaultError,
)
from vault.net.http import (
    NOT_SENT,
    Exchange,
    Sender,
    checked_token,
    describe_skew,
    harden,
    json_body,
    make_client,
    response_notices,
    skew_matters,
)
from vault.core.model import Account, Credentials, Health, RateLimit, Token, VaultData, iso
from vault.venues.powertrade import KeyCache

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from vault.core.service import VaultService

HISTORY_LEN = 60  # rate-limit samples kept per account, for a sparkline
SESSION_KINDS = ("bearer", "session")
# Settings keys recording a failed login of a venue that locks users out.
LOGIN_FAILED_AT = "login_failed_at"
LOGIN_FAILURE = "login_failure"
# A session's idle expiry slides on every use; saving each slide would mean a vault write
# per request, so it is saved only once it has moved this far.
SLIDE_SAVE_S = 300
CHECK_WORKERS = 4
# Refusals that a key from another environment explains (doctor's hint); not the clock,
# a lifetime setting or a lock.  None: a refusal the venue gave no code for.
KEY_REFUSALS = frozenset({None, "bad_signature", "unknown_key", "NotAuthenticated", "INVALID_API_KEY"})


def exec_environment(creds: Credentials) -> dict[str, str]:
    """The variables `keyward exec` gives a command (documented in docs/python-api.md)."""
    tok = creds.token
    env = {
        "KEYWARD_ACCOUNT": creds.account,
        "KEYWARD_VENUE": creds.venue,
        "KEYWARD_BASE_URL": creds.base_url,
        "KEYWARD_TOKEN": tok.value if tok else "",
        "KEYWARD_TOKEN_EXPIRES_AT": (iso(tok.expires_at) or "") if tok else "",
        "KEYWARD_HEADERS": json.dumps(creds.headers, separators=(",", ":")),
    }
    env.update(creds.env)
    return env


class VenueOps(VaultOps):
    """Venue operations, on top of the vault-only ones of vault.ops.vault_ops."""

    def __init__(
        self,
        service: VaultService,
        client_factory: Callable[..., httpx.Client] | None = None,
        clock: Callable[[], float] | None = None,
        *,
        notify: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(service, clock, notify=notify)  # (notify: also 429 waits)
        self._factory = client_factory or make_client
        self._sleep = sleep
        self._client: httpx.Client | None = None
        self._keys = KeyCache()
        self._login_locks: dict[str, threading.Lock] = {}

    # --- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        """Drop the parsed keys and the connections (call on lock)."""
        with self._lock:
            self._keys.clear()
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> VenueOps:
        return self

    # --- the public operations -------------------------------------------------------

    def token(self, label: str, *, force: bool = False) -> Credentials:
        """The live token (minted, or the cached bearer/session, logging in when needed).
        `force` logs in again even when the cached one is still good."""
        acct, provider = self._lookup(label)
        now = self.clock()
        tok = self._token_for(acct, provider, now, path=None, force=force)
        return self._hand_out(acct, provider, tok, now)

    def headers(self, label: str, path: str | None = None) -> Credentials:
        """The headers a request to `path` carries now; without one, the account's common
        case (a TradeReady API-key call: no login).  Kiiex in session mode logs in first if
        there is no live session."""
        acct, provider = self._lookup(label)
        if path is None:
            path = getattr(provider, "common_path", None)
        else:
            from vault.venues.base import checked_path

            path = checked_path(path, "--path")
        now = self.clock()
        tok = self._token_for(acct, provider, now, path=path, force=False)
        return self._hand_out(acct, provider, tok, now, path=path)

    def login(self, label: str) -> Credentials:
        """The online exchange, now, even after an earlier failure: the explicit login."""
        acct, provider = self._lookup(label)
        if provider.token_kind not in SESSION_KINDS:
            raise InputError(
                f"{provider.title} has no login: every request carries a freshly signed token",
                hint=f"use `keyward token {label}` or `keyward headers {label}`",
            )
        if not provider.needs_token(acct, None):  # Kiiex in signed mode
            raise InputError(
                f"{label!r} never logs in: every request carries freshly signed headers",
                hint=f"use `keyward headers {label}`, or `keyward setting {label} auth_mode session`",
            )
        now = self.clock()
        tok = self._login(acct, provider, now, explicit=True)
        return self._credentials(acct, provider, tok, now, None)

    def sign(self, label: str, path: str | None = None, *, force_login: bool = False) -> Credentials:
        """Headers for one request to `path` (the Python API's per-request signing).

        Unlike `token`, nothing is audited or saved unless a login happens: a script
        making many requests must not write the vault for each of them."""
        acct, provider = self._lookup(label)
        now = self.clock()
        if provider.token_kind == "jwt":  # PowerTrade, per request: mint and one header, nothing else
            tok = provider.mint(acct, now, self._keys) if provider.needs_token(acct, path) else None
            return Credentials(acct.label, acct.venue, acct.base_url, tok, provider.headers(acct, tok, now, path), {})
        tok = self._token_for(acct, provider, now, path=path, force=force_login, explicit=False)
        if tok is not None and provider.token_kind == "session":
            tok = self._slide(acct, provider, tok, now)
        return self._credentials(acct, provider, tok, now, path, with_env=False)

    def forget_session(self, label: str, value: str | None = None) -> None:
        """Drop a cached bearer/session the venue refused, so its next use logs in again.
        With `value`, only if that is still the cached one (not a newer login's)."""

        def drop(a: Account, data: VaultData) -> None:
            if a.token is not None and (value is None or a.token.value == value):
                a.token = None

        self._change(label, drop)

    def refresh(self) -> bool:
        """Pick up another process's save (the unlock agent does this before every
        operation); under the lock every other use of the service takes."""
        with self._lock:
            return self.service.reload()

    def exec_env(self, label: str) -> dict[str, str]:
        # The token (a TradeReady bearer too, as KEYWARD_BEARER) and the common-case headers.
        return exec_environment(self.token(label))

    def check(self, label: str) -> Health:
        """One authenticated call to the account's health endpoint.  Never raises for a
        venue failure: the Health says what went wrong (and is saved on the account)."""
        return self._check(label)[0]

    def _check(self, label: str) -> tuple[Health, KeywardError | None]:
        """`check`, and the error behind a failing Health (for doctor's hints)."""
        acct, provider = self._lookup(label)
        now = self.clock()
        sender = self._sender()
        response: httpx.Response | None = None
        tok: Token | None = None
        try:
            method, path, body = provider.health_request(acct)  # a bad health_path fails the check
            if provider.token_kind in SESSION_KINDS and provider.needs_token(acct, path):
                tok = self._token_for(acct, provider, now, path=path, force=False, explicit=False)

            def build() -> dict[str, str]:
                # Built per attempt: a retried PowerTrade request needs a new nonce.
                t = provider.mint(acct, self.clock(), self._keys) if provider.token_kind == "jwt" else tok
                return provider.headers(acct, t, self.clock(), path)

            def send() -> httpx.Response:
                return sender.send(
                    self._http(), method, acct.base_url + path, headers=build, json=body, idempotent=True,
                    venue=provider.title, label=acct.label,
                )

            response = send()
            resend = getattr(provider, "resend_after", None)
            if resend is not None and resend(response):
                # A bot on the same key sent a newer nonce first: sign again, once.
                response = send()
            provider.raise_for_error(acct, response)
            # A 200 that is not JSON (a captive portal, a proxy's error page, a cut-off
            # body) proves nothing about the account.
            json_body(response, provider.title)
        except (AccountNotFound, VaultError):
            raise
        except KeywardError as err:
            self._explain_skew(err, acct, provider, sender.last)
            health = self._health(False, now, sender.last, str(err), getattr(err, "status", None))
            rl = provider.rate_limit(response, now) if response is not None else None
            # A refused session is dead: forget it, so the next call logs in (once).
            dead = isinstance(err, AuthRejected) and tok is not None and response is not None
            code = getattr(err, "code", None) or type(err).__name__
            self._save_check(acct.label, health, rl, f"{code}", drop_token=tok if dead else None)
            return health, err
        rl = provider.rate_limit(response, now)
        notes = self._warnings(acct, provider, sender.last, now) + response_notices(response, now)
        health = self._health(True, now, sender.last, "; ".join(["ok", *notes]), response.status_code)
        slid = None
        if tok is not None and provider.token_kind == "session":
            slid = Token(tok.value, tok.issued_at, now + provider.lifetime(acct), tok.kind)  # the call just used it
        self._save_check(acct.label, health, rl, f"HTTP {response.status_code}", slide=slid)
        return health, None

    def check_many(self, labels: Iterable[str]) -> list[tuple[str, Health]]:
        """`check` for several accounts, a few at a time; results in the order given."""
        unique = list(dict.fromkeys(labels))

        def one(label: str) -> Health:
            try:
                return self.check(label)
            except KeywardError as err:  # an unknown label fails alone, not the batch
                return Health(ok=False, checked_at=self.clock(), message=str(err))

        if len(unique) <= 1:
            return [(label, one(label)) for label in unique]
        from concurrent.futures import ThreadPoolExecutor  # only when there is a batch

        with ThreadPoolExecutor(max_workers=min(CHECK_WORKERS, len(unique)), thread_name_prefix="keyward-check") as pool:
            return list(zip(unique, pool.map(one, unique)))

    def doctor(self, label: str) -> list[str]:
        """Findings, one line each, prefixed ok:/info:/warning:/problem:/hint:."""
        acct, provider = self._lookup(label)
        now = self.clock()
        lines = [f"{acct.label}: {provider.title}, {acct.env or 'custom base URL'} ({acct.base_url})"]
        lines += self._doctor_environment(acct, provider)
        lines += provider.doctor(acct, now)
        max_age = int(acct.settings.get("key_max_age_days", self.service.data.settings.key_max_age_days))
        age = acct.key_age_days(now)
        if age > max_age:
            lines.append(f"warning: the key is {age:.0f} days old, past its {max_age}-day limit: rotate it")
        else:
            lines.append(f"ok: the key is {age:.0f} days old (limit {max_age})")
        lines += self._doctor_session(acct, provider, now)
        lines += self._doctor_login(acct, provider, now)
        health, err = self._check(label)
        code = getattr(err, "code", None)
        if health.ok:
            lines.append(f"ok: the health call answered HTTP {health.status} in {health.latency_ms} ms")
        elif code != "LoginBlocked":  # _doctor_session has said it, with what to do
            lines.append(f"problem: {health.message}")
        lines += self._doctor_skew(acct, provider, health)
        clock = skew_matters(health.skew_s, self._lifetime(acct, provider))
        if (
            not health.ok
            and health.status in (401, 403)
            and code in KEY_REFUSALS
            and not clock
            and len(provider.environments) > 1
        ):
            others = ", ".join(e for e in provider.environments if e != acct.env)
            lines.append(
                f"hint: keys are per environment: this account uses {acct.env or 'a custom base URL'}; "
                f"a key made on {others} is refused here (`keyward show {label}`)"
            )
        if not health.ok and health.status == 404:
            lines.append("hint: 404 means a wrong base URL or environment, or a health_path the venue lacks")
        return list(dict.fromkeys(lines))  # one finding can come from two checks: say it once

    # --- tokens and sessions ---------------------------------------------------------

    def _token_for(
        self, acct: Account, provider: Any, now: float, *, path: str | None, force: bool, explicit: bool | None = None
    ) -> Token | None:
        if provider.token_kind == "jwt":
            return provider.mint(acct, now, self._keys) if provider.needs_token(acct, path) else None
        if not provider.needs_token(acct, path):
            return None
        if not force and provider.is_fresh(acct.token, now, acct):
            return acct.token
        try:
            return self._login(acct, provider, now, explicit=force if explicit is None else explicit, force=force)
        except RateLimited as err:
            # A 429 on login (TradeReady limits logins per client IP) is reported, never
            # retried in a loop; a cached token that is still valid keeps working meanwhile.
            cached = acct.token
            if force or cached is None or cached.kind != provider.token_kind or cached.expires_at is None:
                raise
            if cached.expires_at <= now:
                raise
            self.notify(f"warning: {err}. Using the cached {cached.kind} of {acct.label} until {iso(cached.expires_at)}")
            return cached

    def _login(self, acct: Account, provider: Any, now: float, *, explicit: bool, force: bool = True) -> Token:
        label = acct.label
        with self._login_lock(label):
            # Another thread may have logged in (or failed) while we waited for the lock.
            fresh, _ = self._lookup(label)
            if not force and provider.is_fresh(fresh.token, now, fresh):
                return fresh.token
            if not explicit:
                self._refuse_if_blocked(fresh, provider)
            sender = self._sender()
            try:
                tok = checked_token(provider.login(fresh, self._http(), now, sender), provider.title, label)
            except KeywardError as err:
                self._explain_skew(err, fresh, provider, sender.last)
                self._save_login_failure(fresh, provider, now, err)
                raise

            def ok(a: Account, data: VaultData) -> None:
                a.token = tok
                a.settings.pop(LOGIN_FAILED_AT, None)
                a.settings.pop(LOGIN_FAILURE, None)
                self.service.audit(data, "login", label, "ok", f"{tok.kind} until {iso(tok.expires_at)}")

            self._change(label, ok)
            return tok

    def _refuse_if_blocked(self, acct: Account, provider: Any) -> None:
        if getattr(provider, "locks_out", False) and acct.settings.get(LOGIN_FAILED_AT) is not None:
            reason = acct.settings.get(LOGIN_FAILURE) or "refused"
            when = iso(acct.settings[LOGIN_FAILED_AT]) if isinstance(acct.settings[LOGIN_FAILED_AT], (int, float)) else "?"
            raise AuthRejected(
                f"the last {provider.title} login of {acct.label!r} failed ({reason}, {when}); keyward will not "
                "log in again on its own, since repeated failures lock the user",
                hint=f"check the credentials with `keyward doctor {acct.label}`, then run `keyward login {acct.label}`",
                code="LoginBlocked",
            )

    def _save_login_failure(self, acct: Account, provider: Any, now: float, err: KeywardError) -> None:
        code = getattr(err, "code", None) or type(err).__name__
        status = getattr(err, "status", None)

        # A login that never reached the venue (no connection) cannot count towards a
        # lock-out: a bot must not stay blocked because the network blinked.  Anything
        # the venue may have seen (a refusal, a timeout, a 5xx) blocks automatic logins.
        reached = not (isinstance(err, NetworkError) and err.code == NOT_SENT)

        def failed(a: Account, data: VaultData) -> None:
            if getattr(provider, "locks_out", False) and reached:
                a.settings[LOGIN_FAILED_AT] = now
                a.settings[LOGIN_FAILURE] = code
            self.service.audit(data, "login", a.label, "failed", f"HTTP {status} {code}" if status else code)

        self._change(acct.label, failed)

    def _slide(self, acct: Account, provider: Any, tok: Token, now: float) -> Token:
        """A session about to be used lives `lifetime` from now; saved only now and then."""
        life = provider.lifetime(acct)
        slid = Token(tok.value, tok.issued_at, now + life, tok.kind)
        # Saved once it has moved 5 minutes, or a quarter of a shorter session's life,
        # so the cached expiry never falls behind the refresh margin.
        if tok.expires_at is None or slid.expires_at - tok.expires_at >= min(SLIDE_SAVE_S, life / 4):
            self._change(acct.label, lambda a, data: self._replace_token(a, tok, slid))
        return slid

    @staticmethod
    def _replace_token(acct: Account, old: Token, new: Token | None) -> None:
        if acct.token is not None and acct.token.value == old.value:  # not one another process replaced
            acct.token = new

    def _hand_out(self, acct: Account, provider: Any, tok: Token | None, now: float, path: str | None = None) -> Credentials:
        """A token leaves keyward (CLI `token`, `headers`, `exec`): save it and audit it."""
        for warning in provider.warnings(acct):
            self.notify(warning)
        last = acct.health
        if last is not None and skew_matters(last.skew_s, self._lifetime(acct, provider)):
            self.notify(f"warning: the last check of {acct.label} measured {describe_skew(last.skew_s)}: the venue may refuse this token")
        if tok is None:
            detail = "headers handed out (no token: key only)"
        elif provider.token_kind == "jwt":
            detail = f"{tok.kind} minted, expires {iso(tok.expires_at)}"
        else:
            detail = f"cached {tok.kind} handed out, expires {iso(tok.expires_at)}"

        def record(a: Account, data: VaultData) -> None:
            if tok is not None and provider.token_kind == "jwt":
                a.token = tok  # so `show`/`list` can say when the last one expires
            self.service.audit(data, "mint", a.label, "ok", detail)

        self._change(acct.label, record)
        return self._credentials(acct, provider, tok, now, path)

    def _credentials(
        self, acct: Account, provider: Any, tok: Token | None, now: float, path: str | None, *, with_env: bool = True
    ) -> Credentials:
        return Credentials(
            account=acct.label,
            venue=acct.venue,
            base_url=acct.base_url,
            token=tok,
            headers=provider.headers(acct, tok, now, path),
            env=provider.exec_env(acct, tok) if with_env else {},  # `exec` variables: not per request
        )

    # --- checks ----------------------------------------------------------------------

    def _health(self, ok: bool, now: float, ex: Exchange | None, message: str, status: int | None) -> Health:
        return Health(
            ok=ok,
            checked_at=now,
            latency_ms=ex.latency_ms if ex else None,
            message=message,
            status=status if status is not None else (ex.status if ex else None),
            skew_s=ex.skew_s if ex else None,
        )

    def _warnings(self, acct: Account, provider: Any, ex: Exchange | None, now: float) -> list[str]:
        notes = []
        if ex is not None and skew_matters(ex.skew_s, self._lifetime(acct, provider)):
            notes.append(
                f"warning: {describe_skew(ex.skew_s)}, over a third of the {self._lifetime(acct, provider):.0f} s "
                "token lifetime"
            )
        if ex is not None and ex.waited_s:
            notes.append(f"waited {ex.waited_s:.1f} s for the rate limit")
        max_age = int(acct.settings.get("key_max_age_days", self.service.data.settings.key_max_age_days))
        if acct.key_age_days(now) > max_age:
            notes.append(f"warning: key {acct.key_age_days(now):.0f} days old, past its {max_age}-day limit: rotate it")
        notes += [w.removeprefix("warning: ") for w in provider.warnings(acct)]
        return notes

    def _save_check(
        self,
        label: str,
        health: Health,
        rl: RateLimit | None,
        detail: str,
        *,
        slide: Token | None = None,
        drop_token: Token | None = None,
    ) -> None:
        def change(a: Account, data: VaultData) -> None:
            a.health = health
            if rl is not None:
                a.rate_limit = rl
                if rl.remaining is not None:
                    a.history = [*a.history, rl.remaining][-HISTORY_LEN:]
            if slide is not None:
                self._replace_token(a, slide, slide)
            if drop_token is not None:
                self._replace_token(a, drop_token, None)
            self.service.audit(data, "check", a.label, "ok" if health.ok else "failed", detail)

        self._change(label, change)

    def _explain_skew(self, err: KeywardError, acct: Account, provider: Any, ex: Exchange | None) -> None:
        """Name the clock as the likely cause of an auth refusal when it is off enough."""
        if not isinstance(err, AuthRejected) or ex is None or ex.skew_s is None:
            return
        if skew_matters(ex.skew_s, self._lifetime(acct, provider)):
            err.message = f"{err.message}; {describe_skew(ex.skew_s)}, which would explain it"
            if not err.hint or "clock" not in err.hint:  # keep a venue hint that already says it
                err.hint = "fix this machine's clock (enable NTP time sync), then retry"
            err.args = (err.message,)

    @staticmethod
    def _lifetime(acct: Account, provider: Any) -> float:
        try:
            return float(provider.lifetime(acct))
        except KeywardError:
            return 30.0

    # --- doctor ----------------------------------------------------------------------

    def _doctor_environment(self, acct: Account, provider: Any) -> list[str]:
        from urllib.parse import urlsplit

        from vault.net.endpoints import is_loopback_host

        envs = provider.environments
        if acct.env and envs.get(acct.env) == acct.base_url:
            names = ", ".join(envs)
            return [f"ok: environment {acct.env} (the venue has: {names})"]
        if is_loopback_host(urlsplit(acct.base_url).hostname):
            return ["info: a loopback base URL: the sandbox, or a local proxy"]
        match = [name for name, url in envs.items() if url == acct.base_url]
        if match:
            return [f"ok: the base URL is the venue's {match[0]} environment"]
        known = "; ".join(f"{name} {url}" for name, url in envs.items())
        return [f"warning: the base URL is none of the venue's environments ({known})"]

    def _doctor_session(self, acct: Account, provider: Any, now: float) -> list[str]:
        lines = []
        if provider.token_kind in SESSION_KINDS and not provider.needs_token(acct, None):
            return lines  # Kiiex in signed mode: no session, no login; its doctor explains the risk instead
        if provider.token_kind in SESSION_KINDS:
            tok = acct.token
            if tok is None:
                lines.append("info: no session cached: the next call logs in once")
            elif tok.expires_at is not None and tok.expires_at <= now:
                lines.append(f"info: the cached {tok.kind} expired at {iso(tok.expires_at)}: the next call logs in once")
            else:
                left = "" if tok.expires_at is None else f" ({(tok.expires_at - now) / 60:.0f} min left)"
                lines.append(f"ok: {tok.kind} valid until {iso(tok.expires_at)}{left}")
        if getattr(provider, "locks_out", False):
            failed_at = acct.settings.get(LOGIN_FAILED_AT)
            if failed_at is not None:
                when = iso(failed_at) if isinstance(failed_at, (int, float)) else "?"
                failure = acct.settings.get(LOGIN_FAILURE) or "refused"
                if failure == "Locked":
                    todo = (
                        f"{provider.title} has locked the user: an administrator must unlock it (contact support), "
                        f"then fix the credentials before `keyward login {acct.label}`"
                    )
                elif failure == "Requires2FA":
                    todo = (
                        f"{provider.title} wants a second factor for this key: allow API-key logins without 2FA in "
                        f"its settings, then run `keyward login {acct.label}`"
                    )
                else:
                    todo = (
                        f"{provider.title} locks the user after several failures in a row: fix the credentials "
                        f"before `keyward login {acct.label}`"
                    )
                lines.append(
                    f"problem: the last login failed ({failure}) at {when}; keyward will not log in again on its own. "
                    + todo
                )
            else:
                lines.append(
                    f"info: lock-out risk: {provider.title} locks the user after repeated failed logins; "
                    "keyward logs in at most once per command and never retries"
                )
        return lines

    def _doctor_login(self, acct: Account, provider: Any, now: float) -> list[str]:
        """TradeReady's health call takes the API key alone, so only a login proves the
        secret: log in (it is not rate-limited and locks nobody out) unless a bearer is
        cached.  Kiiex is not tried here beyond its health call: failed logins lock it."""
        if provider.token_kind != "bearer" or provider.is_fresh(acct.token, now, acct):
            return []
        try:
            tok = self._token_for(acct, provider, now, path=None, force=False, explicit=False)
        except KeywardError as err:
            return [f"problem: the login failed: {err}"]
        return [f"ok: logged in (the API secret is right); bearer valid until {iso(tok.expires_at)}"]

    def _doctor_skew(self, acct: Account, provider: Any, health: Health) -> list[str]:
        if health.skew_s is None and health.status is None:
            return ["info: no answer from the venue, so the clock skew is unknown"]
        if health.skew_s is None:
            return ["info: the venue sent no Date header: clock skew unknown"]
        life = self._lifetime(acct, provider)
        if skew_matters(health.skew_s, life):
            return [
                f"problem: {describe_skew(health.skew_s)}; this account's tokens live {life:.0f} s: "
                "fix this machine's clock (enable NTP time sync)"
            ]
        return [f"ok: clock skew {health.skew_s:+.1f} s, well inside the {life:.0f} s token lifetime"]

    # --- plumbing --------------------------------------------------------------------

    def _locked(self) -> None:
        self._keys.clear()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = harden(self._factory())
            return self._client

    def _sender(self) -> Sender:
        bounds = self.service.data.settings  # the vault's bounds on a venue's answers
        return Sender(clock=self.clock, sleep=self._sleep, on_wait=self._waiting,
                      max_response_bytes=bounds.max_response_bytes, max_decoded_bytes=bounds.max_decoded_bytes,
                      deadline_s=bounds.request_deadline_s)

    def _waiting(self, seconds: float, host: str) -> None:
        self.notify(f"rate-limited by {host}: waiting {seconds:.1f} s before retrying")

    def _login_lock(self, label: str) -> threading.Lock:
        with self._lock:
            return self._login_locks.setdefault(label, threading.Lock())
