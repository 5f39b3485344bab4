"""The new-passphrase policy (zxcvbn) as the dashboard's meter shows it: weak passphrases
are refused, each with its reason and what to do.  The CLI applies the same function:
tests/test_new_user.py."""

from __future__ import annotations

import pytest

from tui.passphrase import MIN_BITS, MIN_LENGTH, estimate, refusal


@pytest.mark.parametrize("passphrase, reason", [
    ("", "enter a passphrase"),
    ("Tr0ub4dor&3", "too short"),
    ("password123!", "too easy to guess"),
    ("password1234", "too easy to guess"),
    ("Password-Password", "too easy to guess"),
    ("zxcvbnm-asdfghjkl-12345", "too easy to guess"),  # keyboard runs
    ("abcdefgh12345678", "too easy to guess"),  # alphabet and digit runs
    ("x7Kq-x7Kq-x7Kq-x7Kq", "too easy to guess"),  # repeats itself
    ("Sunflower7-Sunflower7", "too easy to guess"),
    ("aaaaaaaaaaaaaaaaaaaa", "too easy to guess"),
    ("Manchesterunited2019", "too easy to guess"),  # dictionary words and a year
    ("keyward-vault-passphrase", "too easy to guess"),  # the words of this very context
])
def test_weak_passphrases_are_refused_with_the_reason(passphrase: str, reason: str) -> None:
    strength = estimate(passphrase)
    assert not strength.ok
    assert strength.reason.startswith(reason), strength.reason
    assert strength.label in ("very weak", "weak")
    if passphrase:
        assert strength.advice and passphrase not in strength.reason + strength.advice
        line = refusal(strength)
        assert line.startswith("Refused: ") and line.endswith(".") and strength.advice in line


def test_zxcvbn_says_why() -> None:
    assert "common password" in estimate("password1234").reason
    assert "sequences" in estimate("abcdefgh12345678").reason.lower()


@pytest.mark.parametrize("passphrase", [
    "granite lantern mosaic velvet",
    "river-tundra-oxide-lantern",
    "k7#Vq9!zR2pW$e4Mx",
])
def test_strong_passphrases_are_accepted(passphrase: str) -> None:
    strength = estimate(passphrase)
    assert strength.ok and strength.reason == "" and strength.bits >= MIN_BITS
    assert strength.label in ("good", "strong")


def test_length_alone_is_not_strength() -> None:
    assert len("abcabcabcabcabc") > MIN_LENGTH and not estimate("abcabcabcabcabc").ok


def test_a_long_passphrase_is_measured_without_error() -> None:
    """zxcvbn refuses more than 72 characters: the rest earns no credit, and no crash."""
    assert estimate("granite lantern mosaic velvet " * 10).ok
    assert not estimate("a" * 500).ok
