"""Kiiex on AlphaPoint APEX: HMAC-SHA256 signature, AuthenticateUser, then an aptoken session."""

from __future__ import annotations

from typing import Mapping

from ..errors import InvalidCredential
from .base import FieldSpec, normalize_fields


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

    def normalize(self, raw: Mapping[str, str]) -> dict[str, str]:
        out = normalize_fields(self, raw)
        if not out["user_id"].isdigit():
            raise InvalidCredential("user_id must be a number", hint="use the UserId from Kiiex's export")
        return out


PROVIDER = Kiiex()
