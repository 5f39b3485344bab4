"""How keyward talks HTTP: one hardened client, one send loop, and what responses teach.

Every request keyward makes carries a credential, so the rules here are strict:

* TLS verification on; plain http only to loopback (the sandbox), checked on every
  request by a hook, whoever built the client;
* plain http never goes through a proxy: `HTTP_PROXY` would otherwise carry the headers
  of a loopback request, in clear, to the proxy's host (https still honours
  `HTTPS_PROXY`: that is a CONNECT tunnel, TLS end to end);
* no redirects are followed: httpx strips `Authorization` on a cross-host redirect but
  not `X-API-Key`, `aptoken` or a login body, so a redirect is an error to look at;
* 401/403 are never retried; a 429 is waited out (bounded) only for idempotent calls,
  with fresh headers for each attempt (PowerTrade refuses a replayed nonce);
* errors carry host names and status codes, never a URL query, a header or a body.

The module imports httpx lazily so that the provider modules can use its helpers and
still cost nothing to import.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import urlsplit

from vault.net.endpoints import is_loopback_host
from vault.core.errors import InsecureTransport, NetworkError, VenueError
from vault.core.model import RateLimit

if TYPE_CHECKING:  # pragma: no cover
    import httpx

USER_AGENT = "keyward/0.1.0"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 15.0
MAX_WAIT_S = 30.0  # total time one call may spend waiting out 429s
MAX_ATTEMPTS = 3  # the first try and two retries after a 429
DEFAULT_429_WAIT_S = 1.0  # a 429 that says nothing about when to come back
# The Date header has one-second resolution: below this, "skew" is measurement noise.
SKEW_RESOLUTION_S = 2.0
# NetworkError codes: whether the venue can have seen the request.
NOT_SENT = "NotSent"
SENT_UNANSWERED = "SentUnanswered"

Headers = Mapping[str, str]
OnWait = Callable[[float, str], None]


# --- transport rules ---------------------------------------------------------------


def ensure_transport_allowed(url: Any) -> None:
    """Raise InsecureTransport unless `url` (str or httpx.URL) is https, or http to loopback."""
    parts = urlsplit(str(url))
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return
    raise InsecureTransport(
        f"refusing to send credentials over {parts.scheme or 'an unknown scheme'} to {parts.hostname or 'an unnamed host'}",
        hint="use an https base URL (plain http is allowed only to 127.0.0.1, for the sandbox)",
    )


def _refuse_insecure(request: httpx.Request) -> None:
    ensure_transport_allowed(request.url)


def harden(client: httpx.Client) -> httpx.Client:
    """Install the plain-http refusal on a client built elsewhere (an injected factory)."""
    hooks = client.event_hooks
    if _refuse_insecure not in hooks["request"]:
        hooks["request"] = [_refuse_insecure, *hooks["request"]]
        client.event_hooks = hooks
    return client


def make_client(*, transport: httpx.BaseTransport | None = None, timeout: float | None = None) -> httpx.Client:
    """The client every keyward request goes through (see the module docstring)."""
    import httpx

    read = timeout if timeout is not None else READ_TIMEOUT_S
    client = httpx.Client(
        timeout=httpx.Timeout(read, connect=min(CONNECT_TIMEOUT_S, read)),
        verify=True,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        transport=transport,
        # None = this client's own (direct) transport: overrides an http:// or all://
        # proxy from the environment for plain http, which only ever goes to loopback.
        mounts={"http://": None},
    )
    return harden(client)


# --- what one exchange taught us ---------------------------------------------------


@dataclass
class Exchange:
    """Bookkeeping for one HTTP response: no header values, no body."""

    host: str
    status: int
    latency_ms: float
    skew_s: float | None  # server clock minus ours; None when the venue sent no Date
    waited_s: float = 0.0  # time spent waiting out 429s before this answer
    attempts: int = 1


def server_date(response: httpx.Response) -> float | None:
    value = response.headers.get("Date")
    if not value:
        return None
    return parse_http_date(value)


def parse_http_date(value: str) -> float | None:
    import email.utils  # costs more to import than the rest of this module

    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def measure_skew(response: httpx.Response, local_at_response: float, latency_s: float) -> float | None:
    """Server clock minus local clock, from the `Date` header.

    The server stamped Date somewhere during the round trip, truncated to the second:
    compare it (plus half a second) with our clock at the middle of the round trip.
    """
    date = server_date(response)
    if date is None:
        return None
    return round(date + 0.5 - (local_at_response - latency_s / 2), 1)


def skew_matters(skew_s: float | None, lifetime_s: float) -> bool:
    """Worth a warning: more than a third of the token's lifetime, and above the noise."""
    return skew_s is not None and abs(skew_s) >= max(SKEW_RESOLUTION_S, lifetime_s / 3)


def describe_skew(skew_s: float) -> str:
    direction = "ahead of" if skew_s > 0 else "behind"
    return f"clock skew {skew_s:+.1f} s (the venue's clock is {abs(skew_s):.1f} s {direction} this machine's)"


