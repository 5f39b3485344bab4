"""When the monitor next touches an account: pure functions of what it last saw.

* A health check every `check_interval_s` (the account's setting, else `--interval`),
  jittered by +-`jitter` of the interval so a thousand accounts do not stay in step.
* Never into a rate limit: a 429 pushes the next check past the window's reset (or, if
  the venue gave none, a full interval and at least a minute later); a window already
  down to its last tenth is left to the bots until it resets (an hour at most).
* Sessions kept fresh: a Kiiex session gets a keep-alive call (its health call, the
  cheapest private one) once half its idle window has passed; a cached bearer of a venue
  that does not lock users out (TradeReady) is renewed by a login once half its life,
  or ten minutes, is left.  A venue that locks users out is never logged in to by the
  monitor: only VenueOps' own once-per-operation login inside a check, which it refuses
  after a failed one.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

DEFAULT_INTERVAL_S = 60.0
DEFAULT_JITTER = 0.1
LOW_RATE_FRACTION = 0.1  # below this share of the window left, checks wait for the reset
RESET_MARGIN_S = 1.0
LOW_WINDOW_MAX_WAIT_S = 3600.0  # a nearly used-up window is waited out for an hour at most  # after a reset, so the first request is surely in the new window
NO_RESET_BACKOFF_S = 60.0  # a 429 that said nothing about when to come back
RENEW_BEFORE_S = 600.0
DEFAULT_SESSION_IDLE_S = 3600  # Kiiex's session_idle_s default  # a bearer is renewed 10 minutes before it expires (or at half life)


@dataclass(frozen=True)
class RateSeen:
    limit: int | None
    remaining: int | None
    reset_at: float | None


def jittered(now: float, interval: float, jitter: float, rng: random.Random) -> float:
    """The next regular check: `interval` from now, +-`jitter` of it."""
    spread = max(0.0, min(jitter, 0.5))
    return now + interval * (1.0 + rng.uniform(-spread, spread))


def rate_limit_low(rl: RateSeen | None) -> bool:
    """True when the window's last tenth (at least one request) is all that is left."""
    if rl is None or rl.limit is None or rl.remaining is None or rl.limit <= 0:
        return False
    return rl.remaining < max(1, math.ceil(rl.limit * LOW_RATE_FRACTION))


def next_check(now: float, interval: float, jitter: float, rng: random.Random, *, status: int | None,
               rl: RateSeen | None) -> tuple[float, str | None]:
    """(when to check next, why it is later than usual or None)."""
    regular = jittered(now, interval, jitter, rng)
    if status == 429:
        if rl is not None and rl.reset_at is not None and rl.reset_at > now:
            return max(regular, rl.reset_at + RESET_MARGIN_S), "rate-limited (HTTP 429)"
        return max(regular, now + max(interval, NO_RESET_BACKOFF_S)), "rate-limited (HTTP 429, no reset time given)"
    if rate_limit_low(rl) and rl is not None and rl.reset_at is not None and rl.reset_at > now:
        # Waited out, but not for longer than an hour (or an interval): a quota that resets
        # monthly (Hyper's plan) must not leave the account unwatched for weeks.
        later = min(rl.reset_at + RESET_MARGIN_S, now + max(interval, LOW_WINDOW_MAX_WAIT_S))
        return max(regular, later), "rate limit nearly used up"
    return regular, None


def keepalive_at(expires_at: float | None, idle_s: float) -> float | None:
    """When a sliding session next needs a call: half its idle window before it lapses.
    (VenueOps logs in again below min(5 min, idle/4) left, so this is always before.)"""
    if expires_at is None or idle_s <= 0:
        return None
    return expires_at - idle_s / 2


def renew_at(issued_at: float | None, expires_at: float | None) -> float | None:
    """When a bearer with a fixed expiry is renewed: 10 minutes, or half its life, before."""
    if expires_at is None:
        return None
    life = (expires_at - issued_at) if issued_at is not None and expires_at > issued_at else 2 * RENEW_BEFORE_S
    return expires_at - min(RENEW_BEFORE_S, life / 2)
