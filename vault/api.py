"""The Python API for scripts: `vault.auth(label)` as an httpx.Auth.  A face, like the
command line: it uses the agent's client, vault.ops, vault.venues, vault.net and
vault.core, never vault.cli.

    import httpx, vault

    auth = vault.auth("desk")                      # unlocks the vault once
    with httpx.Client(base_url=auth.base_url, auth=auth) as client:
        client.get("/v1/position/funds")           # signed for this request

Per-request schemes (PowerTrade's ES256 JWT, Hyper's signatures) are signed afresh for
every request, retries included.  PowerTrade wants a rising nonce, and concurrent requests
reach it in any order: a 401 whose reason is `replayed_nonce` (and only that one) is signed
again and resent, one request at a time, at most NONCE_RETRIES times; new requests are signed
only while no resend is in flight, so a resend is not overtaken by this process's own newer
nonces.  Session schemes log in when needed: TradeReady's bearer
(only for /agents and /battles, which require it) and Kiiex's aptoken.  After a 401 the
request is retried once with a fresh login for TradeReady only; a Kiiex 401 drops the
session and is returned as it is (its next request logs in once): Kiiex locks users out
after repeated failed logins, so keyward never retries one.

Logins go through keyward's own client (no redirects, no plain http off loopback), never
through the caller's, whose settings keyward does not control.  Credentials are only ever
attached to requests for the account's own origin (scheme, host and port).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncGenerator, Generator
from urllib.parse import urlsplit

import httpx

from vault.core.errors import InputError
from vault.net.endpoints import split_url
from vault.net.http import ensure_transport_allowed
from vault.venues.powertrade import nonce_raced

if TYPE_CHECKING:  # pragma: no cover
    from vault.ops.venue_ops import VenueOps

__all__ = ["KeywardAuth", "auth", "client", "open_vault"]

NONCE_RETRIES = 3


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = split_url(url)
    if parts is None:
        return "", "", None  # matches no base URL: such a request gets no credentials
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class KeywardAuth(httpx.Auth):
    """Signs requests for one vault account (see the module docstring)."""

    requires_request_body = False
    requires_response_body = False

    def __init__(self, ops: VenueOps, label: str) -> None:
        info = ops.summary(label)
        self._ops = ops
        self.label = label
        self.venue: str = info["venue"]
        self.base_url: str = info["base_url"]
        self._origin = _origin(self.base_url)
        self._base_path = urlsplit(self.base_url).path.rstrip("/")
        self._resend_lock = threading.Lock()
        self._anyio_lock: Any = None

    def _async_resend_lock(self) -> Any:
        if self._anyio_lock is None:
            import anyio  # httpx's own dependency: already loaded by an AsyncClient

            self._anyio_lock = anyio.Lock()
        return self._anyio_lock

    def __repr__(self) -> str:
        return f"KeywardAuth(label={self.label!r}, venue={self.venue!r})"

    # --- the flows -------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.venue == "powertrade":
            # Signed under the resend lock: while a raced request is re-signed and resent
            # (the lock held until its answer), no newer nonce can overtake it, so one
            # resend is enough against this process's own concurrency.
            with self._resend_lock:
                carried = self._sign(request, force_login=False)
        else:
            carried = self._sign(request, force_login=False)
        response = yield request
        if self.venue == "powertrade" and response.status_code == 401:
            response.read()
            if nonce_raced(response):
                # Resent one at a time, so that retries stop racing each other.
                with self._resend_lock:
                    for _ in range(NONCE_RETRIES):
                        self._sign(request, force_login=False)
                        response = yield request
                        if response.status_code != 401:
                            break
                        response.read()
                        if not nonce_raced(response):
                            break
        if response.status_code == 401:
            if self._relogin(request):
                self._sign(request, force_login=True)
                yield request
            elif self.venue == "kiiex":
                self._ops.forget_session(self.label, carried)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # A login (and the vault save after it) blocks: run it in a worker thread so the
        # event loop keeps going.  Per-request signing costs microseconds: done inline.
        session = self.venue in ("tradeready", "kiiex")
        if self.venue == "powertrade":
            async with self._async_resend_lock():  # see auth_flow
                carried = self._sign(request, False)
        else:
            carried = await self._run(session, self._sign, request, False)
        response = yield request
        if self.venue == "powertrade" and response.status_code == 401:
            await response.aread()
            if nonce_raced(response):
                async with self._async_resend_lock():
                    for _ in range(NONCE_RETRIES):
                        self._sign(request, False)
                        response = yield request
                        if response.status_code != 401:
                            break
                        await response.aread()
                        if not nonce_raced(response):
                            break
        if response.status_code == 401:
            if self._relogin(request):
                await self._run(True, self._sign, request, True)
                yield request
            elif self.venue == "kiiex":
                await self._run(True, self._ops.forget_session, self.label, carried)

    @staticmethod
    async def _run(offload: bool, fn: Any, *args: Any) -> Any:
        if not offload:
            return fn(*args)
        import anyio.to_thread

        return await anyio.to_thread.run_sync(fn, *args)

    # --- signing ---------------------------------------------------------------------

    def _relogin(self, request: httpx.Request) -> bool:
        """Only a TradeReady bearer may be refreshed and the request sent once more."""
        return self.venue == "tradeready" and "Authorization" in request.headers

    def _sign(self, request: httpx.Request, force_login: bool) -> str | None:
        """Attach this request's headers; returns the token they carry, if any (kept per
        request, so a refused session is told apart from a newer one)."""
        ensure_transport_allowed(request.url)
        if _origin(str(request.url)) != self._origin:
            raise InputError(
                f"refusing to attach the credentials of {self.label!r} to a request for "
                f"{request.url.host}: the account's base URL is {self.base_url}",
                hint="use auth.base_url as the client's base_url",
            )
        path = request.url.path
        if self._base_path and path.startswith(self._base_path):
            path = path[len(self._base_path) :] or "/"
        creds = self._ops.sign(self.label, path, force_login=force_login)
        request.headers.update(creds.headers)
        return creds.token.value if creds.token is not None else None


def open_vault(
    vault_path: str | os.PathLike[str] | None = None, *, passphrase_file: str | None = None, agent: bool = True
) -> VenueOps:
    """The vault's operations, to share between auths.

    With `agent` (the default) and an unlock agent holding this vault (`keyward
    unlock`), its client: no passphrase, no KDF run, signing done by the agent, and the
    passphrase asked only if the agent goes away meanwhile.  Otherwise the vault is
    unlocked here (one KDF run), the passphrase coming from `passphrase_file`, else
    $KEYWARD_PASSPHRASE_FILE, else a no-echo prompt on the terminal."""
    from vault.core.storage import default_vault_path

    path = Path(vault_path).expanduser() if vault_path else default_vault_path()
    if agent:
        from vault.agent.client import connect

        client = connect(path, fallback=lambda: _unlock_here(path, passphrase_file))
        if client is not None:
            return client  # type: ignore[return-value]  # VenueOps' methods and return types
    return _unlock_here(path, passphrase_file)


def _unlock_here(path: Path, passphrase_file: str | None) -> VenueOps:
    from vault.core.passphrase_file import read_passphrase_file
    from vault.ops.venue_ops import VenueOps
    from vault.core.service import VaultService

    source = passphrase_file or os.environ.get("KEYWARD_PASSPHRASE_FILE")
    if source:
        passphrase = read_passphrase_file(source)
    elif sys.stdin is not None and sys.stdin.isatty():
        from vault.core.terminal import ask_secret  # getpass, without its lost-Ctrl-C race

        passphrase = ask_secret(f"keyward passphrase for {path}: ")
    else:
        raise InputError(
            "no passphrase: there is no terminal to ask on",
            hint="pass passphrase_file=... or set KEYWARD_PASSPHRASE_FILE",
        )
    return VenueOps(VaultService.unlock(path, passphrase))


def auth(
    label: str,
    *,
    vault_path: str | os.PathLike[str] | None = None,
    passphrase_file: str | None = None,
    ops: VenueOps | None = None,
) -> KeywardAuth:
    """An httpx.Auth for one account (unlocking the vault unless `ops` is given)."""
    return KeywardAuth(ops or open_vault(vault_path, passphrase_file=passphrase_file), label)


def client(
    label: str,
    *,
    vault_path: str | os.PathLike[str] | None = None,
    passphrase_file: str | None = None,
    ops: VenueOps | None = None,
) -> httpx.Client:
    """An httpx.Client on the account's base URL, signing every request, built like
    keyward's own (TLS verified, no redirects followed)."""
    from vault.net.http import make_client

    signer = auth(label, vault_path=vault_path, passphrase_file=passphrase_file, ops=ops)
    c = make_client()
    c.base_url = httpx.URL(signer.base_url + "/")
    c.auth = signer
    return c
