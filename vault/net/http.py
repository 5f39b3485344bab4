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
  anything stores or prints it (vault.net.answers, re-exported here).

The module imports httpx lazily; the venue modules read answers through
vault.net.answers and load this module only when they send something.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import urlsplit

from vault.net.answers import (  # noqa: F401 - re-exported: reading an answer lives there
    MAX_PLAUSIBLE_SKEW_S,
    MAX_RESET_AHEAD_S,
    MAX_RETRY_AFTER_S,
    MIN_SERVER_DATE,
    RELATIVE_RESET_BELOW,
    SKEW_RESOLUTION_S,
    checked_token,
    delay_in_range,
    describe_skew,
    expiry_in_range,
    generic_error,
    header_number,
    header_rate_limit,
    json_body,
    measure_skew,
    parse_http_date,
    rate_limit_notices,
    rate_limit_values,
    reset_time,
    response_notices,
    retry_delay,
    safe_code,
    server_date,
    skew_matters,
)
from vault.core.inputs import depth as json_depth  # (the one measure of JSON nesting, as for pasted input)
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
# Bounds on one answer.  Real auth and health answers are a few KiB; these are far
# above that and far below what would hurt (vault settings of the same names override).
MAX_RESPONSE_BYTES = DEFAULT_MAX_RESPONSE_BYTES  # on the wire
MAX_DECODED_BYTES = DEFAULT_MAX_DECODED_BYTES  # after Content-Encoding
REQUEST_DEADLINE_S = DEFAULT_REQUEST_DEADLINE_S  # connect + every byte + every retry of one call
MAX_JSON_DEPTH = 64  # nesting of a venue's JSON answer
ACCEPT_ENCODING = "gzip, deflate"  # what the bounded decoder below can undo
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
