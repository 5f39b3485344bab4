"""A venue that misbehaves on purpose: one loopback server, raw sockets, one mode at a time.

It answers the paths of all four venues (logins, health calls) with what a real venue
would send, then breaks that answer the way its current `mode` says: bodies too big to
hold, gzip bombs, bytes dripped one at a time, headers that never end, poisoned rate-limit
headers, dates in year 1, redirects, endless 1xx, resets mid-body, TLS garbage, ...

Raw sockets, not http.server: most of these answers are ones http.server cannot write.
Every connection runs in its own daemon thread; `stop()` closes the listener and every
open connection, so a test never leaves a thread dripping into a dead socket.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import zlib
from email.utils import formatdate
from typing import Callable

LOGIN_TRADEREADY = "/api/v1/auth/login"
LOGIN_KIIEX = "/AuthenticateUser"

# How long a "slow" mode keeps going: far past any deadline the tests give the client.
FOREVER_S = 600.0


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def normal_body(method: str, path: str) -> dict:
    """What a well-behaved venue answers on this path."""
    now = time.time()
    if path.endswith(LOGIN_TRADEREADY):
        return {"token": "eyJhbGciOiJIUzI1NiJ9.hostile.bearer", "expires_at": _iso(now + 3600), "token_type": "Bearer"}
    if path.endswith(LOGIN_KIIEX):
        return {"Authenticated": True, "SessionToken": "hostile-session-token", "UserId": 7}
    if path.endswith("/usage"):
        return {"plans": [{"requestsRemaining": 90, "requestsQuota": 100, "expiresAt": _iso(now + 86400)}]}
    return {"ok": True}


def gzip_bomb(decompressed_mib: int = 1536) -> bytes:
    """A gzip body of `decompressed_mib` MiB of zeros, about 1/1000 of that on the wire.

    Built from one compressed MiB repeated (a full flush resets the compressor, so every
    block is the same bytes): no need to compress 1.5 GB per test run.  The trailer is
    bogus: a client that gets that far has already lost."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * decompressed_mib + c.flush() + b"\x00" * 8


_BOMB: bytes | None = None


def _bomb() -> bytes:
    global _BOMB
    if _BOMB is None:
        _BOMB = gzip_bomb()
    return _BOMB


def response_head(status: int, headers: list[tuple[str, str]], reason: str = "X") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Conn:
    """One accepted connection, with the request already read."""

    def __init__(self, sock: socket.socket, method: str, path: str, stop: threading.Event) -> None:
        self.sock, self.method, self.path, self.stop = sock, method, path, stop

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def sleep(self, seconds: float) -> bool:
        """Wait; False once the server is stopping (the mode should give up)."""
        return not self.stop.wait(seconds)

    def json(self, status: int = 200, body: object = None, headers: list[tuple[str, str]] | None = None) -> None:
        data = json.dumps(normal_body(self.method, self.path) if body is None else body).encode()
        head = [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                ("Date", formatdate(usegmt=True)), ("Connection", "close")]
        self.send(response_head(status, head + list(headers or [])) + data)

    def raw(self, status: int, data: bytes, headers: list[tuple[str, str]]) -> None:
        self.send(response_head(status, headers) + data)

    def drip(self, data: bytes, every: float) -> None:
        for i in range(len(data)):
            self.send(data[i:i + 1])
            if not self.sleep(every):
                return

    def stream_zeros(self, total: int) -> None:
        block = b"0" * 65536
        sent = 0
        while sent < total and not self.stop.is_set():
            self.send(block)
            sent += len(block)


def _rate_headers(limit: str, remaining: str, reset: str) -> list[tuple[str, str]]:
    return [("X-RateLimit-Limit", limit), ("X-RateLimit-Remaining", remaining), ("X-RateLimit-Reset", reset)]


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# --- the misbehaviours ------------------------------------------------------------------
# Each takes the connection and writes (or withholds) an answer.  Names are what tests
# parametrize over; the docstring is what a venue (or a proxy in front of it) did.


def m_huge_body(c: Conn) -> None:
    """A 4 GB body, announced by Content-Length and streamed as fast as it goes."""
    c.raw(200, b"", [("Content-Type", "application/json"), ("Content-Length", str(4 << 30))])
    c.stream_zeros(4 << 30)


