"""The one protocol every venue implements, and the pieces venues share.

A venue is one module in this package that defines a `PROVIDER` object satisfying
`Provider`.  Provider modules must stay cheap to import (no jwt, httpx or cryptography
at module level): `keyward list` loads every one of them to describe fields.
"""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from vault.core.errors import InputError, InvalidCredential

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from vault.core.model import Account, RateLimit, Token


# The two specs are named tuples, not dataclasses: immutable and cheap to define (a cold
# `keyward list` or `show` imports this module; a dataclass costs ~0.5 ms to make).


class FieldSpec(namedtuple("FieldSpec", ("name", "secret", "required", "prompt", "multiline"),
                           defaults=(True, "", False))):
    """One credential field a venue stores: its `name`, whether it is `secret` (masked,
    never logged), whether it is `required`, the `prompt` that asks for it, and whether
    it is `multiline` (a PEM key: read until the END line, not one line)."""

    __slots__ = ()

    @property
    def label(self) -> str:
        return self.prompt or self.name.replace("_", " ")


class SettingSpec(namedtuple("SettingSpec", ("name", "kind", "default", "help", "minimum", "maximum", "choices"),
                             defaults=(1, 86400, ()))):
    """A per-account setting (`keyward setting LABEL NAME VALUE`): never a secret.  `kind`
    is "seconds", "int" (from `minimum` to `maximum`), "path", "choice" (one of `choices`)
    or "uri" (an absolute URI, may be unset); `default` and `help` as shown by `setting`."""

    __slots__ = ()

    def parse(self, raw: Any) -> Any:
        """The validated value, from the command line's text or a Python value."""
        if self.kind == "path":
            return checked_path(raw, self.name)
        if self.kind == "choice":
            return checked_choice(raw, self.name, self.choices)
        if self.kind == "uri":
            return checked_uri(raw, self.name)
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            raw = int(raw.strip())
        if isinstance(raw, bool) or not isinstance(raw, int) or not self.minimum <= raw <= self.maximum:
            unit = " of seconds" if self.kind == "seconds" else ""
            raise InputError(
                f"{self.name} must be a whole number{unit} from {self.minimum} to {self.maximum}",
                hint=f"the default is {self.default}",
            )
        return raw


# Settings every venue's accounts have, declared once (each venue's `settings` ends with them).
MONITOR_SETTINGS = (
    SettingSpec(
        "check_interval_s", "seconds", 60,
        "seconds between `keyward monitor`'s health checks of this account (jittered; a 429 waits for the reset)",
    ),
)


def checked_path(value: Any, name: str = "health_path") -> str:
    """A path appended to the account's base URL.  It must start with "/": anything else
    ("@host/...", "evil.example/...") could move the request, and its credentials, to
    another host.  Settings travel in bundles, so this is checked on use too."""
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or len(value) > 512
        or any(c.isspace() or ord(c) < 32 or c in "#\\" for c in value)
    ):
        raise InputError(
            f"{name} must be a path starting with / (no spaces, no #)",
            hint="e.g. /v1/position/funds; the account's base URL comes before it",
        )
    return value


def checked_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, exactly.  Settings travel in bundles, so this is checked on use too."""
    if not isinstance(value, str) or value.strip() not in choices:
        raise InputError(f"{name} must be one of: {', '.join(choices)}", hint=f"e.g. `keyward setting LABEL {name} {choices[0]}`")
    return value.strip()


def checked_uri(value: Any, name: str) -> str:
    """An absolute https:// or wss:// URI of at most 512 printable characters: it goes into
    a signed claim, never into a request line."""
    from vault.net.endpoints import split_url

    ok = isinstance(value, str) and 0 < len(value) <= 512 and all(33 <= ord(c) < 127 for c in value)
    if ok:
        parts = split_url(value)
        ok = parts is not None and parts.scheme in ("https", "wss") and bool(parts.hostname)
    if not ok:
        raise InputError(
            f"{name} must be an absolute https:// or wss:// URI (no spaces)",
            hint=f"e.g. wss://api.wss.prod.power.trade; `keyward setting LABEL {name} --unset` removes it",
        )
    return value


def setting(account: Account, spec: SettingSpec) -> Any:
    """The account's value of `spec` (validated again: settings travel in bundles), else its default."""
    value = account.settings.get(spec.name)
    return spec.default if value in (None, "") else spec.parse(value)


