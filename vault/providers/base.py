"""The one protocol every venue implements, and the pieces venues share.

A venue is one module in this package that defines a `PROVIDER` object satisfying
`Provider`.  Provider modules must stay cheap to import (no jwt, httpx or cryptography
at module level): `keyward list` loads every one of them to describe fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from ..errors import InvalidCredential

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from ..model import Account, RateLimit, Token


@dataclass(frozen=True)
class FieldSpec:
    name: str
    secret: bool
    required: bool = True
    prompt: str = ""
    multiline: bool = False  # PEM keys: read until the END line, not one line

    @property
    def label(self) -> str:
        return self.prompt or self.name.replace("_", " ")


class Provider(Protocol):
    """What a venue module provides.  vault.ops drives these; nothing else calls them."""

    venue: str
    title: str
    fields: tuple[FieldSpec, ...]
    environments: Mapping[str, str]
    default_env: str
    health_path: str  # default; per-account override in settings["health_path"]
    token_kind: str  # "jwt" (minted offline), "bearer"/"session" (online exchange)

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
