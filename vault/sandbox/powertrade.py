"""PowerTrade: ES256 JWTs signed with the account's P-256 private key, in ``X-Power-Trade``.

The server keeps only public keys.  A token must satisfy what the REST reference states:
header alg ES256, claims ``sub`` (the api key), ``iat``, ``exp``, ``client == "api"``,
``iat <= now <= exp`` by the server's clock, ``exp - iat`` no longer than the allowed window
(``powertrade_max_window_s``: 30 s as the REST reference says; the support page's examples
use 60 s and 10 days, the official connector 300 s), and an optional integer ``nonce``.

No source says a token is single-use or that the venue keeps a per-key high-water mark
of nonces (the official connector reuses one token for 270 s): that check is the fault
switch ``powertrade_nonce_high_water``, off by default.  ``uri`` is ignored.
"""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vault.sandbox.server import Request, Response, Route, Sandbox, VenueHandler

TOKEN_HEADER = "X-Power-Trade"

_MESSAGES = {
    "missing_token": "X-Power-Trade header is missing.",
    "malformed_token": "The token is not a JWT.",
    "bad_algorithm": "The token must be signed with ES256.",
    "unknown_key": "No API key matches the token's sub claim.",
    "bad_signature": "The token's signature does not verify with the registered public key.",
    "missing_claim": "The token lacks a required claim (sub, iat, exp, client).",
    "bad_client": 'The token\'s client claim must be "api".',
    "window_too_long": "exp - iat exceeds the allowed window.",
    "not_yet_valid": "iat is in the future by the server's clock.",
    "expired": "exp is in the past by the server's clock.",
    "bad_nonce": "nonce must be an integer.",
    "replayed_nonce": "nonce is not greater than the last one accepted for this key.",
}


class PowerTradeHandler(VenueHandler):
    name = "powertrade"
    root = "/powertrade"

    def __init__(self, sandbox: Sandbox) -> None:
        self._public_keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._last_nonce: dict[str, float] = {}
        super().__init__(sandbox)

    def routes(self) -> list[Route]:
        return [
            Route.of("POST", "/_sandbox/api-keys", lambda req: self.issue(req.json_object())),
            Route.of("GET", "/v1/position/funds", self._position_funds),
            Route.of("GET", "/v1/balance/funds_holdings", self._funds_holdings),
            Route.of("GET", "/v1/market_data/tradeable_entity/all/summary", self._market_summary),
        ]

    def error(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
        # PowerTrade documents plain HTTP statuses; a short machine-readable reason helps clients.
        body: dict[str, Any] = {"error": code.lower(), "message": message}
        if details:
            body["details"] = details
        return Response(status, body)

    def issue(self, params: dict[str, Any]) -> Response:
        private_key = ec.generate_private_key(ec.SECP256R1())
        api_key = str(uuid.uuid4())
        self._public_keys[api_key] = private_key.public_key()
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        # The private key leaves with this response and is not kept: only the user holds it.
        return Response(201, {"api_key": api_key, "private_key": pem})

    # -- authentication --
    def _refuse(self, reason: str) -> Response:
        return Response(401, {"error": reason, "message": _MESSAGES[reason]})

    def _authenticate(self, request: Request) -> str | Response:
        """The api key the request proves it holds, or the 401 refusal."""
        token = request.header(TOKEN_HEADER)
        if not token:
            return self._refuse("missing_token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return self._refuse("malformed_token")
        if header.get("alg") != "ES256":
            return self._refuse("bad_algorithm")
        api_key = unverified.get("sub")
        public_key = self._public_keys.get(api_key) if isinstance(api_key, str) else None
        if public_key is None:
            return self._refuse("unknown_key")
        try:
            # Time claims are checked below against the sandbox clock, not PyJWT's time.time().
            claims = jwt.decode(
                token,
                key=public_key,
                algorithms=["ES256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["sub", "iat", "exp"],
                },
            )
        except jwt.InvalidSignatureError:
            return self._refuse("bad_signature")
        except jwt.MissingRequiredClaimError:
            return self._refuse("missing_claim")
        except jwt.PyJWTError:
            return self._refuse("malformed_token")
        return self._check_claims(api_key, claims)

    def _check_claims(self, api_key: str, claims: dict[str, Any]) -> str | Response:
        iat, exp = claims.get("iat"), claims.get("exp")
        if "client" not in claims or not _is_number(iat) or not _is_number(exp):
            return self._refuse("missing_claim")
        if claims["client"] != "api":
            return self._refuse("bad_client")
        if exp - iat > self.config.powertrade_max_window_s:
            return self._refuse("window_too_long")
        now = self.now()
        if now < iat:
            return self._refuse("not_yet_valid")
        if now > exp:
            return self._refuse("expired")
        if "nonce" in claims:
            nonce = claims["nonce"]
            if not _is_number(nonce) or nonce != int(nonce):  # "monotonically increasing integer number"
                return self._refuse("bad_nonce")
            if self.config.powertrade_nonce_high_water:
                if api_key in self._last_nonce and nonce <= self._last_nonce[api_key]:
                    return self._refuse("replayed_nonce")
                # Recorded only once every other check passed, so a refused token burns nothing.
                self._last_nonce[api_key] = nonce
        return api_key

    def _private(self, request: Request, body: dict[str, Any]) -> Response:
        outcome = self._authenticate(request)
        if isinstance(outcome, Response):
            return outcome
        return self.metered(outcome, lambda: Response(200, body))

    # -- endpoints --
    def _position_funds(self, request: Request) -> Response:
        return self._private(
            request,
            {
                "position_funds": [
                    {"currency": "USD", "available": "9500.00", "reserved": "500.00", "total": "10000.00"},
                    {"currency": "BTC", "available": "0.25000000", "reserved": "0.00000000", "total": "0.25000000"},
                ]
            },
        )

    def _funds_holdings(self, request: Request) -> Response:
        return self._private(
            request,
            {
                "funds_holdings": [
                    {"symbol": "USD", "quantity": "10000.00", "value_usd": "10000.00"},
                    {"symbol": "BTC", "quantity": "0.25000000", "value_usd": "16250.00"},
                ]
            },
        )

    def _market_summary(self, request: Request) -> Response:
        return Response(
            200,
            [
                {"symbol": "BTC-USD-PERPETUAL", "last_price": "65000.0", "volume": "1250.5", "open_interest": "830.1"},
                {"symbol": "ETH-USD-PERPETUAL", "last_price": "3400.0", "volume": "9800.2", "open_interest": "5120.7"},
            ],
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
