"""TradeReady: X-API-Key on most endpoints; a 1-hour bearer JWT from /auth/login for agents."""

from __future__ import annotations

from typing import Mapping

from .base import FieldSpec, normalize_fields


class TradeReady:
    venue = "tradeready"
    title = "TradeReady"
    # X-API-Key alone authenticates, so the key is as secret as the secret.
    fields = (
        FieldSpec("api_key", secret=True, prompt="API key (ak_live_...)"),
        FieldSpec("api_secret", secret=True, prompt="API secret (sk_live_...)"),
        FieldSpec("account_id", secret=False, required=False, prompt="account id"),
        FieldSpec("agent_id", secret=False, required=False, prompt="agent id"),
        FieldSpec("agent_api_key", secret=True, required=False, prompt="agent API key"),
    )
    environments = {"prod": "https://api.tradeready.io"}
    default_env = "prod"
    health_path = "/api/v1/account/info"
    token_kind = "bearer"

    def normalize(self, raw: Mapping[str, str]) -> dict[str, str]:
        return normalize_fields(self, raw)


PROVIDER = TradeReady()
