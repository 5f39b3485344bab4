"""A real local HTTP server that imitates the auth endpoints of the supported venues.

It exists so the client side of keyward (minting, login, health checks) can be tested and
demonstrated against real HTTP without touching any real venue.  The server owns what all
venues share: the listening socket (127.0.0.1 only), routing by path prefix, the injectable
clock, fault switches, a per-key sliding-window rate limiter and the ``Date`` header.
Everything venue-specific lives in one handler module per venue (see
``default_handler_types``).

Nothing is written to disk and no request detail beyond method, path and status is ever
logged: requests carry secrets in headers, bodies and sometimes query strings.
"""

from __future__ import annotations

import argparse
import dataclasses
import email.utils
import json
import math
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TextIO
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"
CONTROL_PREFIX = "/_sandbox/"
MAX_BODY_BYTES = 1 << 20


# --- configuration -------------------------------------------------------------------


_ACCESS_LOG_LOCK = threading.Lock()  # one access-log line at a time, from any handler thread

# Lower bounds of the numeric settings (0 unless named; clock_offset_s has none).
_MINIMUM = {"rate_window_s": 0.001, "kiiex_lockout_after": 1, "kiiex_session_idle_s": 1, "tradeready_jwt_lifetime_s": 1}
# String settings that take one of a few values.
_CHOICES = {"tradeready_wrong_secret_code": ("INVALID_API_KEY", "INVALID_TOKEN")}


@dataclass
class SandboxConfig:
    """Every knob of the sandbox.  Fields may be changed while the server runs."""

    clock: Callable[[], float] = time.time
    clock_offset_s: float = 0.0
    latency_ms: int = 0
    fail_500: bool = False
    fail_503: bool = False
    malformed_json: bool = False
    rate_limit: int = 600
    rate_window_s: float = 60.0
    tradeready_jwt_lifetime_s: int = 3600
    kiiex_session_idle_s: int = 3600
    kiiex_lockout_after: int = 5
    kiiex_requires_2fa: bool = False
    kiiex_token_key: str = "SessionToken"
    kiiex_camel_case: bool = False
    powertrade_max_window_s: int = 30
    hyper_quota: int = 1000
    # Fault switches: rules no published source states, off by default (docs/sandbox.md).
    # Rate limits and X-RateLimit-* on PowerTrade, Hyper and Kiiex as on TradeReady: no
    # source states them for those venues; the tests' 429 drills and the demo's rate bars
    # turn this on.
    rate_limit_every_venue: bool = False
    hyper_max_signature_ahead_s: int = 0  # refuse a Hyper signature whose exp lies further ahead; 0 = off
    powertrade_nonce_high_water: bool = False  # refuse a nonce not above the last accepted for the key (reuse too)
    # Where sources conflict: the value the sandbox follows by default, the other selectable.
    tradeready_wrong_secret_code: str = "INVALID_API_KEY"  # the backend; "INVALID_TOKEN" is the seed page's
    tradeready_auth_limit_per_min: int = 0  # /auth/login and /auth/register per client IP; 0 = exempt

    def public_fields(self) -> dict[str, Any]:
        """The JSON-settable fields (everything but the clock function) and their values."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "clock"}

    def apply(self, changes: dict[str, Any]) -> None:
        """Validate every change first, then apply them all: a bad request changes nothing."""
        current = self.public_fields()
        for name, value in changes.items():
            if name not in current:
                raise ValueError(f"unknown config field: {name}")
            expected = type(current[name])
            if isinstance(value, bool) != (expected is bool):
                raise ValueError(f"{name} must be {expected.__name__}")
            if expected is float and not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            if expected in (int, str) and not isinstance(value, expected):
                raise ValueError(f"{name} must be {expected.__name__}")
            # json.loads takes NaN and Infinity: a NaN clock broke every later response.
            if expected in (int, float) and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number")
            if expected in (int, float) and name != "clock_offset_s" and value < _MINIMUM.get(name, 0):
                raise ValueError(f"{name} must be at least {_MINIMUM.get(name, 0)}")
            if expected is str and not value:
                raise ValueError(f"{name} must not be empty")
            if name in _CHOICES and value not in _CHOICES[name]:
                raise ValueError(f"{name} must be one of {', '.join(_CHOICES[name])}")
        for name, value in changes.items():
            setattr(self, name, float(value) if type(current[name]) is float else value)


# --- requests, responses, routes -----------------------------------------------------


class BadRequestBody(ValueError):
    """The body is not the JSON object an endpoint expects."""


@dataclass
class Request:
    method: str
    path: str  # below the venue root, e.g. "/v1/position/funds"; no query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client_ip: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json_object(self, *, empty_ok: bool = True) -> dict[str, Any]:
        if not self.body.strip():
            if empty_ok:
                return {}
            raise BadRequestBody("a JSON object body is required")
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequestBody("body is not valid JSON") from exc
        if not isinstance(value, dict):
            raise BadRequestBody("body must be a JSON object")
        return value


@dataclass
class Response:
    status: int
    body: Any  # anything json.dumps accepts
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    action: Callable[..., Response]

    @classmethod
    def of(cls, method: str, template: str, action: Callable[..., Response]) -> Route:
        """``template`` may hold ``{name}`` segments, passed to ``action`` as keywords."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
        return cls(method, re.compile(f"^{regex}$"), action)


