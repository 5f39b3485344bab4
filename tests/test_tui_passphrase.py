"""The new-vault passphrase meter: weak passphrases are refused, each with its reason."""

from __future__ import annotations

import pytest

from tui.passphrase import MIN_LENGTH, estimate


@pytest.mark.parametrize("passphrase, reason", [
    ("", "enter a passphrase"),
    ("Tr0ub4dor&3", "too short"),
    ("password123!", "a well-known password"),
    ("correct horse battery staple", "a well-known password"),
    ("Password-Password", "a well-known password"),
    ("zxcvbnm-asdfghjkl-12345", "too predictable"),  # keyboard runs
    ("abcdefgh12345678", "too predictable"),  # alphabet and digit runs
    ("x7Kq-x7Kq-x7Kq-x7Kq", "too predictable"),  # repeats itself, separators or not
    ("Sunflower7-Sunflower7", "too predictable"),
    ("aaaaaaaaaaaaaaaaaaaa", "too predictable"),
    ("the cat and the dog", "too predictable"),  # short common words
])
def test_weak_passphrases_are_refused_with_the_reason(passphrase: str, reason: str) -> None:
    strength = estimate(passphrase)
    assert not strength.ok
    assert strength.reason.startswith(reason), strength.reason
    assert strength.label in ("very weak", "weak")


@pytest.mark.parametrize("passphrase", [
    "granite lantern mosaic velvet",
    "river-tundra-oxide-lantern",
    "k7#Vq9!zR2pW$e4M",
])
def test_strong_passphrases_are_accepted(passphrase: str) -> None:
    strength = estimate(passphrase)
    assert strength.ok and strength.reason == "" and strength.bits >= 50
    assert strength.label in ("good", "strong")


def test_length_alone_is_not_strength() -> None:
    assert len("abcabcabcabcabc") > MIN_LENGTH and not estimate("abcabcabcabcabc").ok
