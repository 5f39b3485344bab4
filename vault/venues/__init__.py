"""The venues layer: one module per venue behind one Provider protocol, and the registry.
Uses vault.net and vault.core.  Adding a venue = one module here + its sandbox handler + tests."""

from __future__ import annotations

from importlib import import_module

from vault.core.errors import UnknownVenue
from vault.venues.base import FieldSpec, Provider, normalize_fields, secret_names

VENUES = ("powertrade", "tradeready", "hypersolutions", "kiiex")

__all__ = ["VENUES", "FieldSpec", "Provider", "get_provider", "normalize_fields", "secret_names"]


def get_provider(venue: str) -> Provider:
    key = venue.lower().replace("-", "").replace("_", "")
    if key not in VENUES:
        raise UnknownVenue(f"unknown venue {venue!r}", hint=f"known venues: {', '.join(VENUES)}")
    return import_module(f".{key}", __name__).PROVIDER
