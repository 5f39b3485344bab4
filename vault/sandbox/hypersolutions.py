"""Hyper Solutions: ``x-api-key``, optionally signed with ``x-signature``; organisations add
``x-app-key`` + ``x-app-signature``.

Both signatures are short-lived HS256 JWTs ``{key, exp}``: ``x-signature`` names the api key
and is signed with the account's JWT key, ``x-app-signature`` names the app key and is signed
with the app secret.  Every signature sent is checked (the official SDK sends both when it
has both keys).  An expired one is refused.  No published source states a ceiling on
``exp``: ``hyper_max_signature_ahead_s`` (0, off, by default) adds one as a fault switch.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from vault.sandbox.server import Request, Response, Route, Sandbox, VenueHandler

PLAN_DAYS = 30
PRODUCT = "akamai"


@dataclass
class Organization:
    app_key: str
    app_secret: str


@dataclass
class ApiKey:
    api_key: str
    jwt_key: str
    require_signature: bool
    organization: Organization | None
    expires_at: str
    disabled: bool = False
    calls: int = 0


class SignatureRefused(Exception):
    pass


class HyperSolutionsHandler(VenueHandler):
    name = "hypersolutions"
    root = "/hypersolutions"

    def __init__(self, sandbox: Sandbox) -> None:
        self._keys: dict[str, ApiKey] = {}
        super().__init__(sandbox)

    def routes(self) -> list[Route]:
        return [
            Route.of("POST", "/_sandbox/api-keys", lambda req: self.issue(req.json_object())),
            Route.of("POST", "/_sandbox/disable", self._disable_endpoint),
            Route.of("GET", "/usage", self._usage),
        ]

    def error(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
        body: dict[str, Any] = {"error": message}
        if details:
            body.update(details)
        return Response(status, body)

    # -- issuance and administration --
    def issue(self, params: dict[str, Any]) -> Response:
        organization = params.get("organization", False)
        require_signature = params.get("require_signature", True)
        if not isinstance(organization, bool) or not isinstance(require_signature, bool):
            return self.error(400, "VALIDATION_ERROR", "organization and require_signature must be booleans")
        org = Organization("app_" + secrets.token_hex(16), secrets.token_urlsafe(32)) if organization else None
        plan_end = self.now() + PLAN_DAYS * 86400
        record = ApiKey(
            api_key=secrets.token_hex(16),
            jwt_key=secrets.token_urlsafe(32),
            require_signature=require_signature,
            organization=org,
            expires_at=datetime.fromtimestamp(plan_end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        self._keys[record.api_key] = record
        body = {"api_key": record.api_key, "jwt_key": record.jwt_key}
        if org is not None:
            body |= {"app_key": org.app_key, "app_secret": org.app_secret}
        return Response(201, body)

    def disable(self, api_key: str) -> None:
        self._keys[api_key].disabled = True

    def _disable_endpoint(self, request: Request) -> Response:
        api_key = request.json_object().get("api_key")
        if not isinstance(api_key, str) or api_key not in self._keys:
            return self.error(404, "NOT_FOUND", "unknown api key")
        self.disable(api_key)
        return Response(200, {"disabled": True})

    # -- authentication --
    def _verify(self, token: str | None, secret: str, expected_key: str, what: str) -> None:
        if not token:
            raise SignatureRefused(f"missing {what}")
        try:
            # exp is checked against the sandbox clock below, not PyJWT's time.time().
            claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False, "require": ["exp"]})
        except jwt.PyJWTError:
            raise SignatureRefused(f"invalid {what}") from None
        exp = claims["exp"]
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise SignatureRefused(f"invalid {what}")
        now = self.now()
        if now >= exp:
            raise SignatureRefused(f"{what} expired")
        ceiling = self.config.hyper_max_signature_ahead_s
        if ceiling > 0 and exp - now > ceiling:  # a fault switch: no source states a ceiling
            raise SignatureRefused(f"{what} expires too far in the future")
        if claims.get("key") != expected_key:
            raise SignatureRefused(f"{what} key mismatch")

    def _authenticate(self, request: Request) -> ApiKey | Response:
        api_key = request.header("x-api-key")
        record = self._keys.get(api_key) if api_key else None
        if record is None:
            return self.error(401, "INVALID_API_KEY", "invalid api key")
        if record.disabled:
            return self.error(403, "DISABLED", "api key disabled")
        try:
            app_key = request.header("x-app-key")
            if app_key is not None:
                # An organisation acting for one of its users: the seed page's table lists
                # x-api-key, x-app-key and x-app-signature, so the app signature stands in for
                # the user's own x-signature; one sent beside it is checked all the same.
                org = record.organization
                if org is None or not secrets.compare_digest(app_key, org.app_key):
                    raise SignatureRefused("invalid app key")
                self._verify(request.header("x-app-signature"), org.app_secret, org.app_key, "app signature")
            if request.header("x-signature") is not None or (record.require_signature and app_key is None):
                self._verify(request.header("x-signature"), record.jwt_key, record.api_key, "signature")
        except SignatureRefused as refusal:
            return self.error(401, "INVALID_SIGNATURE", str(refusal))
        return record

    # -- endpoints --
    def _usage(self, request: Request) -> Response:
        record = self._authenticate(request)
        if isinstance(record, Response):
            return record

        def respond() -> Response:
            record.calls += 1
            quota = self.config.hyper_quota
            used = min(record.calls, quota)
            plan = {
                "product": PRODUCT,
                "requestsUsed": used,
                "requestsQuota": quota,
                "requestsRemaining": quota - used,
                "expiresAt": record.expires_at,
                "numRequests": record.calls,
            }
            return Response(200, {"balanceEuro": 12.5, "plans": [plan]})

        return self.metered(record.api_key, respond)
