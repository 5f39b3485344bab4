"""PowerTrade: an ES256 JWT signed with the account's EC P-256 key, sent as X-Power-Trade.

Claims, exactly as the REST reference states: `sub` = api key, `iat`, `exp`, `client` =
"api", a rising `nonce`, and the optional `uri` (a per-account setting; the websocket
login's `credentials_secret` lists it).  The server checks `iat <= now <= exp` and
wants `exp - iat` within 30 s, recommending `iat = now - 5`: the token is back-dated 5 s
(tolerating a server clock slightly behind ours) and lives `token_lifetime_s` (default
30) from its iat.  The support page's examples use 60 s or even 10 days; a longer window
is allowed as a per-account setting but warned about.

The nonce is Unix seconds by default (`nonce_unit s`), as in the support page's
jsrsasign example, the api-docs' Go example and the official hummingbot connector; the
docs call it a "monotonically increasing integer; usually a timestamp".  Should the venue
keep a per-key high-water mark, a millisecond nonce would lock every seconds-based
client on that key out for good, while a seconds nonce never overtakes a millisecond
one.  Either way it rises strictly per key: within this process, and past the nonce of
the account's last token saved in the vault.  `nonce_unit ms` is there for keys that no
seconds-based client shares and that sign more than one request a second.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Mapping

from vault.core.errors import InputError, InvalidCredential
from vault.net.answers import generic_error, header_rate_limit, safe_code
from vault.core.model import Token
from vault.core.pem import normalize_ec_p256_private_key
from vault.venues.base import HEALTH_PATH_HELP, MONITOR_SETTINGS, FieldSpec, SettingSpec, health_path, normalize_fields, setting

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from vault.core.model import Account, RateLimit

TOKEN_HEADER = "X-Power-Trade"
BACKDATE_S = 5
DEFAULT_LIFETIME_S = 30
DOCUMENTED_MAX_WINDOW_S = 30

# What the sandbox (and a careful server) says in `error`, mapped to what to do.
_HINTS = {
    "expired": "the token was already expired by the venue's clock: check this machine's clock (`keyward doctor {label}`)",
    "not_yet_valid": "the token is from the venue's future: this machine's clock runs ahead (`keyward doctor {label}`)",
    "window_too_long": "the venue allows 30 s at most: `keyward setting {label} token_lifetime_s 30`",
    "bad_signature": "the private key does not match this API key, or belongs to another environment (test vs prod)",
    "unknown_key": "PowerTrade does not know this API key here: is it from another environment (test vs prod)?",
    "replayed_nonce": (
        "a higher nonce for this key reached the venue first: if another client on it sends millisecond nonces, "
        "`keyward setting {label} nonce_unit ms` or give that client its own key; otherwise retry"
    ),
    "bad_client": "keyward sends client=\"api\"; a proxy may be rewriting requests",
    "missing_token": "the X-Power-Trade header did not arrive; a proxy may be stripping it",
}


NONCE_UNITS = ("s", "ms")
DEFAULT_NONCE_UNIT = "s"


class NonceSource:
    """Timestamps (milliseconds, or seconds) that rise strictly per key within this
    process, even when two tokens are minted in the same tick or the clock steps back,
    and stay above `floor` (the nonce of the last token another process saved)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def next(self, now: float, key: str = "", unit: str = "ms", floor: int = 0) -> int:
        value = int(now * 1000) if unit == "ms" else int(now)
        if value <= floor:
            value = floor + 1
        slot = (key, unit)
        lock = self._lock
        lock.acquire()  # per request: acquire/release cost half of a `with`
        try:
            last = self._last.get(slot, 0)
            if value <= last:
                value = last + 1
            self._last[slot] = value
        finally:
            lock.release()
        return value