def health_path(account: Account, default: str) -> str:
    """The account's health-check path: its `health_path` setting, else the venue's."""
    value = account.settings.get("health_path")
    return default if value in (None, "") else checked_path(value)


HEALTH_PATH_HELP = "path of the health check's authenticated call, after the base URL"


class Provider(Protocol):
    """What a venue module provides.  vault.ops.venue_ops drives these; nothing else calls them."""

    venue: str
    title: str
    fields: tuple[FieldSpec, ...]
    environments: Mapping[str, str]
    default_env: str
    health_path: str  # default; per-account override in settings["health_path"]
    token_kind: str  # "jwt" (minted offline), "bearer"/"session" (online exchange)
    settings: tuple[SettingSpec, ...]  # what `keyward setting` may change, per account

    def normalize(self, fields: Mapping[str, str]) -> dict[str, str]:
        """Validate and repair pasted credentials; raise InvalidCredential saying what's wrong."""

    def lifetime(self, account: Account) -> int:
        """Seconds a token (or session) of this account lives: a per-account setting."""

    def needs_token(self, account: Account, path: str | None) -> bool:
        """Whether a request to `path` (None: any) carries a token, not just a key."""

    def mint(self, account: Account, now: float, cache: Any = None) -> Token | None:
        """Offline token/signature for the account, or None when the venue has no offline token."""

    def login(self, account: Account, client: httpx.Client, now: float, sender: Any = None) -> Token | None:
        """The online exchange (login, AuthenticateUser), or None when the venue has none."""

    def headers(self, account: Account, token: Token | None, now: float, path: str | None = None) -> dict[str, str]:
        """Headers an authenticated request carries now."""

    def exec_env(self, account: Account, token: Token | None) -> dict[str, str]:
        """Venue-specific KEYWARD_* variables for `keyward exec`."""

    def health_request(self, account: Account) -> tuple[str, str, Any]:
        """(method, path, JSON body or None) of a cheap authenticated call."""

    def rate_limit(self, response: httpx.Response, now: float) -> RateLimit | None:
        """This venue's rate-limit signal in a response, if any."""

    def raise_for_error(self, account: Account, response: httpx.Response) -> None:
        """Turn the venue's error envelope into a typed VenueError with a what-to-do line."""

    def doctor(self, account: Account, now: float) -> list[str]:
        """Lines starting "ok:", "warning:" or "problem:" that explain the account's state."""

    def warnings(self, account: Account) -> list[str]:
        """Settings worth a warning on every use (a token window longer than documented)."""


def strip_paste(value: str) -> str:
    """Undo the usual paste accidents: surrounding whitespace, CR/LF, wrapping quotes."""
    value = value.strip().replace("\r\n", "\n").replace("\r", "\n")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return value


def normalize_fields(provider: Provider, raw: Mapping[str, Any]) -> dict[str, str]:
    """Common checks: known names only, required present, values non-empty strings."""
    known = {f.name: f for f in provider.fields}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InvalidCredential(
            f"{provider.venue} has no field {', '.join(unknown)}",
            hint=f"its fields are: {', '.join(known)}",
        )
    out: dict[str, str] = {}
    for name, spec in known.items():
        value = raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if spec.required:
                raise InvalidCredential(f"{provider.venue} needs {name}", hint="add it and try again")
            continue
        if not isinstance(value, (str, int)):
            raise InvalidCredential(f"{name} must be a string", hint="check the JSON you pasted")
        cleaned = str(value) if spec.multiline else strip_paste(str(value))
        if spec.multiline:
            cleaned = cleaned.strip().replace("\r\n", "\n")
        if not spec.multiline and any(c.isspace() for c in cleaned):
            raise InvalidCredential(f"{name} contains whitespace inside it", hint="paste it again as one line")
        out[name] = cleaned
    return out


def secret_names(provider: Provider) -> set[str]:
    return {f.name for f in provider.fields if f.secret}
