"""Hyper Solutions: x-api-key, an optional HS256 x-signature, organisation x-app-* headers."""

from __future__ import annotations

from typing import Mapping

from ..errors import InvalidCredential
from .base import FieldSpec, normalize_fields


class HyperSolutions:
    venue = "hypersolutions"
    title = "Hyper Solutions"
    fields = (
        FieldSpec("api_key", secret=True, prompt="API key"),
        FieldSpec("jwt_key", secret=True, required=False, prompt="JWT signing key"),
        FieldSpec("app_key", secret=False, required=False, prompt="organisation app key"),
        FieldSpec("app_secret", secret=True, required=False, prompt="organisation app secret"),
    )
    environments = {"prod": "https://api.hypersolutions.co"}
    default_env = "prod"
    health_path = "/usage"
    token_kind = "jwt"

    def normalize(self, raw: Mapping[str, str]) -> dict[str, str]:
        out = normalize_fields(self, raw)
        if ("app_key" in out) != ("app_secret" in out):
            raise InvalidCredential(
                "organisation mode needs both app_key and app_secret", hint="give both, or neither"
            )
        return out


PROVIDER = HyperSolutions()
