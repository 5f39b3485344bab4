"""What a venue's answer says, read as hostile input: its status as a typed error, its
body as bounded JSON, its rate-limit headers, retry delays and clock, each parsed into a
validated range (milliseconds recognised, inf/nan/absurd values dropped) before anything
stores or prints it.

Split from vault.net.http (the transport, which re-exports all of this) so that the venue
modules, which read answers, do not load the transport: `keyward list` and `show` load a
venue module to mask its fields and talk to no venue.  Nothing here imports httpx.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any

from vault.core.errors import VenueError
from vault.core.model import MAX_TIMESTAMP, RateLimit, count

if TYPE_CHECKING:  # pragma: no cover
    import httpx

# The Date header has one-second resolution: below this, "skew" is measurement noise.
SKEW_RESOLUTION_S = 2.0
# Ranges for what a venue says about time.
MIN_SERVER_DATE = 946684800.0  # 2000-01-01: a Date before it is a broken clock, not skew
MAX_RETRY_AFTER_S = 86400.0  # "come back in 3,000 years" is no answer
MAX_PLAUSIBLE_SKEW_S = 30 * 86400.0  # past this the Date header is broken, not the clock
MAX_RESET_AHEAD_S = 400 * 86400.0
RELATIVE_RESET_BELOW = 1e8  # a reset this small is seconds from now, not a date in 1973


# --- the clock, rate limits and retry delays --------------------------------------------


def server_date(response: httpx.Response) -> float | None:
    value = response.headers.get("Date")
    if not value:
        return None
    return parse_http_date(value)


def parse_http_date(value: str) -> float | None:
    """An HTTP date as POSIX seconds, or None when unparseable or absurd (year 1, 9999)."""
    import email.utils  # costs more to import than the rest of this module

    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if MIN_SERVER_DATE <= when < MAX_TIMESTAMP else None


def measure_skew(response: httpx.Response, local_at_response: float, latency_s: float) -> float | None:
    """Server clock minus local clock, from the `Date` header.

    The server stamped Date somewhere during the round trip, truncated to the second:
    compare it (plus half a second) with our clock at the middle of the round trip.
    """
    date = server_date(response)
    if date is None:
        return None
    skew = round(date + 0.5 - (local_at_response - latency_s / 2), 1)
    # Off by more than a month is a broken Date header ("year 0001" parses as 2001), not
    # a clock to warn about: unknown.
    return skew if abs(skew) <= MAX_PLAUSIBLE_SKEW_S else None


def skew_matters(skew_s: float | None, lifetime_s: float) -> bool:
    """Worth a warning: more than a third of the token's lifetime, and above the noise."""
    return skew_s is not None and abs(skew_s) >= max(SKEW_RESOLUTION_S, lifetime_s / 3)


def describe_skew(skew_s: float) -> str:
    direction = "ahead of" if skew_s > 0 else "behind"
    return f"clock skew {skew_s:+.1f} s (the venue's clock is {abs(skew_s):.1f} s {direction} this machine's)"


