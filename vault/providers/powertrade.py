"""PowerTrade: an ES256 JWT signed with the account's EC P-256 key, sent as X-Power-Trade."""

from __future__ import annotations

from typing import Mapping

from ..pem import normalize_ec_p256_private_key
from .base import FieldSpec, normalize_fields


class PowerTrade:
    venue = "powertrade"
    title = "PowerTrade"
    fields = (
        FieldSpec("api_key", secret=False, prompt="API key"),
        FieldSpec("private_key", secret=True, prompt="private key (PEM)", multiline=True),
    )
    environments = {
        "prod": "https://api.rest.prod.power.trade",
        "test": "https://api.rest.test.power.trade",
        "dev": "https://api.rest.dev.power.trade",
    }
    default_env = "prod"
    health_path = "/v1/position/funds"
    token_kind = "jwt"

    def normalize(self, raw: Mapping[str, str]) -> dict[str, str]:
        out = normalize_fields(self, raw)
        out["private_key"] = normalize_ec_p256_private_key(out["private_key"])
        return out


PROVIDER = PowerTrade()
