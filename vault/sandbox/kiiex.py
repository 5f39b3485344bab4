"""Kiiex on AlphaPoint APEX: HMAC-signed ``AuthenticateUser``, then an ``aptoken`` session.

Signature = lowercase hex HMAC-SHA256(key=APISecret, msg=Nonce + UserId + APIKey).  A user
who fails ``kiiex_lockout_after`` logins in a row is locked until an administrator unlocks
it, which is why clients must never retry ``AuthenticateUser`` on their own.  A session
lives ``kiiex_session_idle_s`` after its last use, and only for the IP address that opened it.

Private calls take the session (``aptoken``, any case: ccxt sends ``APToken``) or, as ccxt's
``ndax`` sends them on the same APEX gateway, the four headers ``APIKey``, ``Signature``,
``UserId`` and ``Nonce`` on the request itself.  No source states a nonce rule for those:
any non-empty nonce is accepted, and failed signed requests do not count towards the
lock-out (no source says they do).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vault.sandbox.server import Request, Response, Route, Sandbox, VenueHandler

OMS_ID = 1
_FIRST_USER_ID = 1001
_CREDENTIAL_FIELDS = ("APIKey", "Signature", "UserId", "Nonce")

# APEX generic error codes, keyed by the symbolic codes the server layer uses.
_ERROR_CODES = {
    "NOT_AUTHORIZED": 20,
    "OPERATION_FAILED": 101,
    "INTERNAL_ERROR": 102,
    "SERVICE_UNAVAILABLE": 102,
    "NOT_FOUND": 104,
    "METHOD_NOT_ALLOWED": 104,
    "RATE_LIMIT_EXCEEDED": 101,
}


@dataclass
class User:
    user_id: int
    user_name: str
    account_id: int
    api_key: str
    api_secret: str
    consecutive_failures: int = 0
    locked: bool = False

    @property
    def email(self) -> str:
        return f"{self.user_name}@sandbox.invalid"


@dataclass
class Session:
    user_id: int
    client_ip: str
    last_used: float


def expected_signature(api_secret: str, nonce: str, user_id: str, api_key: str) -> str:
    return hmac.new(api_secret.encode(), (nonce + user_id + api_key).encode(), hashlib.sha256).hexdigest()


def _camel(value: Any) -> Any:
    """PascalCase keys to the camelCase the seed page's OpenAPI shows (``use2FA``, ``omsId``)."""
    if isinstance(value, dict):
        return {(_camel_key(k)): _camel(v) for k, v in value.items()}
    return value


def _camel_key(key: str) -> str:
    if key == "OMSId":
        return "omsId"
    return key[:1].lower() + key[1:]


