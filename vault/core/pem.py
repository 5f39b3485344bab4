"""Validation of pasted EC private keys (PowerTrade's P-256 key), repairing what's safe."""

from __future__ import annotations

import re

from vault.core.errors import InvalidCredential

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def _reflow(kind: str, body: str) -> str:
    b64 = "".join(body.split())
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n"


def normalize_ec_p256_private_key(text: str) -> str:
    """Return the key as a canonical PKCS#8 PEM, or raise InvalidCredential saying why.

    Repairs: surrounding whitespace and CRLFs, lines re-wrapped by a chat client or a
    terminal, and a bare base64 body whose BEGIN/END lines were lost in the paste.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    text = text.strip().replace("\r\n", "\n").replace("\\n", "\n")
    match = _BLOCK.search(text)
    if match:
        kind = match.group(1)
        if "PUBLIC" in kind:
            raise InvalidCredential(
                "that is a public key, not the private key",
                hint="paste the PRIVATE KEY block PowerTrade showed when the API key was created",
            )
        if "ENCRYPTED" in kind:
            raise InvalidCredential("the private key is passphrase-encrypted", hint="export it unencrypted (PKCS#8)")
        candidates = [_reflow(kind, match.group(2))]
    elif text.startswith("-----"):
        raise InvalidCredential("the PEM has a BEGIN line but no matching END line", hint="paste the whole block")
    elif re.fullmatch(r"[A-Za-z0-9+/=\s]+", text or "!"):
        # Header and footer lost in the paste: try both encodings a P-256 key comes in.
        candidates = [_reflow("PRIVATE KEY", text), _reflow("EC PRIVATE KEY", text)]
    else:
        raise InvalidCredential("the private key is not PEM", hint="paste the block from -----BEGIN to -----END")

    key = None
    for pem in candidates:
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
            break
        except (ValueError, TypeError):
            continue
    if key is None:
        raise InvalidCredential("the private key PEM could not be decoded", hint="paste the whole key again")
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidCredential(
            "the key is not an EC key",
            hint="PowerTrade keys are EC P-256 (ES256)",
        )
    if key.curve.name != "secp256r1":
        raise InvalidCredential(
            f"the key is on curve {key.curve.name}, not P-256", hint="PowerTrade's ES256 needs a secp256r1 key"
        )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
