"""How strong a new vault passphrase is, and why a weak one is refused.

A conservative estimate in bits: random-looking characters are credited with the size of
their alphabet, runs and keyboard or alphabet sequences with almost nothing, well-known
passwords with nothing, and a passphrase made of words with ~12.9 bits a word (a
diceware word), never more than its characters would give.  It is a meter for people
choosing a passphrase, not a cracking model: the Argon2id cost does the rest.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MIN_LENGTH = 12
MIN_BITS = 50.0
WORD_BITS = 12.9  # log2(7776): one word of a diceware list

# The start of every leaked-password list, and what people think is clever about them.
COMMON = frozenset(
    """password passw0rd p@ssw0rd p@ssword letmein welcome qwerty qwertyuiop asdfghjkl
    iloveyou admin administrator monkey dragon sunshine princess football baseball
    trustno1 master shadow superman batman starwars whatever freedom secret changeme
    correcthorsebatterystaple keyward bitcoin crypto ethereum satoshi trading trader
    exchange letmeinplease passwordpassword""".split()
)
_SEQUENCES = ("abcdefghijklmnopqrstuvwxyz", "0123456789", "qwertyuiop", "asdfghjkl", "zxcvbnm", "1qaz2wsx3edc")
_LEVELS = ("very weak", "weak", "fair", "good", "strong")


@dataclass(frozen=True)
class Strength:
    bits: float
    score: int  # 0..4
    ok: bool
    reason: str  # why it is refused, or "" when accepted

    @property
    def label(self) -> str:
        return _LEVELS[self.score]


def _alphabet(text: str) -> int:
    size = 0
    if re.search(r"[a-z]", text):
        size += 26
    if re.search(r"[A-Z]", text):
        size += 26
    if re.search(r"[0-9]", text):
        size += 10
    if re.search(r"[ -/:-@\[-`{-~]", text):
        size += 33
    if any(ord(c) > 127 for c in text):
        size += 100
    return max(size, 1)


def _effective_length(text: str) -> tuple[float, list[str]]:
    """Characters that carry information: runs and sequences count for very little."""
    lowered = text.lower()
    credit = 0.0
    findings: list[str] = []
    i = 0
    while i < len(lowered):
        j = i + 1
        while j < len(lowered) and lowered[j] == lowered[i]:
            j += 1
        if j - i >= 3:
            credit += 1.5
            findings.append("repeats a character")
            i = j
            continue
        k = i
        for seq in _SEQUENCES:
            for s in (seq, seq[::-1]):
                pos = s.find(lowered[i])
                if pos < 0:
                    continue
                n = 1
                while i + n < len(lowered) and pos + n < len(s) and lowered[i + n] == s[pos + n]:
                    n += 1
                if n >= 3:
                    k = max(k, i + n)
        if k - i >= 3:
            credit += 1.5
            findings.append("contains a keyboard or alphabet run")
            i = k
            continue
        credit += 1
        i += 1
    return credit, findings


def _repeated_unit(text: str) -> str:
    """"abcabcabc" -> "abc": a repeated block is worth one copy of it."""
    n = len(text)
    for size in range(1, n // 2 + 1):
        if n % size == 0 and text[:size] * (n // size) == text:
            return text[:size]
    return text


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s\-_.,;:+/|]+", text) if w]


def estimate(passphrase: str) -> Strength:
    if not passphrase:
        return Strength(0.0, 0, False, "enter a passphrase")
    squashed = re.sub(r"[\s\-_.]+", "", passphrase.lower())
    common = squashed in COMMON or re.sub(r"[0-9!@#$%^&*]+$", "", squashed) in COMMON
    unit = _repeated_unit(passphrase)
    segments = _words(passphrase)
    distinct = list(dict.fromkeys(w.lower() for w in segments))
    if len(segments) >= 2 and len(distinct) < len(segments):
        # "x7Kq-x7Kq-x7Kq" or "Sunflower7 Sunflower7 blue": a repeated segment is worth one copy
        unit = " ".join(distinct) if len(distinct) > 1 else distinct[0]
    eff_len, findings = _effective_length(unit)
    if unit != passphrase:
        findings.insert(0, "repeats itself")
    bits = eff_len * math.log2(_alphabet(unit))
    words = _words(unit)
    if len(words) >= 2 and all(w.isalpha() for w in words):
        # Plain words: an attacker guesses words, not letters; short ones are few.
        distinct = {w.lower() for w in words}
        bits = min(bits, sum(WORD_BITS if len(w) >= 4 else 5.0 for w in distinct))
    if common:
        bits = min(bits, 10.0)
    score = 0 if bits < 28 else 1 if bits < 36 else 2 if bits < MIN_BITS else 3 if bits < 80 else 4
    reason = ""
    if len(passphrase) < MIN_LENGTH:
        reason = f"too short ({len(passphrase)} characters): use at least {MIN_LENGTH}, or four or more random words"
    elif common:
        reason = "a well-known password: it is among the first an attacker tries"
    elif bits < MIN_BITS:
        why = f"; it {findings[0]}" if findings else ""
        reason = f"too predictable (about {bits:.0f} bits){why}: add random words or characters"
    ok = not reason
    if not ok:
        score = min(score, 1)  # a refused passphrase never reads "fair"
    return Strength(round(bits, 1), score, ok, reason)