def retry_delay(response: httpx.Response, local_now: float | None = None) -> float | None:
    """Seconds until a 429 clears: Retry-After (seconds or HTTP date), else X-RateLimit-Reset.

    Absolute times are server times, so they are compared with the response's own Date
    (falling back to our clock), which keeps clock skew out of the wait.
    """
    now = server_date(response)
    if now is None:
        now = time.time() if local_now is None else local_now
    value = response.headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            when = parse_http_date(value)
            if when is not None:
                return max(0.0, when - now)
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    return None


def header_rate_limit(response: httpx.Response, now: float) -> RateLimit | None:
    """The X-RateLimit-* triple (TradeReady documents it; others may send it too)."""
    h = response.headers
    if "X-RateLimit-Limit" not in h and "X-RateLimit-Remaining" not in h:
        return None

    def number(name: str) -> float | None:
        try:
            return float(h[name]) if name in h else None
        except ValueError:
            return None

    limit, remaining, reset = number("X-RateLimit-Limit"), number("X-RateLimit-Remaining"), number("X-RateLimit-Reset")
    return RateLimit(
        limit=None if limit is None else int(limit),
        remaining=None if remaining is None else int(remaining),
        reset_at=reset,
        observed_at=now,
    )


def json_body(response: httpx.Response, venue: str) -> Any:
    """The parsed body, or a VenueError that quotes nothing of it."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise VenueError(
            f"{venue} answered HTTP {response.status_code} with a body that is not valid JSON",
            hint="retry; if it persists the venue or a proxy in between is misbehaving",
            status=response.status_code,
        ) from None


# --- sending -----------------------------------------------------------------------


@dataclass
class Sender:
    """Sends one logical call, waiting out 429s for idempotent ones.

    `clock` is the clock tokens are minted with (injectable in tests); latency always uses
    the monotonic clock.  `on_wait(seconds, host)` is told before every wait.
    """

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    on_wait: OnWait | None = None
    max_wait_s: float = MAX_WAIT_S
    max_attempts: int = MAX_ATTEMPTS
    last: Exchange | None = field(default=None, init=False)

    def send(
        self,
        client: httpx.Client,
        method: str,
        url: str,
        *,
        headers: Callable[[], Headers] | Headers | None = None,
        json: Any = None,
        idempotent: bool,
        venue: str = "the venue",
        label: str = "LABEL",
    ) -> httpx.Response:
        """One logical call.  A NetworkError's `code` is NOT_SENT when the request
        provably never left this machine (no connection was made), else SENT_UNANSWERED:
        a venue that counts failed logins may have counted that one."""
        import httpx

        ensure_transport_allowed(url)  # before any header is built, let alone sent
        host = urlsplit(url).hostname or "?"
        waited, attempt = 0.0, 0
        while True:
            attempt += 1
            built = headers() if callable(headers) else (headers or {})
            started = time.perf_counter()
            try:
                response = client.request(method, url, headers=dict(built), json=json, follow_redirects=False)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
                raise NetworkError(
                    f"cannot connect to {venue} ({host})",
                    hint=f"check your connection and the account's base URL (`keyward show {label}`)",
                    code=NOT_SENT,
                ) from None
            except httpx.TimeoutException:
                raise NetworkError(
                    f"{venue} ({host}) did not answer in time",
                    hint=f"check your connection and retry; `keyward doctor {label}` looks further",
                    code=SENT_UNANSWERED,
                ) from None
            except httpx.TransportError as exc:
                raise NetworkError(
                    f"the connection to {venue} ({host}) failed ({type(exc).__name__})",
                    hint="check your connection, proxy and TLS setup, then retry",
                    code=SENT_UNANSWERED,
                ) from None
            latency = time.perf_counter() - started
            self.last = Exchange(
                host=host,
                status=response.status_code,
                latency_ms=round(latency * 1000, 1),
                skew_s=measure_skew(response, self.clock(), latency),
                waited_s=round(waited, 2),
                attempts=attempt,
            )
            if response.status_code != 429 or not idempotent or attempt >= self.max_attempts:
                return response
            delay = retry_delay(response, self.clock())
            delay = DEFAULT_429_WAIT_S if delay is None else delay
            if waited + delay > self.max_wait_s:
                return response  # the caller raises RateLimited with the venue's retry_after
            if self.on_wait is not None:
                self.on_wait(delay, host)
            self.sleep(delay)
            waited += delay


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
        wait = retry_after if retry_after is not None else retry_delay(response)
        when = f"retry in {wait:.0f} s" if wait is not None else "retry later"
        return RateLimited(
            f"{title} rate-limited {label!r} ({what})",
            hint=hint or f"{when}, or spread your calls out",
            retry_after=wait,
            status=status,
            code=code,
        )
    if 300 <= status < 400:
        target = urlsplit(response.headers.get("Location", "")).hostname
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
