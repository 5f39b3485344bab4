"""Kiiex on AlphaPoint APEX: HMAC-SHA256 signature, AuthenticateUser, then an aptoken session;
or, in signed mode, the four HMAC headers on every request.

Signature = lowercase hex HMAC-SHA256(key=api_secret, msg=nonce + user_id + api_key).
`POST {base}/AuthenticateUser` carries APIKey, Signature, UserId and Nonce as headers and
as the same-named JSON body fields.  The session token's key is not named on Kiiex's page:
APEX documents `SessionToken`, other clients read `Token`; keys match case-insensitively.

Several failed logins in a row lock the user until an administrator unlocks it.  So a
login is attempted at most once per call, never retried, and after a failure keyward
refuses to log in on its own again (see vault.ops.venue_ops) until the user runs `keyward login`.
A session lives one hour after its last use, and only from the IP address that opened it.

Signed mode (`keyward setting LABEL auth_mode signed`) does what ccxt's `ndax` does on the
same APEX gateway: every private request carries `APIKey`, `Signature`, `UserId` and a
fresh millisecond `Nonce` (strictly increasing within this process), and AuthenticateUser
is never called, so no check can count towards the lock-out.  The risk instead: those four
headers authenticate a request on their own, with no documented expiry or nonce check, so
printed headers are a credential; and Kiiex's own page documents only the session flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from vault.core.digest import hmac_sha256
from vault.core.errors import AccountLockedOut, AuthRejected, InputError, InvalidCredential, SecondFactorRequired, VenueError
from vault.net.answers import generic_error, header_rate_limit, json_body
from vault.venues.base import HEALTH_PATH_HELP, MONITOR_SETTINGS, FieldSpec, SettingSpec, health_path, normalize_fields, setting

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from vault.core.model import Account, RateLimit, Token
    from vault.net.http import Sender

LOGIN_PATH = "/AuthenticateUser"
SESSION_IDLE_S = 3600
REFRESH_MARGIN_S = 300
TOKEN_KEYS = ("sessiontoken", "token")  # lower-cased; APEX's name first
NEVER_RETRIED = "keyward will not retry on its own: repeated failures lock the user"
# APEX's generic codes that a private call may answer with (often under HTTP 200).
_APEX_CODES = {20: "Not Authorized", 100: "Invalid Response", 101: "Operation Failed", 102: "Server Error", 104: "Resource Not Found"}


def signature(api_secret: str, nonce: str, user_id: str, api_key: str) -> str:
    """The AuthenticateUser signature: 64 lowercase hex characters."""
    return hmac_sha256(api_secret.encode(), (nonce + user_id + api_key).encode()).hex()


AUTH_MODES = ("session", "signed")


def signed_headers(account: Account, nonce: str) -> dict[str, str]:
    """The four headers of a signed request (ccxt's ndax `sign`), for one nonce."""
    f = account.fields
    return {
        "Nonce": nonce,
        "APIKey": f["api_key"],
        "Signature": signature(f["api_secret"], nonce, f["user_id"], f["api_key"]),
        "UserId": f["user_id"],
    }


class _Nonces:
    """Millisecond nonces that rise strictly per API key within this process."""

    def __init__(self) -> None:
        import threading

        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def next(self, key: str, now: float) -> int:
        ms = int(now * 1000)
        with self._lock:
            ms = max(ms, self._last.get(key, 0) + 1)
            self._last[key] = ms
            return ms


NONCES = _Nonces()


def lower_keys(body: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in body.items()} if isinstance(body, dict) else {}


class Kiiex:
    venue = "kiiex"
    title = "Kiiex"
    fields = (
        FieldSpec("api_key", secret=False, prompt="API key"),
        FieldSpec("api_secret", secret=True, prompt="API secret"),
        FieldSpec("nonce", secret=True, prompt="nonce"),
        FieldSpec("user_id", secret=False, prompt="user id"),
        FieldSpec("username", secret=False, required=False, prompt="user name"),
    )
    environments = {
        "prod": "https://alphaprod.proxy.kiiex.io/ap",
        "staging": "https://apstage.proxy.kiiex.io/ap",
    }
    default_env = "prod"
    health_path = "/GetUserAccounts"
    token_kind = "session"
    settings = (
        SettingSpec("session_idle_s", "seconds", SESSION_IDLE_S, "how long a session lives after its last use"),
        SettingSpec("oms_id", "int", 1, "the OMSId sent with the health call", maximum=1_000_000),
        SettingSpec("health_path", "path", health_path, HEALTH_PATH_HELP + " (or /GetUserAccountInfos)"),
        SettingSpec(
            "auth_mode", "choice", "session",
            "session: AuthenticateUser once, then aptoken (the seed page's flow); signed: the four HMAC headers "
            "on every request with a fresh nonce, no login (as ccxt's ndax does)",
            choices=AUTH_MODES,
        ),
        *MONITOR_SETTINGS,
    )
    locks_out = True  # failed logins count towards a lock-out: vault.ops.venue_ops never retries them

    def normalize(self, raw: Mapping[str, str]) -> dict[str, str]:
        out = normalize_fields(self, raw)
        if not out["user_id"].isdigit():
            raise InvalidCredential("user_id must be a number", hint="use the UserId from Kiiex's export")
        return out

    # --- sessions --------------------------------------------------------------------

    def lifetime(self, account: Account) -> int:
        value = account.settings.get("session_idle_s", SESSION_IDLE_S)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else SESSION_IDLE_S

    def is_fresh(self, token: Token | None, now: float, account: Account | None = None) -> bool:
        """Live for a while yet: 5 minutes, or a quarter of the account's session_idle_s
        when that is shorter (a 2-minute session must not mean a login per request)."""
        if token is None or token.kind != "session" or token.expires_at is None:
            return False
        life = self.lifetime(account) if account is not None else SESSION_IDLE_S
        return token.expires_at - now > min(REFRESH_MARGIN_S, life / 4)

    def signed(self, account: Account) -> bool:
        return setting(account, next(s for s in self.settings if s.name == "auth_mode")) == "signed"

    def needs_token(self, account: Account, path: str | None) -> bool:
        return not self.signed(account)  # signed mode: no session, so no login

    def mint(self, account: Account, now: float, cache: Any = None) -> None:
        return None  # the signature is not a token: it only opens a session

    def login_request(self, account: Account) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, JSON body) for AuthenticateUser: the same four fields in both."""
        f = account.fields
        fields = {
            "APIKey": f["api_key"],
            "Signature": signature(f["api_secret"], f["nonce"], f["user_id"], f["api_key"]),
            "UserId": f["user_id"],
            "Nonce": f["nonce"],
        }
        body = dict(fields)
        if f.get("username"):
            body["UserName"] = f["username"]
        return fields, body

    def login(self, account: Account, client: httpx.Client, now: float, sender: Sender | None = None) -> Token:
        """One AuthenticateUser attempt.  Never retried, not even after a 429 or a 5xx."""
        if self.signed(account):
            raise InputError(
                f"{account.label!r} is in signed mode: it never logs in, every request carries signed headers",
                hint=f"use `keyward headers {account.label}`, or `keyward setting {account.label} auth_mode session`",
            )
        if sender is None:  # (the transport loads only for a request)
            from vault.net.http import Sender

            sender = Sender()
        headers, body = self.login_request(account)
        response = sender.send(
            client, "POST", account.base_url + LOGIN_PATH, headers=headers, json=body, idempotent=False, venue=self.title,
            label=account.label,
        )
        return self.parse_login(account, response, now)

    def parse_login(self, account: Account, response: httpx.Response, now: float) -> Token:
        from vault.core.model import Token

        label, status = account.label, response.status_code
        if status == 429 or status >= 500 or 300 <= status < 400:
            raise generic_error(self.title, label, response, hint=f"try `keyward login {label}` later; {NEVER_RETRIED}")
        body = lower_keys(json_body(response, self.title))
        if body.get("locked") is True:
            raise AccountLockedOut(
                f"Kiiex has locked user {account.fields['user_id']} of {label!r} after repeated failed logins",
                hint="an administrator must unlock it (contact Kiiex support); keyward will not try again on its own",
                status=status,
                code="Locked",
            )
        if body.get("requires2fa") is True:
            raise SecondFactorRequired(
                f"Kiiex wants a second factor (2FA) for {label!r}: the API key alone cannot log in",
                hint="allow API-key logins without 2FA for this key in Kiiex's settings, then `keyward login " + label + "`",
                status=status,
                code="Requires2FA",
            )
        token = next((body[k] for k in TOKEN_KEYS if isinstance(body.get(k), str) and body[k]), None)
        if body.get("authenticated") is not True or status >= 400:
            raise AuthRejected(
                f"Kiiex refused the login of {label!r} (HTTP {status})",
                hint=f"check api_key, api_secret, nonce and user_id (`keyward doctor {label}`); {NEVER_RETRIED}",
                status=status,
                code="NotAuthenticated",
            )
        if token is None or any(c.isspace() for c in token):
            raise VenueError(
                f"Kiiex authenticated {label!r} but sent no session token",
                hint="the API may have changed; report it",
                status=status,
            )
        return Token(value=token, issued_at=now, expires_at=now + self.lifetime(account), kind="session")

    def headers(self, account: Account, token: Token | None, now: float, path: str | None = None) -> dict[str, str]:
        if self.signed(account):
            return signed_headers(account, str(NONCES.next(account.fields["api_key"], now)))
        return {"aptoken": token.value} if token is not None else {}

    def exec_env(self, account: Account, token: Token | None) -> dict[str, str]:
        out = {"KEYWARD_USER_ID": account.fields["user_id"], "KEYWARD_API_KEY": account.fields["api_key"]}
        if token is not None:
            out["KEYWARD_APTOKEN"] = token.value
        return out

    # --- responses -------------------------------------------------------------------

    def health_request(self, account: Account) -> tuple[str, str, Any]:
        body = {"OMSId": account.settings.get("oms_id", 1), "UserId": int(account.fields["user_id"])}
        return "POST", health_path(account, self.health_path), body

    def rate_limit(self, response: httpx.Response, now: float) -> RateLimit | None:
        return header_rate_limit(response, now)  # none published; use them if sent

    def raise_for_error(self, account: Account, response: httpx.Response) -> None:
        """Private calls: APEX may say "Not Authorized" with HTTP 401 or inside a 200."""
        status, label = response.status_code, account.label
        try:
            body = lower_keys(response.json())
        except ValueError:
            if response.is_success:
                json_body(response, self.title)  # raises the "not valid JSON" VenueError
            raise generic_error(self.title, label, response) from None
        errorcode = body.get("errorcode") if body.get("result") is False else None
        if response.is_success and not isinstance(errorcode, int):
            return
        code = f"APEX {errorcode} {_APEX_CODES[errorcode]}" if errorcode in _APEX_CODES else None
        if (status in (401, 403) or errorcode == 20) and self.signed(account):
            raise AuthRejected(
                f"Kiiex refused the signed request of {label!r} (HTTP {status}{', ' + code if code else ''})",
                hint=(
                    "check api_key, api_secret and user_id (`keyward doctor " + label + "`); if Kiiex's proxy does not "
                    f"take per-request signing, `keyward setting {label} auth_mode session`"
                ),
                status=status,
                code=code,
            )
        if status in (401, 403) or errorcode == 20:
            raise AuthRejected(
                f"Kiiex refused the session of {label!r} (HTTP {status}{', ' + code if code else ''})",
                hint=f"it expired, was logged out or is used from another IP address: run `keyward login {label}`",
                status=status,
                code=code,
            )
        if not response.is_success:
            raise generic_error(self.title, label, response)
        raise VenueError(
            f"Kiiex failed the request of {label!r} ({code or 'result false'})",
            hint=f"retry later; see `keyward doctor {label}`",
            status=status,
            code=code,
        )

    # --- doctor ----------------------------------------------------------------------

    def doctor(self, account: Account, now: float) -> list[str]:
        f = account.fields
        out = []
        if f["user_id"].isdigit():
            out.append("ok: user_id is numeric")
        else:
            out.append("problem: user_id must be Kiiex's numeric UserId")
        sig = signature(f["api_secret"], f["nonce"], f["user_id"], f["api_key"])
        out.append(f"ok: signature computed over nonce + user_id + api_key ({len(sig)} hex characters)")
        if any(c.isspace() for c in f["api_secret"] + f["nonce"] + f["api_key"]):
            out.append("problem: a credential contains whitespace: paste it again")
        try:
            signed = self.signed(account)
        except InputError as err:
            return [*out, f"problem: {err}"]
        if signed:
            out.append(
                "info: signed mode: every request carries APIKey, Signature, UserId and a fresh millisecond Nonce, "
                "as ccxt's ndax does; AuthenticateUser is never called, so checks cannot lock the user out"
            )
            out.append(
                "warning: signed-mode risk: the four headers authenticate a request on their own (no documented "
                "expiry or nonce check), so printed headers are as sensitive as the secret; and Kiiex documents "
                f"only the session flow: if its proxy refuses signed requests, `keyward setting {account.label} "
                "auth_mode session`"
            )
        return out

    def warnings(self, account: Account) -> list[str]:
        return []


PROVIDER = Kiiex()
