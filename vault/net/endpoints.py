"""Base URLs: named environments, and the rule that credentials never travel in clear."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from vault.core.errors import InputError, InsecureTransport
from vault.venues import get_provider


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """Accept https anywhere and http only on loopback (the sandbox); return it without a
    trailing slash so that documented paths can be appended."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{url!r} is not an http(s) URL", hint="pass a root such as https://host/path")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise InsecureTransport(
            f"refusing plain http to {parts.hostname}: credentials would travel unencrypted",
            hint="use https, or http only on 127.0.0.1 for the sandbox",
        )
    if parts.query or parts.fragment:
        raise InputError(f"{url!r} has a query or fragment", hint="pass only the root URL")
    return url.rstrip("/")


def resolve_base_url(venue: str, env: str | None, base_url: str | None) -> tuple[str, str | None]:
    """(base URL, environment name) for `add`/`capture`: --base-url wins, else --env."""
    provider = get_provider(venue)
    if base_url:
        if env:
            raise InputError("give --env or --base-url, not both", hint="drop one of them")
        return check_base_url(base_url), None
    env = env or provider.default_env
    try:
        return provider.environments[env], env
    except KeyError:
        raise InputError(
            f"{provider.venue} has no environment {env!r}",
            hint=f"choose one of: {', '.join(provider.environments)}, or pass --base-url",
        ) from None