def m_huge_chunked(c: Conn) -> None:
    """An endless chunked body: no length to refuse up front."""
    c.raw(200, b"", [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
    chunk = b"10000\r\n" + b"0" * 65536 + b"\r\n"
    while not c.stop.is_set():
        c.send(chunk)


def m_gzip_bomb(c: Conn) -> None:
    """1.5 MB of gzip that inflates to 1.5 GiB."""
    bomb = _bomb()
    c.raw(200, bomb, [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                      ("Content-Length", str(len(bomb)))])


def m_unknown_encoding(c: Conn) -> None:
    """A Content-Encoding keyward never asked for."""
    c.raw(200, b"\x00\x01\x02", [("Content-Encoding", "x-hostile"), ("Content-Length", "3")])


def m_drip_body(c: Conn) -> None:
    """Headers at once, then the body one byte a second (each read is quick: only an
    overall deadline ends it)."""
    data = json.dumps(normal_body(c.method, c.path)).encode() + b" " * 100000
    c.raw(200, b"", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    c.drip(data, 0.5)


def m_drip_headers(c: Conn) -> None:
    """The status line and headers one byte at a time."""
    head = response_head(200, [("X-Padding-" + str(i), "y" * 50) for i in range(1000)])
    c.drip(head, 0.5)


def m_stall_after_headers(c: Conn) -> None:
    """Headers promise a body that never comes."""
    c.raw(200, b"", [("Content-Type", "application/json"), ("Content-Length", "100")])
    c.sleep(FOREVER_S)


def m_stall_before_answer(c: Conn) -> None:
    """Accepts the request and says nothing at all."""
    c.sleep(FOREVER_S)


def m_short_content_length(c: Conn) -> None:
    """Content-Length 1000, ten bytes, then the connection closes."""
    c.raw(200, b'{"ok": tru', [("Content-Type", "application/json"), ("Content-Length", "1000")])


def m_garbage_content_length(c: Conn) -> None:
    """A Content-Length that is not a number."""
    c.raw(200, b"{}", [("Content-Type", "application/json"), ("Content-Length", "lots")])


def m_invalid_json(c: Conn) -> None:
    """200 with a body that is not JSON (a proxy's error page)."""
    data = b"<html>\x1b[31mgateway says hi\x1b[0m</html>"
    c.raw(200, data, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])


def m_invalid_utf8(c: Conn) -> None:
    """200 with bytes that are not UTF-8."""
    data = b'{"token": "\xff\xfe\xfd", "SessionToken": "\xc3\x28"}'
    c.raw(200, data, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])


def m_wrong_shape(c: Conn) -> None:
    """Valid JSON of the wrong shape: a list where an object belongs, numbers for strings."""
    if c.path.endswith((LOGIN_TRADEREADY, LOGIN_KIIEX)):
        c.json(body={"token": 12345, "expires_at": ["x"], "Authenticated": "yes", "SessionToken": {"a": 1}})
    elif c.path.endswith("/usage"):
        c.json(body={"plans": [{"requestsRemaining": 1e308, "requestsQuota": "many", "expiresAt": 5}]})
    else:
        c.json(body=[1, 2, [3, {"4": None}]])


def m_deep_json(c: Conn) -> None:
    """JSON nested 100,000 deep: Python's parser recurses once per level."""
    data = _deep(100000)
    c.raw(200, data, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])


def m_deep_json_error(c: Conn) -> None:
    """The same deep JSON as a 401's error envelope (the venues read refusals' codes)."""
    data = b'{"error": ' + _deep(100000) + b"}"
    c.raw(401, data, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])


def m_huge_token(c: Conn) -> None:
    """A 10 MB token in the login answer (and a 10 MB body elsewhere)."""
    token = "a" * (10 << 20)
    c.json(body={"token": token, "SessionToken": token, "Authenticated": True, "expires_at": _iso(time.time() + 3600)})


def m_large_token(c: Conn) -> None:
    """A 600 KB token: under the body cap, far over any real token."""
    token = "b" * (600 << 10)
    c.json(body={"token": token, "SessionToken": token, "Authenticated": True, "expires_at": _iso(time.time() + 3600)})


def m_absurd_expiry(c: Conn) -> None:
    """A bearer that expires in year 9999, or in year 1."""
    c.json(body={"token": "eyJhbGciOiJIUzI1NiJ9.absurd.expiry", "expires_at": "9999-12-31T23:59:59Z",
                 "Authenticated": True, "SessionToken": "s",
                 "plans": [{"requestsRemaining": 5, "requestsQuota": 10, "expiresAt": "0001-01-01T00:00:00Z"}]})


def m_ratelimit_ms(c: Conn) -> None:
    """X-RateLimit-Reset in milliseconds, as several exchanges send it."""
    c.json(headers=_rate_headers("100", "99", "1796111000000"))


def m_ratelimit_inf(c: Conn) -> None:
    """inf and nan in every rate-limit header."""
    c.json(headers=_rate_headers("inf", "nan", "inf"))


def m_ratelimit_negative(c: Conn) -> None:
    """Negative and absurdly large rate-limit values."""
    c.json(headers=_rate_headers("-1", "1" + "0" * 400, "-100"))


