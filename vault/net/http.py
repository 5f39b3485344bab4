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
* errors carry host names and status codes, never a URL query, a header or a body;
* every answer is bounded: `max_response_bytes` on the wire, `max_decoded_bytes` once
  decompressed (gzip bombs), and one `request_deadline_s` per call that covers
  connecting, every byte of the answer (a venue dripping one byte a second) and every
  retry;
* what a venue says about rate limits, retry delays and its clock is parsed into a
  validated range (milliseconds recognised, inf/nan/absurd values dropped) before
  anything stores or prints it.

The module imports httpx lazily so that the provider modules can use its helpers and
still cost nothing to import.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import urlsplit

from vault.net.endpoints import is_loopback_host, split_url
from vault.core.errors import (
    DeadlineExceeded,
    InsecureTransport,
    NetworkError,
    ResponseTooLarge,
    VenueError,
)
from vault.core.model import (
    DEFAULT_MAX_DECODED_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_REQUEST_DEADLINE_S,
    MAX_TIMESTAMP,
    RateLimit,
    count,
)

if TYPE_CHECKING:  # pragma: no cover
    import ssl

    import httpx

USER_AGENT = "keyward/0.1.0"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 15.0
MAX_WAIT_S = 30.0  # total time one call may spend waiting out 429s
MAX_ATTEMPTS = 3  # the first try and two retries after a 429
DEFAULT_429_WAIT_S = 1.0  # a 429 that says nothing about when to come back
# The Date header has one-second resolution: below this, "skew" is measurement noise.
SKEW_RESOLUTION_S = 2.0
# Bounds on one answer.  Real auth and health answers are a few KiB; these are far
# above that and far below what would hurt (vault settings of the same names override).
MAX_RESPONSE_BYTES = DEFAULT_MAX_RESPONSE_BYTES  # on the wire
MAX_DECODED_BYTES = DEFAULT_MAX_DECODED_BYTES  # after Content-Encoding
REQUEST_DEADLINE_S = DEFAULT_REQUEST_DEADLINE_S  # connect + every byte + every retry of one call
MAX_JSON_DEPTH = 64  # nesting of a venue's JSON answer
ACCEPT_ENCODING = "gzip, deflate"  # what the bounded decoder below can undo
# Ranges for what a venue says about time.
MIN_SERVER_DATE = 946684800.0  # 2000-01-01: a Date before it is a broken clock, not skew
MAX_RETRY_AFTER_S = 86400.0  # "come back in 3,000 years" is no answer
MAX_PLAUSIBLE_SKEW_S = 30 * 86400.0  # past this the Date header is broken, not the clock
MAX_RESET_AHEAD_S = 400 * 86400.0
RELATIVE_RESET_BELOW = 1e8  # a reset this small is seconds from now, not a date in 1973
# NetworkError codes: whether the venue can have seen the request.
NOT_SENT = "NotSent"
SENT_UNANSWERED = "SentUnanswered"

Headers = Mapping[str, str]
OnWait = Callable[[float, str], None]


# --- transport rules ---------------------------------------------------------------


def ensure_transport_allowed(url: Any) -> None:
    """Raise InsecureTransport unless `url` (str or httpx.URL) is https, or http to loopback."""
    parts = split_url(str(url))
    if parts is None:
        raise InsecureTransport("refusing a request to something that is not a URL", hint="check the base URL")
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


_tls: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The one certificate-verifying TLS context of this process, made as httpx makes its
    default (CA bundle, SSL_CERT_FILE/SSL_CERT_DIR honoured).  Building one loads the
    whole CA bundle, about 30 ms of CPU, which every client paid: every check of the
    monitor, every token the agent or the dashboard minted.  A context is safe to share
    between connections and threads, and nothing changes it once made."""
    global _tls
    if _tls is None:
        with _tls_lock:
            if _tls is None:
                import httpx

                _tls = httpx.create_ssl_context(verify=True)
    return _tls


def make_client(*, transport: httpx.BaseTransport | None = None, timeout: float | None = None) -> httpx.Client:
    """The client every keyward request goes through (see the module docstring)."""
    import httpx

    read = timeout if timeout is not None else READ_TIMEOUT_S
    client = httpx.Client(
        timeout=httpx.Timeout(read, connect=min(CONNECT_TIMEOUT_S, read)),
        verify=tls_context() if transport is None else True,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING},
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


def json_depth(value: Any) -> int:
    """How deeply `value` (parsed JSON) nests, without recursing."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


