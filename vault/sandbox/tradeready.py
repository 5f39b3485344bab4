"""TradeReady: ``X-API-Key``, or a server-signed HS256 JWT from ``POST /auth/login``.

Accounts hold an account-level key (with a secret, shown once at registration) and agents,
each with its own key.  Secrets are kept only as SHA-256 digests.

Where the seed page is silent or less precise, this follows the venue's published backend
(``src/api/middleware/auth.py``, ``src/api/routes/auth.py``, ``src/api/routes/agents.py``,
``src/api/middleware/rate_limit.py``); docs/sandbox.md gives each rule's source:

* ``X-API-Key`` is judged first; the Bearer token only when no ``X-API-Key`` is sent;
* every authenticated endpoint, ``/agents`` included, takes the account key, an agent's
  key or the bearer; another account's agent is ``403 PERMISSION_DENIED``;
* login: an unknown key or an agent's key is ``404 ACCOUNT_NOT_FOUND``, a wrong secret
  ``401 INVALID_API_KEY`` (``tradeready_wrong_secret_code`` switches to the seed's
  ``INVALID_TOKEN``);
* request validation fails as FastAPI does: ``422 {"detail": [{loc, msg, type}]}``;
* rate limits count per account (its key, its agents' keys and its bearer share one
  counter); ``/auth/*`` is not limited unless ``tradeready_auth_limit_per_min`` says so
  (another version of the backend limits it per client IP).
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
    return prefix + secrets.token_hex(32)  # the backend's keys: the prefix and 64 characters


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


MAX_DISPLAY_NAME = 100  # the backend's schema: empty allowed, at most 100 (the seed page says 1-64)


def _display_name_problem(value: Any) -> dict[str, Any] | None:
    """FastAPI's detail item for a bad display_name, or None."""
    if value is None:
        return _detail("display_name", "missing", "Field required")
    if not isinstance(value, str):
        return _detail("display_name", "string_type", "Input should be a valid string")
    if len(value) > MAX_DISPLAY_NAME:
        return _detail("display_name", "string_too_long", f"String should have at most {MAX_DISPLAY_NAME} characters")
    return None


def _detail(field_name: str, kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "loc": ["body", field_name], "msg": message}