def m_usage_poison(c: Conn) -> None:
    """Hyper's /usage with a quota of 10**400 and a remaining count below zero."""
    if c.path.endswith("/usage"):
        c.json(body={"plans": [{"requestsRemaining": -5, "requestsQuota": 10 ** 400, "expiresAt": "9999-12-31T23:59:59Z"}]})
    else:
        c.json(headers=_rate_headers("1e400", "-0", "nan"))


def m_retry_after_absurd(c: Conn) -> None:
    """A 429 that asks to come back in 3,000 years."""
    c.json(429, body={"error": {"code": "RATE_LIMIT_EXCEEDED", "details": {"retry_after_seconds": 1e308}}},
           headers=[("Retry-After", "99999999999")] + _rate_headers("10", "0", "inf"))


def m_retry_after_nan(c: Conn) -> None:
    """A 429 with Retry-After: nan (and -1 for its reset)."""
    c.json(429, body={"error": {"code": "RATE_LIMIT_EXCEEDED", "details": {"retry_after_seconds": float("nan")}}},
           headers=[("Retry-After", "nan")] + _rate_headers("10", "0", "-1"))


def m_date_year_1(c: Conn) -> None:
    """A Date header in year 1."""
    data = json.dumps(normal_body(c.method, c.path)).encode()
    c.raw(200, data, [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                      ("Date", "Mon, 01 Jan 0001 00:00:00 GMT")])


def m_date_year_9999(c: Conn) -> None:
    """A Date header in year 9999 (and a rate-limit reset relative to it)."""
    data = json.dumps(normal_body(c.method, c.path)).encode()
    c.raw(200, data, [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                      ("Date", "Fri, 31 Dec 9999 23:59:59 GMT")] + _rate_headers("10", "5", "253402300799"))


def m_redirect(c: Conn) -> None:
    """A redirect elsewhere, its Location carrying escape codes."""
    c.raw(302, b"", [("Location", "http://evil.example\x1b[2J/steal"), ("Content-Length", "0")])


def m_info_storm(c: Conn) -> None:
    """100 Continue, forever: never a final answer."""
    while not c.stop.is_set():
        c.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not c.sleep(0.01):
            return


def m_reset_mid_body(c: Conn) -> None:
    """Half the body, then a TCP reset."""
    c.raw(200, b'{"plans": [', [("Content-Type", "application/json"), ("Content-Length", "1000")])
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.sock.close()


def m_tls_garbage(c: Conn) -> None:
    """A TLS handshake record where an HTTP answer belongs."""
    c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) * 4)


def m_empty_reply(c: Conn) -> None:
    """The connection closes without a byte."""


def m_huge_headers(c: Conn) -> None:
    """One header of a megabyte."""
    c.send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * (1 << 20) + b"\r\n\r\n{}")


def m_escape_codes(c: Conn) -> None:
    """A refusal whose envelope is full of terminal escape codes (OSC 52 among them)."""
    evil = "\x1b[1A\x1b[2K\x1b]52;c;aGVsbG8=\x07\x9b31m[red]x[/red]"
    c.json(401, body={"error": {"code": evil, "message": evil}, "Authenticated": False, "errormsg": evil})


MODES: dict[str, Callable[[Conn], None]] = {
    name[2:]: fn for name, fn in sorted(globals().items()) if name.startswith("m_") and callable(fn)
}


class HostileVenue:
    """`with HostileVenue() as hv: hv.mode = "drip_body"; ... hv.base_url`."""

    def __init__(self) -> None:
        self.mode = "normal"
        self.requests: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="hostile-venue", daemon=True)

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HostileVenue:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            for s in list(self._conns):
                try:
                    s.close()
                except OSError:
                    pass
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            with self._lock:
                self._conns.add(sock)
            threading.Thread(target=self._handle, args=(sock,), daemon=True).start()

    def _read_request(self, sock: socket.socket) -> tuple[str, str] | None:
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
            if len(data) > 1 << 20:
                return None
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return method, path

    def _handle(self, sock: socket.socket) -> None:
        try:
            request = self._read_request(sock)
            if request is None:
                return
            method, path = request
            self.requests.append((method, path))
            sock.settimeout(None)
            conn = Conn(sock, method, path, self._stop)
            mode = self.mode
            if mode == "normal":
                conn.json()
            else:
                MODES[mode](conn)
        except OSError:
            pass  # the client gave up (as it should): nothing to answer
        finally:
            with self._lock:
                self._conns.discard(sock)
            try:
                sock.close()
            except OSError:
                pass


__all__ = ["FOREVER_S", "HostileVenue", "MODES", "gzip_bomb", "normal_body"]
