"""The venues layer: one module per venue behind one Provider protocol, and the registry.
Uses vault.net and vault.core.  Adding a venue = one module here + its sandbox handler + tests."""

from __future__ import annotations

from importlib import import_module

from vault.core.errors import InputError, UnknownVenue

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from vault.venues.base import FieldSpec, Provider, normalize_fields, secret_names

VENUES = ("powertrade", "tradeready", "hypersolutions", "kiiex")

__all__ = ["VENUES", "FieldSpec", "Provider", "get_provider", "normalize_fields", "resolve_base_url", "secret_names"]
_FROM_BASE = frozenset(("FieldSpec", "Provider", "normalize_fields", "secret_names"))


def __getattr__(name: str) -> object:
    # vault.venues.base (with typing, the Provider protocol and the specs) loads when first asked for, not
    # with the package: every command's --help names the venues, and a cold command
    # builds its parser before it starts the KDF (vault.core.kdf).
    if name in _FROM_BASE:
        from vault.venues import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_LOADED: dict[str, Provider] = {}  # venue name as given -> its provider (views ask once per account)


def get_provider(venue: str) -> Provider:
    provider = _LOADED.get(venue)
    if provider is not None:
        return provider
    key = venue.lower().replace("-", "").replace("_", "")
    if key not in VENUES:
        raise UnknownVenue(f"unknown venue {str(venue)[:40]!r}", hint=f"known venues: {', '.join(VENUES)}")
    provider = _LOADED[venue] = import_module(f".{key}", __name__).PROVIDER
    return provider


def resolve_base_url(venue: str, env: str | None, base_url: str | None) -> tuple[str, str | None]:
    """(base URL, environment name) for `add`/`capture`: --base-url wins, else --env."""
    provider = get_provider(venue)
    if base_url:
        if env:
            raise InputError("give --env or --base-url, not both", hint="drop one of them")
        from vault.net.endpoints import check_base_url

        return check_base_url(base_url), None
    env = env or provider.default_env
    try:
        return provider.environments[env], env
    except KeyError:
        raise InputError(
            f"{provider.venue} has no environment {env!r}",
            hint=f"choose one of: {', '.join(provider.environments)}, or pass --base-url",
        ) from None
