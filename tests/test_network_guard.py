"""The suite itself never leaves the machine (rule: tests talk to 127.0.0.1 only)."""

from __future__ import annotations

import json
import socket

import pytest


def test_an_in_process_connection_off_loopback_fails_the_test():
    with socket.socket() as s, pytest.raises(AssertionError, match="only 127.0.0.1"):
        s.connect(("192.0.2.1", 443))  # TEST-NET-1: never routed, and never tried


def test_a_cli_call_to_a_real_venue_stops_at_the_loopback_proxy(kw):
    """An account on PowerTrade's real host: `check` must fail locally (the suite's dead
    proxy on 127.0.0.1), proving a CLI subprocess cannot reach the venue either."""
    assert kw.init().code == 0
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    r = kw("add", "powertrade", "real", "--env", "test", "--from-json", "-",
           input=json.dumps({"api_key": "k", "private_key": pem}))
    assert r.code == 0, r.err
    r = kw("check", "real", timeout=60)
    assert r.code != 0 and "cannot connect" in r.both
    assert "Traceback" not in r.err
    r = kw("token", "real", "--force")  # minting is offline; login-less venues still must not call out
    assert r.code == 0
