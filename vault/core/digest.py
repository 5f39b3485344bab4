"""SHA-256, HMAC-SHA256 and a timing-safe compare, through cryptography.

Every command that opens a vault loads cryptography for AES-GCM, and with it OpenSSL.
hashlib and hmac would load OpenSSL a second time (CPython's _hashlib, linked to the
system's libcrypto): about 3 ms of every cold call, for the same three functions.
(cryptography's own constant_time.bytes_eq imports hmac, so `equal` is built on HMAC.)
tests/test_digest.py checks them against hashlib and hmac.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.hashes import SHA256, Hash
from cryptography.hazmat.primitives.hmac import HMAC

__all__ = ["equal", "hmac_sha256", "sha256"]


def sha256(data: bytes) -> bytes:
    h = Hash(SHA256())
    h.update(data)
    return h.finalize()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    h = HMAC(key, SHA256())
    h.update(data)
    return h.finalize()


def equal(a: bytes, b: bytes) -> bool:
    """Whether two byte strings are equal, without a timing that tells where they differ:
    their HMACs under a fresh random key are compared instead (the "double HMAC"
    comparison), and where those differ says nothing about where `a` and `b` do."""
    key = os.urandom(32)
    return hmac_sha256(key, a) == hmac_sha256(key, b)