def header_number(value: str | None) -> float | None:
    """A header's number, finite, or None ("inf", "nan", "1e400" and words are None)."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def delay_in_range(seconds: float | None) -> float | None:
    """A wait a venue asked for, if it is one: 0 to MAX_RETRY_AFTER_S, else None."""
    if seconds is None or isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return None
    try:
        seconds = float(seconds)
    except OverflowError:
        return None
    if not math.isfinite(seconds) or seconds > MAX_RETRY_AFTER_S:
        return None
    return max(0.0, seconds)


def reset_time(value: float | None, now: float) -> float | None:
    """An X-RateLimit-Reset as POSIX seconds: epoch seconds, epoch milliseconds (several
    exchanges), or seconds from now (a small number); None when out of any sane range."""
    if value is None or value < 0:
        return None
    if value >= 1e11:  # milliseconds
        value /= 1000.0
    elif value < RELATIVE_RESET_BELOW:
        value = now + value
    return value if MIN_SERVER_DATE <= value <= now + MAX_RESET_AHEAD_S else None


def retry_delay(response: httpx.Response, local_now: float | None = None) -> float | None:
    """Seconds until a 429 clears: Retry-After (seconds or HTTP date), else X-RateLimit-Reset.

    Absolute times are server times, so they are compared with the response's own Date
    (falling back to our clock), which keeps clock skew out of the wait.  A wait out of
    range (negative, inf, nan, a day or more) counts as not said."""
    now = server_date(response)
    if now is None:
        now = time.time() if local_now is None else local_now
    value = response.headers.get("Retry-After")
    if value:
        seconds = header_number(value)
        if seconds is not None:
            return delay_in_range(seconds)
        when = parse_http_date(value)
        if when is not None:
            return delay_in_range(max(0.0, when - now))
        return None
    reset = reset_time(header_number(response.headers.get("X-RateLimit-Reset")), now)
    return None if reset is None else delay_in_range(max(0.0, reset - now))


def rate_limit_values(
    limit: Any, remaining: Any, reset_at: Any, now: float, notices: list[str] | None = None
) -> RateLimit | None:
    """A RateLimit from what a venue said, every value in range or dropped (with a
    notice naming it, never quoting it): the one constructor for venue rate limits."""

    def keep(name: str, raw: Any, value: Any) -> Any:
        if raw is not None and value is None and notices is not None:
            notices.append(f"ignored the venue's {name}: not a value in range")
        return value

    lim = keep("rate-limit limit", limit, count(limit) if not isinstance(limit, float) or limit == limit else None)
    rem = keep("rate-limit remaining", remaining, count(remaining))
    if isinstance(reset_at, (int, float)) and not isinstance(reset_at, bool):
        try:
            reset = reset_time(float(reset_at), now)
        except OverflowError:
            reset = None
    else:
        reset = None
    reset = keep("rate-limit reset", reset_at, reset)
    if lim is None and rem is None:
        return None
    return RateLimit(limit=lim, remaining=rem, reset_at=reset, observed_at=now)


def header_rate_limit(response: httpx.Response, now: float, notices: list[str] | None = None) -> RateLimit | None:
    """The X-RateLimit-* triple (TradeReady documents it; others may send it too), each
    value validated: a limit or remaining count that is not a whole number from 0 to
    10**12, or a reset that is no time in the next year, is dropped."""
    h = response.headers
    if "X-RateLimit-Limit" not in h and "X-RateLimit-Remaining" not in h:
        return None
    raw = {name: h.get(f"X-RateLimit-{name}") for name in ("Limit", "Remaining", "Reset")}
    parsed = {name: header_number(value) for name, value in raw.items()}
    for name, value in raw.items():  # unparseable text: dropped too, and said so
        if value is not None and parsed[name] is None and notices is not None:
            notices.append(f"ignored the venue's X-RateLimit-{name}: not a number")
    return rate_limit_values(parsed["Limit"], parsed["Remaining"], parsed["Reset"], now, notices)


def expiry_in_range(expires_at: float | None, now: float) -> float | None:
    """A token expiry a venue sent, if it is one: after now minus a day, before a year
    from now.  None (unknown: the caller uses the documented lifetime) otherwise."""
    if expires_at is None or not math.isfinite(expires_at):
        return None
    return expires_at if now - 86400.0 <= expires_at <= now + 366 * 86400.0 else None


def rate_limit_notices(response: httpx.Response, now: float) -> list[str]:
    """What `header_rate_limit` dropped from this answer, one notice each (for `check`)."""
    notices: list[str] = []
    header_rate_limit(response, now, notices)
    return notices


def response_notices(response: httpx.Response, now: float) -> list[str]:
    """Everything this answer said that keyward dropped as out of range, one notice each:
    rate-limit headers, and a Date that is no date (year 1, 9999), which leaves clock skew
    unknown rather than measured from nonsense."""
    notices = rate_limit_notices(response, now)
    date = response.headers.get("Date")
    if date and measure_skew(response, now, 0.0) is None:
        notices.append("ignored the venue's Date header: no date within a month of this machine's, "
                       "so clock skew unknown")
    return notices


def checked_token(token: Any, venue: str, label: str) -> Any:
    """A token a login returned, if it can be stored and sent: printable ASCII (it goes
    into a header) and at most MAX_TOKEN_CHARS long.  Else a VenueError quoting nothing."""
    from vault.core.model import MAX_TOKEN_CHARS

    value = getattr(token, "value", None)
    if token is None or (isinstance(value, str) and 0 < len(value) <= MAX_TOKEN_CHARS and value.isascii()
                         and value.isprintable()):
        return token
    size = len(value) if isinstance(value, str) else 0
    raise VenueError(
        f"{venue} answered the login of {label!r} with a token keyward cannot use "
        f"({size} characters; at most {MAX_TOKEN_CHARS} printable ASCII)",
        hint="retry later; if it persists the venue's API may have changed or a proxy is misbehaving",
    )


def json_body(response: httpx.Response, venue: str) -> Any:
    """The parsed body, or a VenueError that quotes nothing of it."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise VenueError(
            f"{venue} answered HTTP {response.status_code} with a body that is not valid JSON",
            hint="retry; if it persists the venue or a proxy in between is misbehaving",
            status=response.status_code,
        ) from None


