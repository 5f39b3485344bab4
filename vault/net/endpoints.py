"""Base URLs: the rule that credentials never travel in clear.  (Which URL a venue's named
environment is belongs to the venue: vault.venues.resolve_base_url.)"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from vault.core.errors import InputError, InsecureTransport


def split_url(url: str):
    """urlsplit, or None for text that is no URL.  urlsplit raises ValueError on some
    input (an unbalanced "[" in the host, a port that is not a number), and URLs come
    from venues (a redirect's Location), users and files: a bad one must end in a typed
    error, never in "internal error (ValueError)"."""
    try:
        parts = urlsplit(str(url))
        parts.port  # noqa: B018 - parsed lazily, and raises on a bad port
    except ValueError:
        return None
    return parts


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
    parts = split_url(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{url!r} is not an http(s) URL", hint="pass a root such as https://host/path")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise InsecureTransport(
            f"refusing plain http to {parts.hostname}: credentials would travel unencrypted",
            hint="use https, or http only on 127.0.0.1 for the sandbox",
        )
    if parts.query or parts.fragment:
        raise InputError(f"{url!r} has a query or fragment", hint="pass only the root URL")
    return url.rstrip("/")