class KiiexHandler(VenueHandler):
    name = "kiiex"
    root = "/kiiex/ap"

    def __init__(self, sandbox: Sandbox) -> None:
        self._users: dict[int, User] = {}
        self._by_api_key: dict[str, User] = {}
        self._sessions: dict[str, Session] = {}
        self._attempts: dict[str, int] = {}
        super().__init__(sandbox)

    def routes(self) -> list[Route]:
        routes = [
            Route.of("POST", "/_sandbox/api-keys", lambda req: self.issue(req.json_object())),
            Route.of("POST", "/_sandbox/unlock", self._unlock_endpoint),
            Route.of("POST", "/AuthenticateUser", self._authenticate_user),
            Route.of("POST", "/LogOut", self._log_out),
        ]
        # APEX's HTTP gateway takes both verbs for these.
        for method in ("GET", "POST"):
            routes += [
                Route.of(method, "/Ping", lambda req: Response(200, {"msg": "PONG"})),
                Route.of(method, "/GetUserAccounts", self._get_user_accounts),
                Route.of(method, "/GetUserAccountInfos", self._get_user_account_infos),
            ]
        return routes

    def error(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
        errorcode = _ERROR_CODES.get(code, 101)
        return Response(status, {"result": False, "errormsg": message, "errorcode": errorcode, "detail": details})

    def _not_authorized(self) -> Response:
        return Response(401, {"result": False, "errormsg": "Not Authorized", "errorcode": 20, "detail": None})

    # -- issuance and administration --
    def issue(self, params: dict[str, Any]) -> Response:
        user_id = _FIRST_USER_ID + len(self._users)
        user_name = params.get("UserName")
        if not isinstance(user_name, str) or not user_name.strip():
            user_name = f"sandbox{user_id}"
        user = User(
            user_id=user_id,
            user_name=user_name,
            account_id=user_id + 5000,
            api_key=secrets.token_hex(16),
            api_secret=secrets.token_hex(16),
        )
        self._users[user_id] = user
        self._by_api_key[user.api_key] = user
        # The web UI's "Export to JSON".  The Nonce is what the UI shows; AuthenticateUser
        # accepts any nonce because the signature covers it.
        return Response(
            201,
            {
                "APIKey": user.api_key,
                "APISecret": user.api_secret,
                "Nonce": str(secrets.randbelow(10**12)),
                "UserId": str(user_id),
                "UserName": user_name,
            },
        )

    def unlock(self, user_id: str) -> None:
        user = self._user(user_id)
        if user is None:
            raise KeyError(f"no Kiiex sandbox user {user_id}")
        user.locked = False
        user.consecutive_failures = 0

    def attempts(self, user_id: str) -> int:
        return self._attempts.get(str(user_id).strip(), 0)

    def _user(self, user_id: str) -> User | None:
        return self._users.get(int(user_id)) if str(user_id).strip().isdigit() else None

    def _unlock_endpoint(self, request: Request) -> Response:
        user_id = request.json_object().get("UserId")
        if self._user(str(user_id)) is None:
            return self.error(404, "NOT_FOUND", "Resource Not Found")
        self.unlock(str(user_id))
        return Response(200, {"result": True, "errormsg": None, "errorcode": 0, "detail": None})

    # -- login --
    def _credentials(self, request: Request) -> dict[str, str]:
        """Headers first, then same-named JSON body fields (the OpenAPI block lists both)."""
        try:
            body = {k.lower(): v for k, v in request.json_object().items()}
        except ValueError:
            body = {}
        found = {}
        for name in _CREDENTIAL_FIELDS:
            value = request.header(name)
            if value is None and body.get(name.lower()) is not None:
                value = str(body[name.lower()])
            found[name] = (value or "").strip()
        return found

    def _authenticate_user(self, request: Request) -> Response:
        creds = self._credentials(request)
        self._attempts[creds["UserId"]] = self._attempts.get(creds["UserId"], 0) + 1
        user = self._user(creds["UserId"])
        if user is None:
            return self._login_failed(None, "Invalid API key or signature")
        if user.locked:
            return self._login_failed(user, "User is locked; an administrator must unlock it")
        expected = expected_signature(user.api_secret, creds["Nonce"], creds["UserId"], user.api_key)
        key_ok = hmac.compare_digest(creds["APIKey"].encode(), user.api_key.encode())
        signature_ok = hmac.compare_digest(creds["Signature"].encode(), expected.encode())
        if not (creds["Nonce"] and key_ok and signature_ok):
            user.consecutive_failures += 1
            if user.consecutive_failures >= self.config.kiiex_lockout_after:
                user.locked = True
            return self._login_failed(user, "Invalid API key or signature")
        user.consecutive_failures = 0
        if self.config.kiiex_requires_2fa:
            # The key is right but not sufficient: APEX answers 200 and waits for a 2FA code.
            return self._shaped(
                200, {"Authenticated": False, "Requires2FA": True, "AuthType": "Google", "Locked": False, "errormsg": None}
            )
        token = str(uuid.uuid4())
        self._sessions[token] = Session(user.user_id, request.client_ip, self.now())
        body = {
            "Authenticated": True,
            "User": {
                "UserId": user.user_id,
                "UserName": user.user_name,
                "Email": user.email,
                "EmailVerified": True,
                "AccountId": user.account_id,
                "OMSId": OMS_ID,
                "Use2FA": False,
            },
            "Locked": False,
            "Requires2FA": False,
        }
        shaped = self._shaped(200, body)
        shaped.body[self.config.kiiex_token_key] = token  # verbatim: tests pick the name
        return shaped

    def _login_failed(self, user: User | None, message: str) -> Response:
        locked = user is not None and user.locked
        return self._shaped(401, {"Authenticated": False, "Locked": locked, "errormsg": message})

    def _shaped(self, status: int, body: dict[str, Any]) -> Response:
        return Response(status, _camel(body) if self.config.kiiex_camel_case else body)

    # -- sessions --
    def _session(self, request: Request) -> tuple[str, Session] | None:
        token = request.header("aptoken")
        session = self._sessions.get(token) if token else None
        if token is None or session is None:
            return None
        if self.now() - session.last_used > self.config.kiiex_session_idle_s:
            del self._sessions[token]
            return None
        if session.client_ip != request.client_ip:
            return None  # a token lifted to another machine is worthless, and stays valid here
        session.last_used = self.now()  # every use slides the idle timeout
        return token, session

    def _signed_user(self, request: Request) -> User | None:
        """The user a request's own four HMAC headers prove (ccxt's ndax), if they do."""
        creds = {name: (request.header(name) or "").strip() for name in _CREDENTIAL_FIELDS}
        user = self._user(creds["UserId"])
        if user is None or user.locked or not creds["Nonce"]:
            return None
        expected = expected_signature(user.api_secret, creds["Nonce"], creds["UserId"], user.api_key)
        key_ok = hmac.compare_digest(creds["APIKey"].encode(), user.api_key.encode())
        return user if key_ok and hmac.compare_digest(creds["Signature"].encode(), expected.encode()) else None

    def _private(self, request: Request, body: Callable[[User], Any]) -> Response:
        if request.header("aptoken") is None and request.header("Signature") is not None:
            signed = self._signed_user(request)
            if signed is None:
                return self._not_authorized()
            return self.metered(signed.api_key, lambda: Response(200, body(signed)))
        found = self._session(request)
        if found is None:
            return self._not_authorized()
        user = self._users[found[1].user_id]
        return self.metered(user.api_key, lambda: Response(200, body(user)))

    def _log_out(self, request: Request) -> Response:
        found = self._session(request)
        if found is None:
            return self._not_authorized()
        del self._sessions[found[0]]
        return Response(200, {"result": True, "errormsg": None, "errorcode": 0, "detail": None})

    def _get_user_accounts(self, request: Request) -> Response:
        return self._private(request, lambda user: [user.account_id])

    def _get_user_account_infos(self, request: Request) -> Response:
        return self._private(
            request,
            lambda user: [
                {
                    "OMSID": OMS_ID,
                    "AccountId": user.account_id,
                    "AccountName": user.user_name,
                    "AccountHandle": None,
                    "AccountType": "Asset",
                    "VerificationLevel": 1,
                    "FeeGroupId": 0,
                }
            ],
        )