def _iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TradeReadyHandler(VenueHandler):
    name = "tradeready"
    root = "/tradeready"
    bad_body_status = 422  # the venue answers VALIDATION_ERROR/422 for any malformed body

    def __init__(self, sandbox: Sandbox) -> None:
        self._auth_calls: dict[tuple[str, str], list[float]] = {}
        self._accounts: dict[str, Account] = {}
        # api key -> (account id, agent id or None for the account-level key)
        self._keys: dict[str, tuple[str, str | None]] = {}
        self._jwt_secret = secrets.token_bytes(32)
        super().__init__(sandbox)

    def routes(self) -> list[Route]:
        v1 = "/api/v1"
        return [
            Route.of("POST", v1 + "/auth/register", self._register),
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

    # -- FastAPI's shapes --
    @staticmethod
    def _unprocessable(*problems: dict[str, Any]) -> Response:
        """Request validation fails before any handler runs: FastAPI's 422, not the envelope."""
        return Response(422, {"detail": list(problems)})

    def _json_body(self, request: Request) -> dict[str, Any] | Response:
        try:
            return request.json_object(empty_ok=False)
        except BadRequestBody:
            return self._unprocessable({"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error"})

    def _auth_limited(self, request: Request, endpoint: str) -> Response | None:
        """``tradeready_auth_limit_per_min`` calls a minute per client IP and endpoint (0: none)."""
        limit = self.config.tradeready_auth_limit_per_min
        if limit <= 0:
            return None
        now = self.now()
        calls = [t for t in self._auth_calls.get((request.client_ip, endpoint), []) if t > now - 60]
        if len(calls) >= limit:
            wait = max(1, int(calls[0] + 60 - now + 0.999))
            response = self.error(
                429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded.",
                {"limit": limit, "window_seconds": 60, "retry_after_seconds": wait},
            )
            response.headers["Retry-After"] = str(wait)
            return response
        self._auth_calls[(request.client_ip, endpoint)] = [*calls, now]
        return None

    # -- registration (the one-time issuance) --
    def _register(self, request: Request) -> Response:
        limited = self._auth_limited(request, "register")
        if limited is not None:
            return limited
        body = self._json_body(request)
        return body if isinstance(body, Response) else self.issue(body)

    def issue(self, params: dict[str, Any]) -> Response:
        display_name = params.get("display_name")
        problems = [p for p in [_display_name_problem(display_name)] if p is not None]
        email = params.get("email")
        if email is not None and (not isinstance(email, str) or not _EMAIL.match(email)):
            problems.append(_detail("email", "value_error", "value is not a valid email address"))
        balance = self._parse_balance(params.get("starting_balance"))
        if balance is None:
            problems.append(_detail("starting_balance", "decimal_parsing", "Input should be a valid decimal"))
        if problems:
            return self._unprocessable(*problems)
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
        limited = self._auth_limited(request, "login")
        if limited is not None:
            return limited
        body = self._json_body(request)
        if isinstance(body, Response):
            return body
        api_key, api_secret = body.get("api_key"), body.get("api_secret")
        missing = [_detail(name, "missing", "Field required") for name, value in (("api_key", api_key), ("api_secret", api_secret))
                   if not isinstance(value, str)]
        if missing:
            return self._unprocessable(*missing)
        owner = self._keys.get(api_key)
        if owner is None or owner[1] is not None:  # agent keys have no secret to log in with
            return self.error(404, "ACCOUNT_NOT_FOUND", "Account not found.")
        account = self._accounts[owner[0]]
        if not hmac.compare_digest(account.secret_digest, _digest(api_secret)):
            if self.config.tradeready_wrong_secret_code == "INVALID_TOKEN":  # the seed page's table
                return self.error(401, "INVALID_TOKEN", "API secret does not match.")
            return self.error(401, "INVALID_API_KEY", "API secret is invalid.")  # the backend
        now = int(self.now())
        expires = now + self.config.tradeready_jwt_lifetime_s
        token = jwt.encode({"sub": account.account_id, "iat": now, "exp": expires}, self._jwt_secret, algorithm="HS256")
        return Response(200, {"token": token, "expires_at": _iso_utc(expires), "token_type": "Bearer"})

    # -- authentication of API calls --
    def _authenticate(self, request: Request) -> Caller | Response:
        """The backend's `_authenticate_request`: X-API-Key first; the Bearer only without one."""
        api_key = (request.header("X-API-Key") or "").strip()
        authorization = (request.header("Authorization") or "").strip()
        token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        if api_key:
            owner = self._keys.get(api_key)
            if owner is None:
                return self.error(401, "INVALID_API_KEY", "Invalid API key.")
            account = self._accounts[owner[0]]
            agent = account.agents[owner[1]] if owner[1] else None
            return Caller(account, agent, via_jwt=False, rate_key="account:" + account.account_id)
        if token:
            return self._authenticate_jwt(request, token)
        return self.error(401, "INVALID_API_KEY", "Authentication credentials are required.")

    def _authenticate_jwt(self, request: Request, token: str) -> Caller | Response:
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
        # X-Agent-Id scopes a bearer request; an unknown id is ignored, as the backend does.
        agent = account.agents.get((request.header("X-Agent-Id") or "").strip())
        return Caller(account, agent, via_jwt=True, rate_key="account:" + account.account_id)

    def _private(self, request: Request, respond: Callable[[Caller], Response]) -> Response:
        caller = self._authenticate(request)
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
                "starting_balance": f"{account.starting_balance:.8f}",
                "created_at": account.created_at,
            }
            if caller.agent is not None:
                body["agent_id"] = caller.agent.agent_id
                body["agent_display_name"] = caller.agent.display_name
            return Response(200, body)

        return self._private(request, respond)

    def _account_balance(self, request: Request) -> Response:
        def respond(caller: Caller) -> Response:
            amount = f"{caller.account.starting_balance:.8f}"  # the backend's 8 decimals
            return Response(
                200,
                {
                    "balances": [{"asset": "USDT", "available": amount, "locked": "0.00000000", "total": amount}],
                    "total_equity_usdt": amount,
                },
            )

        return self._private(request, respond)

    # -- agents: the bearer, the account key or an agent's key (the backend) --
    def _list_agents(self, request: Request) -> Response:
        def respond(caller: Caller) -> Response:
            agents = [
                {
                    "id": a.agent_id,
                    "account_id": caller.account.account_id,
                    "display_name": a.display_name,
                    "api_key_preview": a.api_key[:12] + "...",
                    "starting_balance": f"{caller.account.starting_balance:.8f}",
                    "status": "active",
                }
                for a in caller.account.agents.values()
            ]
            return Response(200, {"agents": agents, "total": len(agents)})

        return self._private(request, respond)

    def _create_agent(self, request: Request) -> Response:
        def respond(caller: Caller) -> Response:
            body = self._json_body(request)
            if isinstance(body, Response):
                return body
            display_name = body.get("display_name")
            problem = _display_name_problem(display_name)
            if problem is not None:
                return self._unprocessable(problem)
            agent = self._add_agent(caller.account, display_name)
            return Response(201, {
                "agent_id": agent.agent_id, "api_key": agent.api_key, "display_name": display_name,
                "starting_balance": f"{caller.account.starting_balance:.8f}",
                "message": "Save the agent's API key now.",
            })

        return self._private(request, respond)

    def _regenerate_agent_key(self, request: Request, agent_id: str) -> Response:
        def respond(caller: Caller) -> Response:
            agent = caller.account.agents.get(agent_id)
            if agent is None:
                if any(agent_id in a.agents for a in self._accounts.values()):
                    return self.error(403, "PERMISSION_DENIED", "You do not own this agent.")
                # The backend answers 500 here (a server bug); the sandbox the envelope's 404.
                return self.error(404, "ACCOUNT_NOT_FOUND", "No agent with this id in the account.")
            # The old key stops working at once: no grace period, as the venue documents.
            del self._keys[agent.api_key]
            agent.api_key = _new_key("ak_live_")
            self._keys[agent.api_key] = (caller.account.account_id, agent.agent_id)
            return Response(200, {"agent_id": agent.agent_id, "api_key": agent.api_key,
                                  "message": "API key regenerated. The old key no longer works."})

        return self._private(request, respond)