def saved_nonce(account: Account) -> int:
    """The nonce of the account's last token saved in the vault (0 if none): a floor, so a
    new process never repeats a nonce an earlier one used for this key."""
    import base64
    import json

    tok = account.token
    if tok is None or tok.kind != "jwt" or tok.value.count(".") != 2 or len(tok.value) > 4096:
        return 0
    try:
        payload = tok.value.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return 0
    nonce = claims.get("nonce") if isinstance(claims, dict) else None
    if claims.get("sub") != account.fields.get("api_key") or isinstance(nonce, bool) or not isinstance(nonce, int):
        return 0
    return nonce


NONCES = NonceSource()  # not a secret: a process-wide counter is exactly what "rising" needs


def load_private_key(pem: str) -> Any:
    """Parse the stored PKCS#8 PEM (validated at `add`) into a signing key object."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise InvalidCredential(
            "the stored PowerTrade private key cannot be parsed", hint="re-add the account with its PEM file"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InvalidCredential("the stored PowerTrade key is not an EC P-256 key", hint="re-add it with the right PEM")
    return key


class _Signing:
    """One account's parsed key, beside the PEM it was parsed from, and the nonce floor
    read from its last saved token (saved_nonce)."""

    __slots__ = ("pem", "key", "saved")

    def __init__(self, pem: str, key: Any) -> None:
        self.pem = pem  # the account's own string, not a copy: tells a rotated key apart
        self.key = key
        self.saved: tuple[str, str, str, int] | None = None  # (token kind, value, api key, its nonce)

    def nonce_floor(self, account: Account) -> int:
        """saved_nonce(account), decoded again only when the saved token or the api key changed."""
        tok = account.token
        if tok is None:
            return 0
        saved, api_key = self.saved, account.fields.get("api_key")
        if saved is None or saved[1] != tok.value or saved[2] != api_key or saved[0] != tok.kind:
            saved = self.saved = (tok.kind, tok.value, api_key, saved_nonce(account))
        return saved[3]

    def __repr__(self) -> str:  # holds a private key: nothing of it in a repr
        return "_Signing()"


class KeyCache:
    """Parsed signing keys for one unlocked session (owned by VenueOps, dropped on lock).

    One entry per account id, holding the PEM the key was parsed from: a mint whose
    account holds another PEM (a rotated key) parses that one and replaces the entry, so
    an old key never signs.  The entry holds the account's own PEM string (a reference,
    not a copy), and is dropped on rotation and on lock like the parsed key beside it.
    Parsing a PEM costs more than signing: this is what keeps a mint close to a bare
    `jwt.encode` with a preloaded key.  The nonce floor of the account's saved token is
    kept beside it, read again only when that token (or the api key) changes.
    """

    def __init__(self) -> None:
        self._keys: dict[str, _Signing] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyCache({len(self._keys)} keys)"

    def signing(self, account: Account) -> _Signing:
        pem = account.fields["private_key"]
        entry = self._keys.get(account.id)
        if entry is not None and entry.pem is not pem:
            if entry.pem == pem:
                entry.pem = pem  # the same key, reloaded: hold the account's current string
            else:
                entry = None  # rotated: parse the new one, drop the old
        if entry is None:
            entry = _Signing(pem, load_private_key(pem))
            with self._lock:
                self._keys[account.id] = entry
        return entry

    def private_key(self, account: Account) -> Any:
        return self.signing(account).key

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()

    def __len__(self) -> int:
        return len(self._keys)


def lifetime_setting(account: Account, default: int) -> int:
    value = account.settings.get("token_lifetime_s", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 86400:
        raise InputError(
            f"token_lifetime_s of {account.label!r} must be a number of seconds from 1 to 86400",
            hint=f"`keyward setting {account.label} token_lifetime_s {default}` (the default)",
        )
    return int(value)


def nonce_raced(response: httpx.Response) -> bool:
    """A 401 that says only that a higher nonce arrived first.  Concurrent requests
    (an AsyncClient's gather, threads sharing an auth) reach the venue in any order, so
    this refusal is keyward's own doing, not the credentials': the request was refused
    before anything ran, and signing it again (a newer nonce) is safe.  The body must
    have been read."""
    if response.status_code != 401:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error") == "replayed_nonce"


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
    settings = (
        SettingSpec(
            "token_lifetime_s", "seconds", DEFAULT_LIFETIME_S,
            f"exp - iat of each token; PowerTrade's REST reference allows {DOCUMENTED_MAX_WINDOW_S} s at most",
        ),
        SettingSpec("health_path", "path", health_path, HEALTH_PATH_HELP + " (or /v1/balance/funds_holdings)"),
        SettingSpec(
            "nonce_unit", "choice", DEFAULT_NONCE_UNIT,
            "the nonce claim's unit: s (Unix seconds, as the venue's own examples and connector; default) or ms "
            "(only for a key no seconds-based client shares); it rises strictly per key either way",
            choices=NONCE_UNITS,
        ),
        SettingSpec("uri", "uri", None, "an optional uri claim (the service endpoint the websocket login names)"),
        *MONITOR_SETTINGS,
    )
    _specs = {spec.name: spec for spec in settings}

    def normalize(self, raw: Mapping[str, str]) -> dict[str, str]:
        out = normalize_fields(self, raw)
        out["private_key"] = normalize_ec_p256_private_key(out["private_key"])
        return out

    # --- tokens ----------------------------------------------------------------------

    def lifetime(self, account: Account) -> int:
        return lifetime_setting(account, DEFAULT_LIFETIME_S)

    def needs_token(self, account: Account, path: str | None) -> bool:
        return True

    def setting(self, account: Account, name: str) -> Any:
        return setting(account, self._specs[name])

    def claims(self, account: Account, now: float, floor: int | None = None) -> dict[str, Any]:
        """The token's claims; `floor` is saved_nonce(account) when the caller has it cached.

        Per request, so the settings are read here rather than through lifetime() and
        setting(): the same checks, with the common values (a whole lifetime, an unset or
        already-checked unit and uri) answered without a call each."""
        iat = int(now) - BACKDATE_S
        api_key = account.fields["api_key"]
        settings = account.settings
        life = settings.get("token_lifetime_s", DEFAULT_LIFETIME_S)
        if type(life) is not int or not 1 <= life <= 86400:
            life = self.lifetime(account)  # a float, or a bad value: lifetime() converts it or says what is wrong
        unit = settings.get("nonce_unit")
        unit = DEFAULT_NONCE_UNIT if unit is None or unit == "" else _checked_setting("nonce_unit", unit)
        out = {
            "sub": api_key,
            "iat": iat,
            "exp": iat + life,
            "client": "api",
            "nonce": NONCES.next(now, api_key, unit, saved_nonce(account) if floor is None else floor),
        }
        uri = settings.get("uri")
        if uri is not None and uri != "":
            out["uri"] = _checked_setting("uri", uri)
        return out

    def mint(self, account: Account, now: float, cache: KeyCache | None = None) -> Token:
        if cache is None:
            key, floor = load_private_key(account.fields["private_key"]), None
        else:
            signing = cache.signing(account)
            key, floor = signing.key, signing.nonce_floor(account)
        claims = self.claims(account, now, floor)
        value = (_ENCODE or _jwt_encode())(claims, key, algorithm="ES256")
        return Token(value, claims["iat"], claims["exp"], "jwt")

    def login(self, account: Account, client: httpx.Client, now: float, sender: Any = None) -> None:
        return None  # no online exchange: every request carries a freshly minted token

    def headers(self, account: Account, token: Token | None, now: float, path: str | None = None) -> dict[str, str]:
        return {TOKEN_HEADER: token.value} if token is not None else {}

    def exec_env(self, account: Account, token: Token | None) -> dict[str, str]:
        return {"KEYWARD_API_KEY": account.fields["api_key"]}

    # --- responses -------------------------------------------------------------------

    def health_request(self, account: Account) -> tuple[str, str, Any]:
        return "GET", health_path(account, self.health_path), None

    def resend_after(self, response: httpx.Response) -> bool:
        """Whether a refused call may be signed again and resent (see nonce_raced)."""
        return nonce_raced(response)

    def rate_limit(self, response: httpx.Response, now: float) -> RateLimit | None:
        return header_rate_limit(response, now)  # none documented; use them if sent

    def raise_for_error(self, account: Account, response: httpx.Response) -> None:
        if response.is_success:
            return
        code = None
        try:
            body = response.json()
            if isinstance(body, dict):
                code = safe_code(body.get("error"), upper=False)
        except ValueError:
            pass
        hint = _HINTS.get(code or "")
        if response.status_code == 401 and hint is None:
            hint = f"missing, invalid or expired JWT: run `keyward doctor {account.label}`"
        raise generic_error(
            self.title, account.label, response, code=code, hint=hint.format(label=account.label) if hint else None
        )

    # --- doctor ----------------------------------------------------------------------

    def doctor(self, account: Account, now: float) -> list[str]:
        out = []
        try:
            load_private_key(account.fields["private_key"])
            out.append("ok: the private key is a valid EC P-256 (ES256) key")
        except InvalidCredential as err:
            out.append(f"problem: {err}")
        try:
            life = self.lifetime(account)
            if life > DOCUMENTED_MAX_WINDOW_S:
                out.append(
                    f"warning: token_lifetime_s is {life} s; PowerTrade's REST reference wants exp - iat within "
                    f"{DOCUMENTED_MAX_WINDOW_S} s, so the venue may refuse these tokens (its older examples use 60 s)"
                )
            else:
                out.append(f"ok: tokens are back-dated {BACKDATE_S} s and live {life} s from iat")
        except InputError as err:
            out.append(f"problem: {err}")
        try:
            unit = self.setting(account, "nonce_unit")
            if unit == "ms":
                out.append(
                    "warning: nonce_unit is ms: the venue's own examples and its official connector send Unix seconds; "
                    "if PowerTrade keeps a per-key high-water mark, one of these millisecond nonces locks every "
                    "seconds-based bot on this key out for good. Share this key with no such bot, or "
                    f"`keyward setting {account.label} nonce_unit s`"
                )
            else:
                out.append(
                    "ok: nonces are Unix seconds, like the venue's examples and connector, so seconds-based bots can "
                    "share this key; more than one token a second runs the nonce ahead of the clock by the excess"
                )
            if self.setting(account, "uri"):
                out.append("info: tokens carry the uri claim set for this account")
        except InputError as err:
            out.append(f"problem: {err}")
        return out

    def warnings(self, account: Account) -> list[str]:
        life = self.lifetime(account)
        if life > DOCUMENTED_MAX_WINDOW_S:
            return [
                f"warning: {account.label}: token_lifetime_s={life} exceeds PowerTrade's {DOCUMENTED_MAX_WINDOW_S} s "
                "window; the venue may refuse the token"
            ]
        return []


PROVIDER = PowerTrade()


@functools.lru_cache(maxsize=64)
def _checked_text(name: str, value: str) -> Any:
    return PowerTrade._specs[name].parse(value)


def _checked_setting(name: str, value: Any) -> Any:
    """The setting's value checked as `setting()` checks it (settings travel in bundles),
    remembered for text: checking a uri parses it, which cost more than the rest of a
    mint's claims.  A bad value is not remembered, so it fails on every use."""
    if type(value) is str:
        return _checked_text(name, value)
    return PowerTrade._specs[name].parse(value)


_ENCODE: Any = None  # jwt.encode, imported on the first mint (this module must stay cheap to import)


def _jwt_encode() -> Any:
    global _ENCODE
    import jwt

    _ENCODE = jwt.encode
    return _ENCODE


def public_key(pem: str) -> tuple[str, dict[str, str]]:
    """(SubjectPublicKeyInfo PEM, JWK) of an EC P-256 private key."""
    import base64

    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(normalize_ec_p256_private_key(pem).encode(), password=None)
    pub = key.public_key()
    numbers = pub.public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()

    pem_out = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return pem_out, {"kty": "EC", "crv": "P-256", "x": b64(numbers.x), "y": b64(numbers.y), "use": "sig", "alg": "ES256"}
