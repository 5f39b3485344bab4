"""Hyper Solutions: x-api-key, an optional HS256 x-signature, organisation x-app-* headers.

Every header the official SDK sends (`hyper_sdk/shared.py` `build_headers`), for every
key stored:

* `x-api-key` always;
* `x-signature` = HS256 `{key: api_key, exp}` signed with the JWT key, when one is stored
  (the seed page's examples use 15 s, the SDK 60 s; per-account `token_lifetime_s`);
* `x-app-key` and `x-app-signature` = HS256 `{key: app_key, exp}` signed with the app
  secret, when app key and secret are stored (organisation mode, default 60 s).

With both a JWT key and an organisation both signatures go out, as the SDK sends them.
No published source states a ceiling on `exp`: longer lifetimes are warned about as a
weaker replay protection, not as a refusal.  Signatures this short die with a clock off by
more than their lifetime: the `Date` of every answer is compared with our clock (see
vault.net.http) and doctor says so.  Its "rate-limit status" is the quota `GET /usage` reports.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Mapping

from vault.core.errors import InvalidCredential
from vault.net.answers import generic_error, header_rate_limit
from vault.core.model import Token
from vault.venues.base import HEALTH_PATH_HELP, MONITOR_SETTINGS, FieldSpec, SettingSpec, health_path, normalize_fields
from vault.venues.powertrade import lifetime_setting

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from vault.core.model import Account, RateLimit

SIGNATURE_LIFETIME_S = 15
APP_SIGNATURE_LIFETIME_S = 60
MIN_HMAC_KEY_BYTES = 32  # RFC 7518 3.2 for HS256


_ENCODE: Any = None  # jwt.encode, imported on the first signature (this module must stay cheap to import)


def sign(key: str, secret: str, exp: int) -> str:
    """The HS256 JWT `{key, exp}` both Hyper signatures use."""
    global _ENCODE
    encode = _ENCODE
    if encode is None:  # per request: look jwt.encode up once, not an import statement each time
        import jwt

        encode = _ENCODE = jwt.encode
    secret_bytes = secret.encode()
    if len(secret_bytes) >= MIN_HMAC_KEY_BYTES:
        return encode({"key": key, "exp": exp}, secret_bytes, algorithm="HS256")
    # The venue chose the key's length, not the user: doctor reports a short one once,
    # instead of PyJWT warning on every request.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return encode({"key": key, "exp": exp}, secret_bytes, algorithm="HS256")


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
    settings = (
        SettingSpec(
            "token_lifetime_s", "seconds", SIGNATURE_LIFETIME_S,
            f"exp - now of each signature: {SIGNATURE_LIFETIME_S} s ({APP_SIGNATURE_LIFETIME_S} s in organisation mode) "
            f"by default, as the venue's examples; its SDK uses {APP_SIGNATURE_LIFETIME_S} s",
        ),
        SettingSpec("health_path", "path", health_path, HEALTH_PATH_HELP),
        *MONITOR_SETTINGS,
    )

    def normalize(self, raw: Mapping[str, str]) -> dict[str, str]:
        out = normalize_fields(self, raw)
        if ("app_key" in out) != ("app_secret" in out):
            raise InvalidCredential(
                "organisation mode needs both app_key and app_secret", hint="give both, or neither"
            )
        return out

    # --- tokens ----------------------------------------------------------------------

    @staticmethod
    def organisation(account: Account) -> bool:
        return bool(account.fields.get("app_key") and account.fields.get("app_secret"))

    def lifetime(self, account: Account) -> int:
        default = APP_SIGNATURE_LIFETIME_S if self.organisation(account) else SIGNATURE_LIFETIME_S
        return lifetime_setting(account, default)

    def needs_token(self, account: Account, path: str | None) -> bool:
        return self.organisation(account) or bool(account.fields.get("jwt_key"))

    def mint(self, account: Account, now: float, cache: Any = None) -> Token | None:
        """The token is the organisation's app signature in organisation mode, else the
        x-signature; `headers` adds the other signature (same exp) when its key is stored."""
        f = account.fields
        organisation = self.organisation(account)  # lifetime() without asking it twice
        exp = int(now) + lifetime_setting(account, APP_SIGNATURE_LIFETIME_S if organisation else SIGNATURE_LIFETIME_S)
        if organisation:
            value = sign(f["app_key"], f["app_secret"], exp)
        elif f.get("jwt_key"):
            value = sign(f["api_key"], f["jwt_key"], exp)
        else:
            return None  # plain mode: the API key alone authenticates
        return Token(value, now, exp, "jwt")

    def user_signature(self, account: Account, token: Token) -> str | None:
        """x-signature for a request carrying `token`: the token itself outside organisation
        mode; in organisation mode signed with the JWT key (same exp) when one is stored."""
        f = account.fields
        if not f.get("jwt_key"):
            return None
        if not self.organisation(account):
            return token.value
        exp = int(token.expires_at) if token.expires_at is not None else None
        return sign(f["api_key"], f["jwt_key"], exp) if exp is not None else None

    def login(self, account: Account, client: httpx.Client, now: float, sender: Any = None) -> None:
        return None

    def headers(self, account: Account, token: Token | None, now: float, path: str | None = None) -> dict[str, str]:
        out = {"x-api-key": account.fields["api_key"]}
        if token is not None:
            user = self.user_signature(account, token)
            if user is not None:
                out["x-signature"] = user
            if self.organisation(account):
                out["x-app-key"] = account.fields["app_key"]
                out["x-app-signature"] = token.value
        return out

    def exec_env(self, account: Account, token: Token | None) -> dict[str, str]:
        out = {"KEYWARD_API_KEY": account.fields["api_key"]}
        if token is not None:
            user = self.user_signature(account, token)
            if user is not None:
                out["KEYWARD_SIGNATURE"] = user
            if self.organisation(account):
                out |= {"KEYWARD_APP_KEY": account.fields["app_key"], "KEYWARD_APP_SIGNATURE": token.value}
        return out

    # --- responses -------------------------------------------------------------------

    def health_request(self, account: Account) -> tuple[str, str, Any]:
        return "GET", health_path(account, self.health_path), None

    def rate_limit(self, response: httpx.Response, now: float) -> RateLimit | None:
        """The /usage quota of the tightest plan (the fewest requests remaining)."""
        from vault.core.model import RateLimit, parse_iso

        try:
            body = response.json()
        except ValueError:
            body = None
        plans = body.get("plans") if isinstance(body, dict) else None
        plans = [p for p in plans if isinstance(p, dict)] if isinstance(plans, list) else []
        usable = [p for p in plans if isinstance(p.get("requestsRemaining"), int)]
        if not usable:
            return header_rate_limit(response, now)
        plan = min(usable, key=lambda p: p["requestsRemaining"])
        reset = None
        if isinstance(plan.get("expiresAt"), str):
            try:
                reset = parse_iso(plan["expiresAt"])
            except ValueError:
                reset = None
        quota = plan.get("requestsQuota")
        return RateLimit(
            limit=quota if isinstance(quota, int) else None,
            remaining=plan["requestsRemaining"],
            reset_at=reset,
            observed_at=now,
        )

    def raise_for_error(self, account: Account, response: httpx.Response) -> None:
        if response.is_success:
            return
        # Hyper's `{error}` is free text: it is read for a keyword, never quoted.
        text = ""
        try:
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                text = body["error"].lower()
        except ValueError:
            pass
        status, label = response.status_code, account.label
        hint = None
        if status == 401 and "expired" in text:
            hint = f"the signature had expired by the venue's clock: check this machine's clock (`keyward doctor {label}`)"
        elif status == 401 and "future" in text:
            hint = f"the venue refused a signature expiring that far ahead: `keyward setting {label} token_lifetime_s 15`"
        elif status == 401 and "app" in text:
            hint = "the organisation app key or app secret is wrong"
        elif status == 401 and "signature" in text:
            hint = "the JWT key is wrong, or this key needs a signature and none is stored: add jwt_key"
        elif status == 401:
            hint = "Hyper Solutions does not know this API key: check it"
        elif status == 403:
            hint = "the API key is disabled: enable it or create a new one in the dashboard"
        raise generic_error(self.title, label, response, hint=hint)

    # --- doctor ----------------------------------------------------------------------

    def doctor(self, account: Account, now: float) -> list[str]:
        f = account.fields
        out = []
        if self.organisation(account) and f.get("jwt_key"):
            out.append(
                "info: organisation mode with a JWT key: x-app-key + x-app-signature and the user's x-signature "
                "beside x-api-key, as the official SDK sends them; the venue checks every signature it is sent"
            )
            secret, what = f["app_secret"], "app_secret"
            if len(f["jwt_key"].encode()) < MIN_HMAC_KEY_BYTES:
                out.append("warning: jwt_key is shorter than the 32 bytes RFC 7518 asks of an HS256 key")
        elif self.organisation(account):
            out.append(
                "info: organisation mode without a JWT key: x-app-key + x-app-signature beside x-api-key, no "
                "x-signature; if the user's key requires signed requests, add its jwt_key (the SDK then sends both)"
            )
            secret, what = f["app_secret"], "app_secret"
        elif f.get("jwt_key"):
            out.append("info: signed mode: x-signature on every request")
            secret, what = f["jwt_key"], "jwt_key"
        else:
            out.append("info: plain mode: x-api-key only (add jwt_key if your key requires signed requests)")
            secret, what = "", ""
        if secret and len(secret.encode()) < MIN_HMAC_KEY_BYTES:
            out.append(f"warning: {what} is shorter than the 32 bytes RFC 7518 asks of an HS256 key")
        life = self.lifetime(account)
        if life > APP_SIGNATURE_LIFETIME_S:
            out.append(
                f"warning: token_lifetime_s={life}: longer than the official SDK's {APP_SIGNATURE_LIFETIME_S} s; a "
                "leaked signature stays usable that long (no published source states a ceiling)"
            )
        else:
            out.append(f"ok: signatures live {life} s; a clock off by more than that fails every request")
        return out

    def warnings(self, account: Account) -> list[str]:
        life = self.lifetime(account)
        if life > APP_SIGNATURE_LIFETIME_S:
            return [
                f"warning: {account.label}: token_lifetime_s={life} exceeds the official SDK's "
                f"{APP_SIGNATURE_LIFETIME_S} s; a leaked signature stays usable that long"
            ]
        return []


PROVIDER = HyperSolutions()
