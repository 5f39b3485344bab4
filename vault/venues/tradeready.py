"""TradeReady: X-API-Key on most endpoints; a 1-hour bearer JWT from /auth/login for agents.

`POST {base}/api/v1/auth/login {api_key, api_secret}` returns `{token, expires_at,
token_type}`.  The bearer is cached in the vault (kind "bearer") and refreshed by logging
in again when less than 5 minutes remain.  It is sent only to `/agents/*` and
`/battles/*`, as the seed page says; every other endpoint gets `X-API-Key`, so plain
calls never log in.

Exactly one credential per request: the published backend (`_authenticate_request`)
judges `X-API-Key` first and looks at the Bearer token only when no `X-API-Key` is sent,
so a request carrying both would be judged on its key alone.  Bearer requests carry
`X-Agent-Id` when the account has an `agent_id`; `X-API-Key` carries the agent's own key
when one is stored (least privilege: that key reaches only the agent's balances and orders).

The login request carries only its JSON body: the venue's SDK also sends `X-API-Key` on
it, which the backend ignores on that public path (harmless either way).

Error envelopes come in two shapes: TradeReady's `{"error": {code, message, details}}`
and FastAPI's own `422 {"detail": [{loc, msg, type}]}` for a request that fails
validation; both are read.  The venue's short message is quoted only when it is plain
text that holds none of the account's stored values.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

from vault.core.errors import AuthRejected
from vault.net.answers import expiry_in_range, generic_error, header_rate_limit, json_body, safe_code
from vault.venues.base import HEALTH_PATH_HELP, MONITOR_SETTINGS, FieldSpec, SettingSpec, health_path, normalize_fields

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from vault.core.model import Account, RateLimit, Token
    from vault.net.http import Sender

LOGIN_PATH = "/api/v1/auth/login"
DEFAULT_LIFETIME_S = 3600
REFRESH_MARGIN_S = 300
_JWT_PATH = re.compile(r"/(agents|battles)(/|$)")

# Envelope codes -> (what happened, what to do).  {label} is the account label.
_CODES = {
    "INVALID_API_KEY": ("TradeReady does not know the API key of {label!r}", "check the key (`keyward show {label}`)"),
    "INVALID_TOKEN": ("TradeReady refused the bearer token of {label!r}", "run `keyward login {label}` for a fresh one"),
    "ACCOUNT_SUSPENDED": ("TradeReady has suspended the account of {label!r}", "contact TradeReady support"),
    "PERMISSION_DENIED": (
        "TradeReady denied {label!r} this operation: the agent or resource is not this account's",
        "check agent_id (`keyward show {label}`): TradeReady answers 403 for another account's agent",
    ),
    "ACCOUNT_NOT_FOUND": ("TradeReady has no such account or agent for {label!r}", "check the account's agent_id"),
    "VALIDATION_ERROR": ("TradeReady rejected the request of {label!r} as invalid", "check the request's fields"),
    "DUPLICATE_ACCOUNT": ("TradeReady already has an account with that email", "log in to the existing account"),
    "INTERNAL_ERROR": ("TradeReady failed on its side for {label!r}", "retry later"),
    "SERVICE_UNAVAILABLE": ("TradeReady is unavailable for {label!r}", "retry later; it may be in maintenance"),
}


# At /auth/login: (what happened, what to do).  The backend answers a wrong secret with
# INVALID_API_KEY, the seed page with INVALID_TOKEN; an unknown key (or an agent's key,
# which has no secret) is the backend's 404 ACCOUNT_NOT_FOUND, the seed's INVALID_API_KEY.
_LOGIN_CODES = {
    "INVALID_API_KEY": (
        "TradeReady refused the API key and secret of {label!r} at login",
        "the API secret does not match this API key (or the key is unknown): re-add the account with the pair "
        "TradeReady showed at registration",
    ),
    "INVALID_TOKEN": (
        "TradeReady refused the API secret of {label!r} at login",
        "the API secret does not match this API key: re-add the account with the right secret",
    ),
    "ACCOUNT_NOT_FOUND": (
        "TradeReady has no account with the API key of {label!r}",
        "login needs the account's own api_key and api_secret (an agent's key cannot log in): check them with "
        "`keyward show {label}`",
    ),
}
MAX_QUOTED = 160


def needs_bearer(path: str | None) -> bool:
    """Agent and battle management take the JWT (the seed page); everything else X-API-Key."""
    return path is not None and bool(_JWT_PATH.search(path))


def _wordish(word: str) -> bool:
    """A word of prose: not a key, token, id or address (no letters mixed with digits or
    underscores, nothing long)."""
    word = word.strip(".,:;!?'\"()")
    if len(word) > 24:
        return False
    letters = any(c.isalpha() for c in word)
    return not (letters and any(c.isdigit() or c in "_@=/+" for c in word.replace("@-", "")))


def quotable(text: Any, account: Account | None = None) -> str | None:
    """A venue's free-text message, if it is fit to show: short printable prose, no
    markup, no word that could be a key or token, and none of the account's stored values
    (a venue may echo what it was sent)."""
    if not isinstance(text, str):
        return None
    text = " ".join(text.split())
    if not 0 < len(text) <= MAX_QUOTED or not text.isascii() or not text.isprintable() or any(c in text for c in "[]<>`{}"):
        return None
    if not all(_wordish(w) for w in text.split()):
        return None
    values = account.fields.values() if account is not None else ()
    if any(len(v) >= 6 and v in text for v in values):
        return None
    return text


def _field_name(names: list[str]) -> str | None:
    name = ".".join(names)
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]{0,60}", name) else None


def _validation_detail(detail: Any, account: Account | None) -> str | None:
    """FastAPI's `{"detail": [{"loc": [...], "msg": ...}]}` as "field: reason; ..."."""
    if not isinstance(detail, list):
        return quotable(detail, account)
    parts = []
    for item in detail[:5]:
        if not isinstance(item, dict):
            continue
        loc = item.get("loc")
        names = [str(x) for x in loc if isinstance(x, (str, int)) and x not in ("body", "query", "path", "header")] \
            if isinstance(loc, list) else []
        field = _field_name(names) or "request"
        reason = quotable(item.get("msg"), account) or "invalid"
        parts.append(f"{field}: {reason}")
    return "; ".join(parts) or None


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
    common_path = "/api/v1/account/info"  # what `keyward headers LABEL` shows without --path: an X-API-Key call
    token_kind = "bearer"
    settings = (SettingSpec("health_path", "path", health_path, HEALTH_PATH_HELP + " (or /api/v1/account/balance)"), *MONITOR_SETTINGS)

    def normalize(self, raw: Mapping[str, str]) -> dict[str, str]:
        return normalize_fields(self, raw)

    # --- tokens ----------------------------------------------------------------------

    def lifetime(self, account: Account) -> int:
        return DEFAULT_LIFETIME_S  # the server decides; this is its documented default

    def refresh_margin(self, token: Token) -> float:
        """5 minutes, or a quarter of the token's life for a server issuing short ones."""
        if token.expires_at is None:
            return REFRESH_MARGIN_S
        return min(REFRESH_MARGIN_S, max(0.0, token.expires_at - token.issued_at) / 4)

    def is_fresh(self, token: Token | None, now: float, account: Account | None = None) -> bool:
        if token is None or token.kind != "bearer" or token.expires_at is None:
            return False
        return token.expires_at - now > self.refresh_margin(token)

    def mint(self, account: Account, now: float, cache: Any = None) -> None:
        return None  # the venue signs its own JWT at login

    def needs_token(self, account: Account, path: str | None) -> bool:
        """`None` is `keyward token`: the bearer.  A path needs it only for agents and battles."""
        return path is None or needs_bearer(path)

    def login(self, account: Account, client: httpx.Client, now: float, sender: Sender | None = None) -> Token:
        if sender is None:  # (the transport loads only for a request)
            from vault.net.http import Sender

            sender = Sender()
        response = sender.send(
            client,
            "POST",
            account.base_url + LOGIN_PATH,
            json={"api_key": account.fields["api_key"], "api_secret": account.fields["api_secret"]},
            idempotent=False,
            venue=self.title,
            label=account.label,
        )
        self.raise_for_error(account, response)
        skew = sender.last.skew_s if sender.last is not None else None
        return self.parse_login(account, response, now, skew)

    def parse_login(self, account: Account, response: httpx.Response, now: float, skew_s: float | None) -> Token:
        from vault.core.model import Token, parse_iso

        body = json_body(response, self.title)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token or any(c.isspace() for c in token):
            raise AuthRejected(
                f"TradeReady's login answer for {account.label!r} carries no usable token",
                hint="retry later; if it persists the API may have changed",
                status=response.status_code,
            )
        expires_at: float | None = None
        raw = body.get("expires_at")
        if isinstance(raw, str):
            try:
                expires_at = expiry_in_range(parse_iso(raw), now)  # year 9999 or 1: not a plan to refresh by
            except ValueError:
                expires_at = None
        if expires_at is None:
            expires_at = now + DEFAULT_LIFETIME_S
        elif skew_s is not None and abs(skew_s) >= 2:
            # expires_at is the server's time: move it onto our clock so "5 minutes left"
            # means 5 minutes here too.
            expires_at -= skew_s
        return Token(value=token, issued_at=now, expires_at=expires_at, kind="bearer")

    def headers(self, account: Account, token: Token | None, now: float, path: str | None = None) -> dict[str, str]:
        """One credential: the bearer (+ X-Agent-Id) for agents and battles, else X-API-Key.
        `None` (no path: `keyward token`, `exec`) carries the bearer when there is one; the
        backend takes it everywhere.  Both at once would be judged on the key alone."""
        f = account.fields
        agent_id = f.get("agent_id")
        if token is not None and (path is None or needs_bearer(path)):
            out = {"Authorization": f"Bearer {token.value}"}
            if agent_id:
                out["X-Agent-Id"] = agent_id
            return out
        return {"X-API-Key": f["agent_api_key"] if agent_id and f.get("agent_api_key") else f["api_key"]}

    def exec_env(self, account: Account, token: Token | None) -> dict[str, str]:
        f = account.fields
        agent_id = f.get("agent_id")
        out = {"KEYWARD_API_KEY": f["agent_api_key"] if agent_id and f.get("agent_api_key") else f["api_key"]}
        if token is not None:
            out["KEYWARD_BEARER"] = token.value
        if agent_id:
            out["KEYWARD_AGENT_ID"] = agent_id
        return out

    # --- responses -------------------------------------------------------------------

    def health_request(self, account: Account) -> tuple[str, str, Any]:
        return "GET", health_path(account, self.health_path), None

    def rate_limit(self, response: httpx.Response, now: float) -> RateLimit | None:
        return header_rate_limit(response, now)

    def raise_for_error(self, account: Account, response: httpx.Response) -> None:
        if response.is_success:
            return
        code, retry_after, said = None, None, None
        try:
            body = response.json()
        except ValueError:
            body = None
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            code = safe_code(err.get("code"), upper=True)
            said = quotable(err.get("message"), account)
            details = err.get("details")
            if isinstance(details, dict) and isinstance(details.get("retry_after_seconds"), (int, float)):
                retry_after = float(details["retry_after_seconds"])
        elif isinstance(body, dict) and "detail" in body:
            # FastAPI's own shape: request validation (422) and plain HTTPExceptions.
            said = _validation_detail(body["detail"], account)
            if response.status_code == 422:
                code = "VALIDATION_ERROR"
        at_login = response.request.url.path.endswith(LOGIN_PATH) if response.request is not None else False
        table = _LOGIN_CODES if at_login and code in _LOGIN_CODES else _CODES
        hint = table[code][1].format(label=account.label) if code in table else None
        error = generic_error(self.title, account.label, response, code=code, hint=hint, retry_after=retry_after)
        if code in table:
            error.message = table[code][0].format(label=account.label)
            if code == "VALIDATION_ERROR" and said:
                error.message += f": {said}"
                said = None
            error.message += f" (HTTP {response.status_code}, {code})"
        if said and code != "RATE_LIMIT_EXCEEDED":
            error.message += f"; TradeReady says: {said}"
        error.args = (error.message,)
        raise error

    # --- doctor ----------------------------------------------------------------------

    def doctor(self, account: Account, now: float) -> list[str]:
        f = account.fields
        out = []
        if f["api_key"].startswith("ak_"):
            out.append("ok: the API key has TradeReady's ak_ prefix")
        else:
            out.append("warning: the API key lacks TradeReady's ak_ prefix: is it the right value?")
        if not f["api_secret"].startswith("sk_"):
            out.append("warning: the API secret lacks TradeReady's sk_ prefix: is it the right value?")
        if f.get("agent_id"):
            scope = "the agent's own key" if f.get("agent_api_key") else "the account key (no agent_api_key stored)"
            out.append(f"info: agent_id is set: JWT calls carry X-Agent-Id; X-API-Key carries {scope}")
        out.append(
            "info: one credential per request: the bearer (+ X-Agent-Id) for /agents and /battles, X-API-Key "
            "elsewhere; TradeReady judges X-API-Key first, so both at once would be judged on the key alone"
        )
        return out

    def warnings(self, account: Account) -> list[str]:
        return []


PROVIDER = TradeReady()