class _Watchdog:
    """Ends one attempt at its deadline, whatever it is blocked on.

    httpx's timeouts bound each read, not the whole answer: a venue sending one byte
    every ten seconds never trips a 15 s read timeout.  The trace extension hands over
    each socket as it connects (the request says `Connection: close`, so every attempt
    connects afresh); at the deadline a timer shuts it down, which ends a blocked read
    at once.  Connecting itself is bounded by the connect timeout, cut to what is left."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._socks: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if not event.endswith(".complete"):
            return
        stream = info.get("return_value")
        get = getattr(stream, "get_extra_info", None)
        sock = get("socket") if callable(get) else None
        if sock is None:
            return
        with self._lock:
            self._socks.append(sock)
            if self.fired:
                self._shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._socks:
                self._shut(sock)

    @staticmethod
    def _shut(sock: Any) -> None:
        import socket

        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


class _Inflater:
    """One Content-Encoding undone, never producing more than `limit` bytes in all."""

    def __init__(self, encoding: str, limit: int) -> None:
        import zlib

        self.encoding, self.limit, self.total = encoding, limit, 0
        self._zlib = zlib
        wbits = zlib.MAX_WBITS | 16 if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._d = zlib.decompressobj(wbits)
        self._first = encoding == "deflate"  # "deflate" is zlib-wrapped, or raw from some servers

    def feed(self, data: bytes) -> bytes:
        zlib = self._zlib
        out = []
        while data and not self._d.eof:
            try:
                piece = self._d.decompress(data, self.limit - self.total + 1)
            except zlib.error:
                if not self._first:
                    raise
                self._first = False
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._first = False
            self.total += len(piece)
            if self.total > self.limit:
                raise OverflowError
            out.append(piece)
            data = self._d.unconsumed_tail
        return b"".join(out)

    def flush(self) -> bytes:
        rest = self._d.flush()
        self.total += len(rest)
        if self.total > self.limit:
            raise OverflowError
        return rest


# --- sending -----------------------------------------------------------------------


@dataclass
class Sender:
    """Sends one logical call, waiting out 429s for idempotent ones.

    `clock` is the clock tokens are minted with (injectable in tests); latency and the
    deadline always use the monotonic clock.  `on_wait(seconds, host)` is told before
    every wait.  The answer is read whole, within `max_response_bytes` on the wire and
    `max_decoded_bytes` decompressed, and the whole call (retries and waits included)
    within `deadline_s`; the Response returned holds the decoded body.
    """

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    on_wait: OnWait | None = None
    max_wait_s: float = MAX_WAIT_S
    max_attempts: int = MAX_ATTEMPTS
    max_response_bytes: int = MAX_RESPONSE_BYTES
    max_decoded_bytes: int = MAX_DECODED_BYTES
    deadline_s: float = REQUEST_DEADLINE_S
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
        ensure_transport_allowed(url)  # before any header is built, let alone sent
        host = urlsplit(url).hostname or "?"
        deadline = time.monotonic() + self.deadline_s
        waited, attempt = 0.0, 0
        while True:
            attempt += 1
            built = headers() if callable(headers) else (headers or {})
            started = time.perf_counter()
            response = self._attempt(client, method, url, dict(built), json, deadline, venue, label, host)
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
            if waited + delay > self.max_wait_s or time.monotonic() + delay >= deadline:
                return response  # the caller raises RateLimited with the venue's retry_after
            if self.on_wait is not None:
                self.on_wait(delay, host)
            self.sleep(delay)
            waited += delay

    def _deadline_error(self, venue: str, label: str, host: str, code: str = SENT_UNANSWERED) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{venue} ({host}) did not finish answering {label!r} within the {self.deadline_s:g} s deadline",
            hint="retry later; a venue (or proxy) that drips or stalls its answer is misbehaving "
            "(request_deadline_s sets the bound)",
            code=code,
        )

    def _attempt(
        self, client: httpx.Client, method: str, url: str, headers: dict[str, str], body: Any, deadline: float,
        venue: str, label: str, host: str,
    ) -> httpx.Response:
        import httpx

        left = deadline - time.monotonic()
        if left <= 0:
            raise self._deadline_error(venue, label, host)
        base = client.timeout

        def cut(value: float | None) -> float:
            return left if value is None else min(value, left)

        timeout = httpx.Timeout(connect=cut(base.connect), read=cut(base.read), write=cut(base.write), pool=cut(base.pool))
        # A fresh connection per attempt, so the watchdog holds its socket from the start.
        headers["Connection"] = "close"
        watchdog = _Watchdog(left)
        request = client.build_request(method, url, headers=headers, json=body, timeout=timeout,
                                       extensions={"trace": watchdog.trace})
        try:
            with watchdog:
                response = client.send(request, stream=True, follow_redirects=False)
                try:
                    content = self._read(response, deadline, watchdog, venue, label, host)
                finally:
                    response.close()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            if watchdog.fired:  # still connecting: nothing was sent (a lock-out counts only what was)
                raise self._deadline_error(venue, label, host, NOT_SENT) from None
            raise NetworkError(
                f"cannot connect to {venue} ({host})",
                hint=f"check your connection and the account's base URL (`keyward show {label}`)",
                code=NOT_SENT,
            ) from None
        except httpx.TimeoutException:
            if watchdog.fired or time.monotonic() >= deadline - 0.05:
                raise self._deadline_error(venue, label, host) from None
            raise NetworkError(
                f"{venue} ({host}) did not answer in time",
                hint=f"check your connection and retry; `keyward doctor {label}` looks further",
                code=SENT_UNANSWERED,
            ) from None
        except httpx.TransportError as exc:
            if watchdog.fired:
                raise self._deadline_error(venue, label, host) from None
            raise NetworkError(
                f"the connection to {venue} ({host}) failed ({type(exc).__name__})",
                hint="check your connection, proxy and TLS setup, then retry",
                code=SENT_UNANSWERED,
            ) from None
        if watchdog.fired:
            raise self._deadline_error(venue, label, host)
        clean = [(k, v) for k, v in response.headers.multi_items()
                 if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return httpx.Response(response.status_code, headers=clean, content=content, request=request)

    def _read(
        self, response: httpx.Response, deadline: float, watchdog: _Watchdog, venue: str, label: str, host: str
    ) -> bytes:
        """The whole body, decoded, within both caps and the deadline."""

        def too_large(limit: int, what: str, setting: str) -> ResponseTooLarge:
            return ResponseTooLarge(
                f"{venue} ({host}) answered {label!r} with more than {_mib(limit)} {what}; nothing of it was kept",
                hint=f"retry later; a real answer is a few KiB, so the venue or a proxy is misbehaving "
                f"({setting} sets the bound)",
                status=response.status_code,
            )

        if response.is_stream_consumed:  # an answer built in memory (a MockTransport's): whole already
            if len(response.content) > self.max_decoded_bytes:
                raise too_large(self.max_decoded_bytes, "once decompressed", "max_decoded_bytes")
            self._check_nesting(response.content, response.status_code, venue, label, host)
            return response.content
        encodings = [e.strip().lower() for e in response.headers.get("Content-Encoding", "").split(",")]
        encodings = [e for e in encodings if e and e != "identity"]
        unknown = [e for e in encodings if e not in ("gzip", "x-gzip", "deflate")]
        if unknown or len(encodings) > 2:
            raise VenueError(
                f"{venue} ({host}) answered {label!r} in an encoding keyward did not ask for",
                hint="retry; if it persists a proxy in between is rewriting answers",
                status=response.status_code,
            )
        declared = header_number(response.headers.get("Content-Length"))
        if declared is not None and declared > self.max_response_bytes:
            raise too_large(self.max_response_bytes, "on the wire", "max_response_bytes")
        inflaters = [_Inflater(e, self.max_decoded_bytes) for e in reversed(encodings)]
        parts: list[bytes] = []
        wire = decoded = 0
        try:
            for chunk in response.iter_raw():
                if watchdog.fired or time.monotonic() > deadline:
                    raise self._deadline_error(venue, label, host)
                wire += len(chunk)
                if wire > self.max_response_bytes:
                    raise too_large(self.max_response_bytes, "on the wire", "max_response_bytes")
                for inflater in inflaters:
                    chunk = inflater.feed(chunk)
                decoded += len(chunk)
                if decoded > self.max_decoded_bytes:
                    raise OverflowError
                parts.append(chunk)
            for n, inflater in enumerate(inflaters):
                tail = inflater.flush()
                for later in inflaters[n + 1:]:
                    tail = later.feed(tail)
                decoded += len(tail)
                if decoded > self.max_decoded_bytes:
                    raise OverflowError
                parts.append(tail)
        except OverflowError:
            raise too_large(self.max_decoded_bytes, "once decompressed", "max_decoded_bytes") from None
        except Exception as exc:
            import zlib

            if isinstance(exc, zlib.error):
                raise VenueError(
                    f"{venue} ({host}) answered {label!r} with a compressed body that does not decompress",
                    hint="retry; if it persists the venue or a proxy in between is misbehaving",
                    status=response.status_code,
                ) from None
            raise
        content = b"".join(parts)
        del parts
        self._check_nesting(content, response.status_code, venue, label, host)
        return content

    @staticmethod
    def _check_nesting(content: bytes, status: int, venue: str, label: str, host: str) -> None:
        """JSON nested past MAX_JSON_DEPTH is refused here, so no parser after this one
        (the venue modules read refusals' codes) can hit Python's recursion limit."""
        head = content[:64].lstrip()
        if not head[:1] in (b"{", b"["):
            return
        try:
            depth = json_depth(json.loads(content))
        except RecursionError:
            depth = MAX_JSON_DEPTH + 1
        except (ValueError, UnicodeDecodeError):
            return  # not JSON after all: whoever expects JSON says so
        if depth > MAX_JSON_DEPTH:
            raise VenueError(
                f"{venue} ({host}) answered {label!r} with JSON nested deeper than {MAX_JSON_DEPTH} levels",
                hint="retry later; a real answer is a flat object, so the venue or a proxy is misbehaving",
                status=status,
            )


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