# --- turning a refusal into a typed error ------------------------------------------


def generic_error(
    title: str,
    label: str,
    response: httpx.Response,
    *,
    code: str | None = None,
    hint: str | None = None,
    retry_after: float | None = None,
) -> VenueError:
    """The typed error for a non-2xx answer, from the status (and a vetted venue code).

    Venue providers call this after mapping what their own envelope says; the message
    names the account, the status and the code, and nothing from the body.
    """
    from vault.core.errors import AuthRejected, RateLimited, ServerError

    status = response.status_code
    what = f"HTTP {status}" + (f", {code}" if code else "")
    if status in (401, 403):
        return AuthRejected(
            f"{title} refused the credentials of {label!r} ({what})",
            hint=hint or f"check them with `keyward doctor {label}`; nothing was retried",
            status=status,
            code=code,
        )
    if status == 429:
        wait = delay_in_range(retry_after) if retry_after is not None else None
        wait = wait if wait is not None else retry_delay(response)
        when = f"retry in {wait:.0f} s" if wait is not None else "retry later"
        return RateLimited(
            f"{title} rate-limited {label!r} ({what})",
            hint=hint or f"{when}, or spread your calls out",
            retry_after=wait,
            status=status,
            code=code,
        )
    if 300 <= status < 400:
        from vault.net.endpoints import split_url

        location = split_url(response.headers.get("Location", ""))
        target = location.hostname if location is not None else None
        where = f" to {target}" if target else ""
        return VenueError(
            f"{title} answered {label!r} with a redirect{where} ({what}); keyward follows none",
            hint="check the account's base URL and environment (`keyward show LABEL`)",
            status=status,
            code=code,
        )
    if status == 404:
        return VenueError(
            f"{title} has no such endpoint for {label!r} ({what})",
            hint=hint or "check the base URL and environment, or the health_path setting",
            status=status,
            code=code,
        )
    if status >= 500:
        return ServerError(
            f"{title} failed on its side for {label!r} ({what})",
            hint=hint or "retry later; the venue may be down or in maintenance",
            status=status,
            code=code,
        )
    return VenueError(
        f"{title} rejected the request for {label!r} ({what})",
        hint=hint or f"see `keyward doctor {label}`",
        status=status,
        code=code,
    )


def safe_code(value: Any, *, upper: bool | None = None, max_len: int = 40) -> str | None:
    """A venue error code fit to quote: a short identifier, never free text or a token."""
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        return None
    # Letters and underscores only: a key, a token or a hex id always has digits in it.
    if not all(c.isalpha() or c == "_" for c in value) or not value.isascii():
        return None
    if upper is True and not value.isupper():
        return None
    if upper is False and not value.islower():
        return None
    return value
