"""Recognising what the venues' one-time screens hand out, and parsing JSON with errors
that say where.  Shared by `add --from-json`, `import` and `capture`."""

from __future__ import annotations

import json
from typing import Any

from vault.core.errors import InputError, MalformedInput

# Normalised key (lower case, no separators) -> canonical field name, per venue.
_KIIEX = {"apikey": "api_key", "apisecret": "api_secret", "nonce": "nonce", "userid": "user_id", "username": "username"}
_TRADEREADY = {
    "apikey": "api_key",
    "apisecret": "api_secret",
    "accountid": "account_id",
    "agentid": "agent_id",
    "agentapikey": "agent_api_key",
}
_HYPER = {"apikey": "api_key", "jwtkey": "jwt_key", "appkey": "app_key", "appsecret": "app_secret"}
_IGNORED_TRADEREADY = {"displayname", "startingbalance", "message", "email"}


def _norm(key: str) -> str:
    return "".join(c for c in key.lower() if c.isalnum())


def parse_json(text: str, source: str) -> Any:
    """JSON, or (recognised by its KEYWARD_VENUE line) a `keyward export --format env` file,
    returned as the keyward export object so that `import` reads every export back."""
    from vault.core.inputs import load_json

    try:
        return load_json(text, source)  # nesting bounded
    except json.JSONDecodeError as exc:
        from vault.ops.export import looks_like_env, parse_env

        if looks_like_env(text):
            return parse_env(text)
        # Position only: never echo the offending text, which may be a secret.
        raise MalformedInput(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            hint="fix the JSON and try again",
        ) from None


def recognise(obj: Any) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(venue, canonical fields, extras such as a suggested label) for a one-time JSON."""
    if not isinstance(obj, dict):
        raise MalformedInput("expected a JSON object", hint="paste the JSON the venue showed")
    if isinstance(obj.get("venue"), str) and isinstance(obj.get("fields"), dict):  # keyward's own export
        extras = {"label": obj.get("label"), "base_url": obj.get("base_url"), "env": obj.get("env")}
        return obj["venue"], {k: str(v) for k, v in obj["fields"].items()}, extras
    keys = {_norm(k): k for k in obj}
    if {"apikey", "apisecret", "nonce", "userid"} <= set(keys):
        fields = {_KIIEX[n]: str(obj[k]) for n, k in keys.items() if n in _KIIEX}
        return "kiiex", fields, {"label": obj.get(keys.get("username", ""), None)}
    if {"apikey", "apisecret"} <= set(keys) and (
        "accountid" in keys or "agentapikey" in keys or str(obj[keys["apikey"]]).startswith("ak_")
    ):
        fields = {_TRADEREADY[n]: str(obj[k]) for n, k in keys.items() if n in _TRADEREADY and obj[k] is not None}
        return "tradeready", fields, {"label": obj.get(keys.get("displayname", ""), None)}
    # PowerTrade's and Hyper Solutions' issued fields (`keyward export --format native`).
    if set(keys) == {"apikey", "privatekey"}:
        return "powertrade", {"api_key": str(obj[keys["apikey"]]), "private_key": str(obj[keys["privatekey"]])}, {}
    if "apikey" in keys and ("jwtkey" in keys or "appkey" in keys) and set(keys) <= set(_HYPER):
        return "hypersolutions", {_HYPER[n]: str(obj[k]) for n, k in keys.items() if obj[k] is not None}, {}
    raise MalformedInput(
        "this JSON is not a format keyward recognises",
        hint="expected TradeReady's registration response or Kiiex's Export to JSON; "
        "for other venues use `keyward add VENUE LABEL --from-json FILE`",
    )


def canonical_fields(obj: Any, venue: str) -> dict[str, str]:
    """`add --from-json`: canonical names, or a recognised native format of that venue."""
    if not isinstance(obj, dict):
        raise MalformedInput("expected a JSON object of field names to values", hint="see `keyward add --help`")
    try:
        found, fields, _ = recognise(obj)
        if found == venue:
            return fields
    except InputError:
        pass
    return {k: v for k, v in obj.items()}
