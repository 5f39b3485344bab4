"""TradeReady: ``X-API-Key``, or a server-signed HS256 JWT from ``POST /auth/login``.

Accounts hold an account-level key (with a secret, shown once at registration) and agents,
each with its own key.  Agent management needs the JWT, because it acts on the parent
account.  Secrets are kept only as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import jwt

from vault.sandbox.server import BadRequestBody, Request, Response, Route, Sandbox, VenueHandler

DEFAULT_STARTING_BALANCE = Decimal("10000.00")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Agent:
    agent_id: str
    display_name: str
    api_key: str


@dataclass
class Account:
    account_id: str
    display_name: str
    email: str | None
    api_key: str
    secret_digest: bytes
    starting_balance: Decimal
    created_at: str
    agents: dict[str, Agent] = field(default_factory=dict)


@dataclass(frozen=True)
class Caller:
    """Who a request authenticated as, and how."""

    account: Account
    agent: Agent | None
    via_jwt: bool
    rate_key: str


def _new_key(prefix: str) -> str:
    return prefix + secrets.token_hex(20)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _valid_display_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and len(value) <= 64


def _iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TradeReadyHandler(VenueHandler):
    name = "tradeready"
    root = "/tradeready"
    bad_body_status = 422  # the venue answers VALIDATION_ERROR/422 for any malformed body

    def __init__(self, sandbox: Sandbox) -> None:
        self._accounts: dict[str, Account] = {}
        # api key -> (account id, agent id or None for the account-level key)
        self._keys: dict[str, tuple[str, str | None]] = {}
        self._jwt_secret = secrets.token_bytes(32)
        super().__init__(sandbox)

    def routes(self) -> list[Route]:
        v1 = "/api/v1"
        return [
            Route.of("POST", v1 + "/auth/register", lambda req: self.issue(req.json_object(empty_ok=False))),
            Route.of("POST", v1 + "/auth/login", self._login),
            Route.of("GET", v1 + "/account/info", self._account_info),
            Route.of("GET", v1 + "/account/balance", self._account_balance),
            Route.of("GET", v1 + "/agents", self._list_agents),
            Route.of("POST", v1 + "/agents", self._create_agent),
            Route.of("POST", v1 + "/agents/{agent_id}/regenerate-key", self._regenerate_agent_key),
        ]

    def error(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
        body: dict[str, Any] = {"code": code, "message": message}
        if details is not None:
            body["details"] = details
        return Response(status, {"error": body})

    # -- registration (the one-time issuance) --
    def issue(self, params: dict[str, Any]) -> Response:
        display_name = params.get("display_name")
        if not _valid_display_name(display_name):
            return self._invalid("display_name", "display_name is required, 1-64 characters.")
        email = params.get("email")
        if email is not None and (not isinstance(email, str) or not _EMAIL.match(email)):
            return self._invalid("email", "email is not a valid address.")
        balance = self._parse_balance(params.get("starting_balance"))
        if balance is None:
            return self._invalid("starting_balance", "starting_balance must be a non-negative decimal string.")
        if email is not None and any(a.email and a.email.lower() == email.lower() for a in self._accounts.values()):
            return self.error(409, "DUPLICATE_ACCOUNT", "An account with this email already exists.")

        api_secret = _new_key("sk_live_")
        account = Account(
            account_id=str(uuid.uuid4()),
            display_name=display_name,
            email=email,
            api_key=_new_key("ak_live_"),
            secret_digest=_digest(api_secret),
            starting_balance=balance,
            created_at=_iso_utc(self.now()),
        )
        self._accounts[account.account_id] = account
        self._keys[account.api_key] = (account.account_id, None)
        agent = self._add_agent(account, display_name)
        return Response(
            201,
            {
                "account_id": account.account_id,
                "api_key": account.api_key,
                "api_secret": api_secret,
                "display_name": display_name,
                "starting_balance": f"{balance:.2f}",
                "message": "Save your API secret now. It will not be shown again.",
                "agent_id": agent.agent_id,  # sandbox addition: lets clients address the default agent
                "agent_api_key": agent.api_key,
            },
        )

    def _invalid(self, field_name: str, message: str) -> Response:
        return self.error(422, "VALIDATION_ERROR", message, {"field": field_name})

    @staticmethod
    def _parse_balance(raw: Any) -> Decimal | None:
        if raw is None:
            return DEFAULT_STARTING_BALANCE
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            return None
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            return None
        return value if value.is_finite() and value >= 0 else None

    def _add_agent(self, account: Account, display_name: str) -> Agent:
        agent = Agent(str(uuid.uuid4()), display_name, _new_key("ak_live_"))
        account.agents[agent.agent_id] = agent
        self._keys[agent.api_key] = (account.account_id, agent.agent_id)
        return agent

    # -- login --
    def _login(self, request: Request) -> Response:
        body = request.json_object(empty_ok=False)
        api_key, api_secret = body.get("api_key"), body.get("api_secret")
        if not isinstance(api_key, str) or not api_key or not isinstance(api_secret, str) or not api_secret:
            return self.error(422, "VALIDATION_ERROR", "api_key and api_secret are required.")
        owner = self._keys.get(api_key)
        if owner is None or owner[1] is not None:  # agent keys have no secret to log in with
            return self.error(401, "INVALID_API_KEY", "API key not found or invalid.")
        account = self._accounts[owner[0]]
        if not hmac.compare_digest(account.secret_digest, _digest(api_secret)):
            # The seed page's code for a wrong secret (venues.md also saw INVALID_API_KEY).
            return self.error(401, "INVALID_TOKEN", "API secret does not match.")
        now = int(self.now())
        expires = now + self.config.tradeready_jwt_lifetime_s
        token = jwt.encode({"sub": account.account_id, "iat": now, "exp": expires}, self._jwt_secret, algorithm="HS256")
        return Response(200, {"token": token, "expires_at": _iso_utc(expires), "token_type": "Bearer"})

    # -- authentication of API calls --
    def _authenticate(self, request: Request, *, jwt_only: bool) -> Caller | Response:
        authorization = request.header("Authorization")
        if authorization is not None:
            return self._authenticate_jwt(request, authorization)
        api_key = request.header("X-API-Key")
        if api_key is None:
            return self.error(401, "INVALID_TOKEN" if jwt_only else "INVALID_API_KEY", "Authentication required.")
        owner = self._keys.get(api_key)
        if owner is None:
            return self.error(401, "INVALID_API_KEY", "API key not found or invalid.")
        if jwt_only:
            return self.error(403, "PERMISSION_DENIED", "This endpoint requires Authorization: Bearer <JWT>.")
        account = self._accounts[owner[0]]
        agent = account.agents[owner[1]] if owner[1] else None
        return Caller(account, agent, via_jwt=False, rate_key=api_key)

    def _authenticate_jwt(self, request: Request, authorization: str) -> Caller | Response:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self.error(401, "INVALID_TOKEN", "Authorization must be 'Bearer <token>'.")
        try:
            # Expiry is checked against the sandbox clock below, not PyJWT's time.time().
            claims = jwt.decode(
                token.strip(),
                self._jwt_secret,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_iat": False, "require": ["sub", "exp"]},
            )
        except jwt.PyJWTError:
            return self.error(401, "INVALID_TOKEN", "Token is invalid.")
        if not isinstance(claims["exp"], int | float) or self.now() >= claims["exp"]:
            return self.error(401, "INVALID_TOKEN", "Token has expired.", {"reason": "expired"})
        account = self._accounts.get(claims["sub"])
        if account is None:
            return self.error(401, "INVALID_TOKEN", "Token subject is unknown.")
        agent = None
        agent_id = request.header("X-Agent-Id")
        if agent_id is not None:
            agent = account.agents.get(agent_id)
            if agent is None:
                return self.error(404, "ACCOUNT_NOT_FOUND", "No agent with this id in the account.")
        return Caller(account, agent, via_jwt=True, rate_key="jwt:" + account.account_id)

    def _private(self, request: Request, respond: Callable[[Caller], Response], *, jwt_only: bool = False) -> Response:
        caller = self._authenticate(request, jwt_only=jwt_only)
        if isinstance(caller, Response):
            return caller
        return self.metered(caller.rate_key, lambda: respond(caller))

    # -- account --
    def _account_info(self, request: Request) -> Response:
        def respond(caller: Caller) -> Response:
            account = caller.account
            body: dict[str, Any] = {
                "account_id": account.account_id,
                "display_name": account.display_name,
                "status": "active",
                "starting_balance": f"{account.starting_balance:.2f}",
                "created_at": account.created_at,
            }
            if caller.agent is not None:
                body["agent_id"] = caller.agent.agent_id
                body["agent_display_name"] = caller.agent.display_name
            return Response(200, body)

        return self._private(request, respond)

    def _account_balance(self, request: Request) -> Response:
        def respond(caller: Caller) -> Response:
            amount = f"{caller.account.starting_balance:.2f}"
            return Response(
                200,
                {
                    "balances": [{"asset": "USDT", "available": amount, "locked": "0.00", "total": amount}],
                    "total_equity_usdt": amount,
                },
            )

        return self._private(request, respond)

    # -- agents (JWT only) --
    def _list_agents(self, request: Request) -> Response:
        def respond(caller: Caller) -> Response:
            agents = [{"agent_id": a.agent_id, "display_name": a.display_name} for a in caller.account.agents.values()]
            return Response(200, {"agents": agents})

        return self._private(request, respond, jwt_only=True)

    def _create_agent(self, request: Request) -> Response:
        def respond(caller: Caller) -> Response:
            try:
                display_name = request.json_object(empty_ok=False).get("display_name")
            except BadRequestBody as exc:
                return self.error(422, "VALIDATION_ERROR", str(exc))
            if not _valid_display_name(display_name):
                return self._invalid("display_name", "display_name is required, 1-64 characters.")
            agent = self._add_agent(caller.account, display_name)
            return Response(201, {"agent_id": agent.agent_id, "api_key": agent.api_key, "display_name": display_name})

        return self._private(request, respond, jwt_only=True)

    def _regenerate_agent_key(self, request: Request, agent_id: str) -> Response:
        def respond(caller: Caller) -> Response:
            agent = caller.account.agents.get(agent_id)
            if agent is None:
                return self.error(404, "ACCOUNT_NOT_FOUND", "No agent with this id in the account.")
            # The old key stops working at once: no grace period, as the venue documents.
            del self._keys[agent.api_key]
            agent.api_key = _new_key("ak_live_")
            self._keys[agent.api_key] = (caller.account.account_id, agent.agent_id)
            return Response(200, {"agent_id": agent.agent_id, "api_key": agent.api_key})

        return self._private(request, respond, jwt_only=True)