# --- rate limiting -------------------------------------------------------------------


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # when the oldest counted request leaves the window
    retry_after_s: int
    window_s: float

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }


class SlidingWindowLimiter:
    """Counts accepted requests per key over the last ``window`` seconds of sandbox time.

    Refused requests are not counted, so a client that waits ``Retry-After`` gets through.
    """

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str, now: float, limit: int, window_s: float) -> RateDecision:
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - window_s:
                hits.popleft()
            allowed = len(hits) < limit
            if allowed:
                hits.append(now)
            reset_at = hits[0] + window_s if hits else now + window_s
            retry_after = 0 if allowed else max(1, math.ceil(reset_at - now))
            return RateDecision(allowed, limit, max(0, limit - len(hits)), reset_at, retry_after, window_s)


# --- venue handlers ------------------------------------------------------------------


class SandboxError(Exception):
    """An in-process call (``Sandbox.issue`` and friends) that the endpoint would refuse."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"sandbox refused with HTTP {status}: {body}")
        self.status = status
        self.body = body


class VenueHandler:
    """One venue: its root path, its routes, its error envelope and its one-time issuance.

    Subclasses are called with the sandbox lock held, so their in-memory state needs no
    locking of its own.
    """

    name: ClassVar[str]
    root: ClassVar[str]
    bad_body_status: ClassVar[int] = 400

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._routes = self.routes()

    # -- what a venue provides --
    def routes(self) -> list[Route]:
        raise NotImplementedError

    def error(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
        """The venue's error envelope.  ``code`` is a TradeReady-style symbolic code."""
        raise NotImplementedError

    def issue(self, params: dict[str, Any]) -> Response:
        """The venue's one-time credential issuance (its web UI, or its register call)."""
        raise NotImplementedError

    # -- shared helpers --
    @property
    def config(self) -> SandboxConfig:
        return self.sandbox.config

    def now(self) -> float:
        return self.sandbox.now()

    def metered(self, key: str, respond: Callable[[], Response]) -> Response:
        """Run ``respond`` if ``key`` is within its rate limit; either way add the headers."""
        cfg = self.config
        if self.name != "tradeready" and not cfg.rate_limit_every_venue:
            return respond()  # only TradeReady's backend publishes its rate limit
        decision = self.sandbox.limiter.check(f"{self.name}:{key}", self.now(), cfg.rate_limit, cfg.rate_window_s)
        if decision.allowed:
            response = respond()
        else:
            response = self.error(
                429,
                "RATE_LIMIT_EXCEEDED",
                "Rate limit exceeded; retry after the window frees up.",
                {"limit": decision.limit, "window_seconds": decision.window_s, "retry_after_seconds": decision.retry_after_s},
            )
            response.headers["Retry-After"] = str(decision.retry_after_s)
        response.headers.update(decision.headers())
        return response

    def dispatch(self, request: Request) -> Response:
        path_matched = False
        for route in self._routes:
            match = route.pattern.match(request.path)
            if not match:
                continue
            path_matched = True
            if route.method == request.method:
                try:
                    return route.action(request, **match.groupdict())
                except BadRequestBody as exc:
                    return self.error(self.bad_body_status, "VALIDATION_ERROR", str(exc))
        if path_matched:
            return self.error(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here.")
        return self.error(404, "NOT_FOUND", "No such endpoint.")


def default_handler_types() -> list[type[VenueHandler]]:
    """The venues the sandbox serves.  A new venue is one more module and one more line."""
    # Imported here because the handler modules import this one.
    from vault.sandbox.hypersolutions import HyperSolutionsHandler
    from vault.sandbox.kiiex import KiiexHandler
    from vault.sandbox.powertrade import PowerTradeHandler
    from vault.sandbox.tradeready import TradeReadyHandler

    return [PowerTradeHandler, TradeReadyHandler, HyperSolutionsHandler, KiiexHandler]


# --- the HTTP layer ------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops the handshakes of a burst (a bot's
    # asyncio.gather of 100 requests) and those clients then wait out their timeouts.
    request_queue_size = 128
    sandbox: Sandbox

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-response (a test's timeout, a killed bot) is normal
        # for a server; socketserver would print a traceback to the demo's terminal.
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, like the real venues behind their proxies
    timeout = 15  # an idle keep-alive connection must not pin a thread forever
    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's
    # delayed ACK would add ~40 ms to every response.
    disable_nagle_algorithm = True
    server_version = "keyward-sandbox"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send(Response(413, {"error": "body too large"}), malformed=False)
            self.close_connection = True
            return
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            client_ip=self.client_address[0],
        )
        sandbox = self.server.sandbox
        response, faulty = sandbox.handle(request)
        cfg = sandbox.config
        if faulty and cfg.latency_ms > 0:
            time.sleep(cfg.latency_ms / 1000)
        self._send(response, malformed=faulty and cfg.malformed_json)

    def _send(self, response: Response, *, malformed: bool) -> None:
        payload = response.encoded()
        if malformed:
            # A body cut off mid-way, with a Content-Length that matches: the HTTP exchange
            # succeeds and only the JSON parse fails, as behind a misbehaving proxy.
            payload = payload[: max(1, len(payload) // 2)]
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header is how clients detect clock skew, so it follows the sandbox clock.
        return email.utils.formatdate(self.server.sandbox.now() if timestamp is None else timestamp, usegmt=True)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log = self.server.sandbox.access_log
        if log is not None:
            path = urlsplit(self.path).path  # never the query: it may carry a token
            # One write of the whole line, under a lock: print() writes the text and its
            # newline separately, so two handler threads ran their lines together.
            with _ACCESS_LOG_LOCK:
                log.write(f"{self.command} {path} {code}\n")
                log.flush()

    def log_message(self, format: str, *args: Any) -> None:
        # The stdlib default writes the full request line (query strings included) to stderr.
        pass


# --- the sandbox ---------------------------------------------------------------------


class Sandbox:
    """The local fake-venue server.  ``with Sandbox() as sb:`` starts and stops it."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        port: int = 0,
        access_log: TextIO | None = None,
        handler_types: list[type[VenueHandler]] | None = None,
    ) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.access_log = access_log
        self.limiter = SlidingWindowLimiter()
        self._port = port
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._handlers: dict[str, VenueHandler] = {}
        for handler_type in handler_types or default_handler_types():
            self._handlers[handler_type.name] = handler_type(self)

    # -- lifecycle --
    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        server = _Server((LOOPBACK, self._port), _RequestHandler)
        server.sandbox = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="keyward-sandbox", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses --
    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("sandbox not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    @property
    def venues(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    def base_url(self, venue: str) -> str:
        return self.url + self.handler(venue).root

    def handler(self, venue: str) -> VenueHandler:
        try:
            return self._handlers[venue]
        except KeyError:
            raise KeyError(f"unknown sandbox venue {venue!r}; known: {', '.join(self._handlers)}") from None

    # -- clock and config --
    def now(self) -> float:
        cfg = self.config
        return cfg.clock() + cfg.clock_offset_s

    def configure(self, **changes: Any) -> None:
        with self._lock:
            self.config.apply(changes)

    # -- in-process equivalents of the control endpoints --
    def issue(self, venue: str, **params: Any) -> dict[str, Any]:
        """What the venue's one-time issuance endpoint would return, without HTTP."""
        handler = self.handler(venue)
        with self._lock:
            response = handler.issue(params)
        if response.status >= 300:
            raise SandboxError(response.status, response.body)
        return response.body

    def unlock_kiiex(self, user_id: str | int) -> None:
        """The Kiiex administrator's unlock of a user locked out by failed logins."""
        with self._lock:
            self.handler("kiiex").unlock(str(user_id))  # type: ignore[attr-defined]

    def kiiex_attempts(self, user_id: str | int) -> int:
        """How many AuthenticateUser calls named this user: lets tests prove "never retried"."""
        with self._lock:
            return self.handler("kiiex").attempts(str(user_id))  # type: ignore[attr-defined]

    def disable_hyper_key(self, api_key: str) -> None:
        with self._lock:
            self.handler("hypersolutions").disable(api_key)  # type: ignore[attr-defined]

    # -- request handling --
    def handle(self, request: Request) -> tuple[Response, bool]:
        """Route one request.  Returns the response and whether faults apply to it.

        Faults apply to venue endpoints only: the control endpoints (issuance, unlock,
        config) stand for the venue's web UI and the operator's console, and the demo must be
        able to switch a fault off again.
        """
        response = self._handle_global(request)
        if response is not None:
            return response, False
        for handler in self._handlers.values():
            if request.path == handler.root or request.path.startswith(handler.root + "/"):
                venue_request = dataclasses.replace(request, path=request.path[len(handler.root) :] or "/")
                control = venue_request.path.startswith(CONTROL_PREFIX)
                if not control and self.config.fail_500:
                    return handler.error(500, "INTERNAL_ERROR", "Internal server error (sandbox fault)."), True
                if not control and self.config.fail_503:
                    return handler.error(503, "SERVICE_UNAVAILABLE", "Service unavailable (sandbox fault)."), True
                try:
                    with self._lock:
                        return handler.dispatch(venue_request), not control
                except Exception as exc:  # noqa: BLE001 - a sandbox bug must still answer, not drop the connection
                    # Only the exception type: its message might quote a credential.
                    return handler.error(500, "INTERNAL_ERROR", f"sandbox error: {type(exc).__name__}"), False
        return Response(404, {"error": "not_found", "message": "No sandbox venue serves this path."}), False

    def _handle_global(self, request: Request) -> Response | None:
        if request.path == "/":
            return Response(200, {"venues": {name: h.root for name, h in self._handlers.items()}})
        if request.path != "/_sandbox/config":
            return None
        if request.method == "GET":
            return Response(200, self.config.public_fields())
        if request.method != "POST":
            return Response(405, {"error": "method_not_allowed"})
        try:
            self.configure(**request.json_object(empty_ok=False))
        except ValueError as exc:  # BadRequestBody is a ValueError too
            return Response(400, {"error": "bad_config", "message": str(exc)})
        return Response(200, self.config.public_fields())


# --- foreground entry point ----------------------------------------------------------


def serve(port: int = 0, *, config: SandboxConfig | None = None, out: TextIO = sys.stdout) -> None:
    """Run the sandbox in the foreground until Ctrl-C, printing where each venue lives."""
    sandbox = Sandbox(config, port=port, access_log=out)
    sandbox.start()
    try:
        for line in describe(sandbox):
            print(line, file=out, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("sandbox stopped", file=out, flush=True)
    finally:
        sandbox.stop()


def describe(sandbox: Sandbox) -> Iterator[str]:
    yield f"keyward sandbox listening on {sandbox.url} (loopback only; fake venues, fake money)"
    for venue in sandbox.venues:
        yield f"  {venue:<15} {sandbox.base_url(venue)}"
    yield f"  config          {sandbox.url}/_sandbox/config  (GET to read, POST JSON to change)"
    yield "Credentials, shown once as each venue's web page would (docs/sandbox.md):"
    for venue in sandbox.venues:
        base = sandbox.base_url(venue)
        if venue == "tradeready":  # its registration API issues them
            yield f"  keyward register tradeready LABEL --display-name NAME --base-url {base}"
        else:
            yield (f"  curl -s -X POST {base}/_sandbox/api-keys | "
                   f"keyward capture {venue} LABEL --base-url {base} --file -")
    yield "Press Ctrl-C to stop."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keyward sandbox", description="Run the local fake-venue server.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    args = parser.parse_args(argv)
    serve(args.port)
    return 0
