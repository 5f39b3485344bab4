"""How strong a new passphrase is, and why a weak one is refused: the dashboard's view of
the one policy in vault.core.passphrase_policy (zxcvbn), which `keyward init`, `passwd`
and `export --encrypted` apply too."""

from __future__ import annotations

from vault.core.passphrase_policy import MIN_BITS, MIN_LENGTH, Strength, estimate

__all__ = ["MIN_BITS", "MIN_LENGTH", "Strength", "estimate", "refusal"]


def refusal(strength: Strength) -> str:
    """The one line the create and export screens show for a refused passphrase."""
    return f"Refused: {strength.reason}: {strength.advice}."
