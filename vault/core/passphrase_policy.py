"""The one policy for a new passphrase (a vault's, a changed one, an encrypted bundle's),
used by `keyward init`/`passwd`/`export --encrypted` and by the dashboard's create and
export screens alike.

The estimate is zxcvbn's (Dropbox's model, as KeePassXC and 1Password use it): word
lists of common passwords, names and English words, keyboard walks, sequences, repeats,
dates and l33t substitutions, each costed as an attacker's guesses.  A passphrase is
accepted when it is at least MIN_LENGTH characters long and zxcvbn puts it at
MIN_GUESSES or more guesses (about 46.5 bits).  At the default Argon2id cost (t=3,
64 MiB) a GPU rig manages in the order of 10^4 guesses a second, so that is centuries of
one rig's time for the average case, where zxcvbn's own "strong" (10^10) is days.

zxcvbn is imported only when a passphrase is being measured (never on `keyward list`
or `token`), and its feedback is fixed text, so nothing of the passphrase ever reaches
a message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_LENGTH = 12
MIN_GUESSES_LOG10 = 14.0
MIN_BITS = MIN_GUESSES_LOG10 * math.log2(10)  # ~46.5
# zxcvbn measures at most 72 characters (its matching is quadratic in the length): a
# longer passphrase is measured on its first 72, and the rest earns no credit.
MEASURED_CHARS = 72
# Words that say nothing when they appear in a keyward passphrase.
CONTEXT_WORDS = ("keyward", "vault", "passphrase", "password", "powertrade", "tradeready", "hypersolutions",
                 "kiiex", "trading", "exchange", "crypto", "bitcoin")
LEVELS = ("very weak", "weak", "fair", "good", "strong")


@dataclass(frozen=True)
class Strength:
    bits: float  # log2 of zxcvbn's guess count
    score: int  # 0..4, for the meter's colour
    ok: bool
    reason: str  # why it is refused; "" when accepted
    advice: str = ""  # what to do instead; "" when accepted

    @property
    def label(self) -> str:
        return LEVELS[self.score]


def estimate(passphrase: str, user_inputs: tuple[str, ...] = ()) -> Strength:
    """How strong `passphrase` is, and whether the policy accepts it (with the reason
    when it does not).  `user_inputs`: words an attacker would try first (labels, a user
    name); they are costed as dictionary words."""
    if not passphrase:
        return Strength(0.0, 0, False, "enter a passphrase")
    from zxcvbn import zxcvbn  # lazily: only while a passphrase is being chosen

    result = zxcvbn(passphrase[:MEASURED_CHARS], user_inputs=[*CONTEXT_WORDS, *user_inputs])
    log10 = float(result["guesses_log10"])
    bits = round(log10 * math.log2(10), 1)
    score = 0 if log10 < 8 else 1 if log10 < 11 else 2 if log10 < MIN_GUESSES_LOG10 else 3 if log10 < 18 else 4
    feedback = result.get("feedback") or {}
    warning = str(feedback.get("warning") or "").rstrip(".")
    reason = advice = ""
    if len(passphrase) < MIN_LENGTH:
        reason = f"too short ({len(passphrase)} characters)"
        advice = f"use at least {MIN_LENGTH}, or four or more random words"
    elif log10 < MIN_GUESSES_LOG10:
        why = f"; {warning[0].lower()}{warning[1:]}" if warning else ""
        reason = f"too easy to guess (about {bits:.0f} bits, {MIN_BITS:.0f} needed{why})"
        advice = "add a few uncommon words"
    ok = not reason
    if not ok:
        score = min(score, 1)  # a refused passphrase never reads "fair"
    return Strength(bits, score, ok, reason, advice)


def check_new_passphrase(passphrase: str, what: str = "passphrase", user_inputs: tuple[str, ...] = ()) -> None:
    """Raise WeakPassphrase (one line: why, and what to do) unless the policy accepts it."""
    strength = estimate(passphrase, user_inputs)
    if not strength.ok:
        from vault.core.errors import WeakPassphrase

        raise WeakPassphrase(f"that {what} is {strength.reason}", hint=f"{strength.advice}; nothing was changed")
