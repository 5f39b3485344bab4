"""vault.net.http one function at a time, over httpx.MockTransport: 429 waits, no retry on
401, no plain http off loopback, no redirects, skew from Date, typed network errors."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from vault.core.errors import AuthRejected, InsecureTransport, NetworkError, RateLimited, VenueError
from vault.net.http import (
    NOT_SENT,
    SENT_UNANSWERED,
    Sender,
    ensure_transport_allowed,
    generic_error,
    harden,
    header_rate_limit,
    make_client,
    measure_skew,
    retry_delay,
    safe_code,
    skew_matters,
)

T0 = 1_800_000_000.0


class Recorder:
    """A MockTransport handler answering from a script, recording what it was sent."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def client_for(handler) -> httpx.Client:
    return make_client(transport=httpx.MockTransport(handler))


def sender(waits: list, notices: list | None = None, clock=lambda: T0) -> Sender:
    return Sender(clock=clock, sleep=waits.append, on_wait=(lambda s, h: notices.append((s, h))) if notices is not None else None)


def date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


# --- 429 ---------------------------------------------------------------------------------


def test_429_is_waited_out_with_fresh_headers_for_each_attempt() -> None:
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json={"ok": True}))
    waits, notices, built = [], [], []

    def headers() -> dict[str, str]:
        built.append(1)
        return {"X-Sig": f"attempt-{len(built)}"}

    s = sender(waits, notices)
    r = s.send(client_for(rec), "GET", "https://venue.example/x", headers=headers, idempotent=True)
    assert r.status_code == 200
    assert waits == [2.0] and notices == [(2.0, "venue.example")]
    assert [q.headers["X-Sig"] for q in rec.requests] == ["attempt-1", "attempt-2"]
    assert s.last.attempts == 2 and s.last.waited_s == 2.0


def test_429_wait_from_x_ratelimit_reset_uses_the_servers_date_not_our_clock() -> None:
    server_now = T0 + 500  # the venue's clock is 500 s ahead: the wait must still be 3 s
    resp = httpx.Response(429, headers={"X-RateLimit-Reset": str(int(server_now) + 3), "Date": date(server_now)})
    assert retry_delay(resp, local_now=T0) == pytest.approx(3, abs=1)
    assert retry_delay(httpx.Response(429, headers={"Retry-After": date(server_now + 4), "Date": date(server_now)})) == 4
    assert retry_delay(httpx.Response(429)) is None


def test_429_wait_is_bounded_then_reported_as_rate_limited() -> None:
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "100"}))
    waits: list = []
    r = sender(waits).send(client_for(rec), "GET", "https://venue.example/x", idempotent=True)
    assert r.status_code == 429 and waits == [] and len(rec.requests) == 1
    err = generic_error("Venue", "acct", r)
    assert isinstance(err, RateLimited) and err.retry_after == 100 and "acct" in str(err)


def test_429_retries_stop_after_a_few_attempts() -> None:
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "0.5"}))
    waits: list = []
    r = sender(waits).send(client_for(rec), "GET", "https://venue.example/x", idempotent=True)
    assert r.status_code == 429 and len(rec.requests) == 3 and waits == [0.5, 0.5]


def test_non_idempotent_call_is_never_retried_after_429() -> None:
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200))
    waits: list = []
    r = sender(waits).send(client_for(rec), "POST", "https://venue.example/login", json={}, idempotent=False)
    assert r.status_code == 429 and len(rec.requests) == 1 and waits == []


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_never_retried(status: int) -> None:
    rec = Recorder(httpx.Response(status), httpx.Response(200))
    r = sender([]).send(client_for(rec), "GET", "https://venue.example/x", idempotent=True)
    assert r.status_code == status and len(rec.requests) == 1
    assert isinstance(generic_error("Venue", "acct", r), AuthRejected)


# --- transport rules ---------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://venue.example/x", "http://10.0.0.1/x", "ftp://venue.example/", "http:///x"])
def test_plain_http_off_loopback_is_refused_before_anything_is_sent(url: str) -> None:
    rec = Recorder(httpx.Response(200))
    built: list = []
    with pytest.raises(InsecureTransport):
        sender([]).send(client_for(rec), "GET", url, headers=lambda: built.append(1) or {}, idempotent=True)
    assert rec.requests == [] and built == []  # not even the headers were built


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:9/x", "https://venue.example/x"])
def test_loopback_http_and_https_are_allowed(url: str) -> None:
    ensure_transport_allowed(url)
    rec = Recorder(httpx.Response(200))
    assert sender([]).send(client_for(rec), "GET", url, idempotent=True).status_code == 200


def test_the_client_hook_refuses_plain_http_even_when_called_directly() -> None:
    rec = Recorder(httpx.Response(200))
    with pytest.raises(InsecureTransport):
        client_for(rec).get("http://venue.example/x", headers={"X-API-Key": "k"})
    custom = harden(httpx.Client(transport=httpx.MockTransport(rec)))  # an injected factory's client
    harden(custom)  # idempotent
    with pytest.raises(InsecureTransport):
        custom.get("http://venue.example/x")
    assert rec.requests == []


def test_redirects_are_not_followed_and_say_where_they_pointed() -> None:
    rec = Recorder(httpx.Response(302, headers={"Location": "https://elsewhere.example/steal?token=abc"}))
    r = sender([]).send(client_for(rec), "GET", "https://venue.example/x", headers={"X-API-Key": "k"}, idempotent=True)
    assert r.status_code == 302 and len(rec.requests) == 1
    err = generic_error("Venue", "acct", r)
    assert type(err) is VenueError and "elsewhere.example" in str(err) and "token=abc" not in str(err)


def test_client_defaults() -> None:
    c = make_client()
    assert c.follow_redirects is False
    assert c.headers["User-Agent"].startswith("keyward/")
    assert c.timeout.connect == 5.0 and c.timeout.read == 15.0


def test_clients_share_one_verifying_tls_context_and_it_refuses_a_certificate_nobody_signed(tmp_path) -> None:
    """Each client used to build its own TLS context (the CA bundle loaded again, ~30 ms
    a request in the monitor and the agent).  They share one now; it must still verify:
    a loopback HTTPS server with a self-signed certificate is refused before any request."""
    import datetime
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from vault.net.http import tls_context

    first, second = make_client(), make_client()
    assert first._transport._pool._ssl_context is second._transport._pool._ssl_context is tls_context()
    assert tls_context().verify_mode == ssl.CERT_REQUIRED and tls_context().check_hostname

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            served.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            first.get(f"https://127.0.0.1:{server.server_address[1]}/secret-path")
    finally:
        server.shutdown()
        server.server_close()
    assert served == []


# --- network errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "words", "code"),
    [(httpx.ConnectError("refused"), "cannot connect", NOT_SENT),
     (httpx.ConnectTimeout("syn lost"), "cannot connect", NOT_SENT),
     (httpx.ReadTimeout("slow"), "did not answer", SENT_UNANSWERED),
     (httpx.RemoteProtocolError("bad"), "RemoteProtocolError", SENT_UNANSWERED)],
)
def test_network_errors_become_network_error_with_what_to_do(exc: Exception, words: str, code: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(NetworkError) as info:
        sender([]).send(client_for(handler), "GET", "https://venue.example/x?secret=s3", idempotent=True, venue="Venue",
                        label="desk")
    assert words in str(info.value) and "venue.example" in str(info.value)
    assert "s3" not in str(info.value) and info.value.hint
    # Whether the venue can have seen it: a lock-out-prone login counts only those.
    assert info.value.code == code
    assert "LABEL" not in str(info.value)  # the hint names the account, not a placeholder


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_plain_http_to_loopback_never_goes_through_an_environment_proxy(monkeypatch, variable: str) -> None:
    """A proxy would receive a loopback request's headers in clear, on the proxy's host."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Venue(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    proxy = socket.create_server(("127.0.0.1", 0))  # records whoever connects to it
    proxy.settimeout(0.5)
    venue = HTTPServer(("127.0.0.1", 0), Venue)
    threading.Thread(target=venue.serve_forever, daemon=True).start()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.getsockname()[1]}")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
    try:
        with make_client(timeout=2) as client:
            r = sender([]).send(client, "GET", f"http://127.0.0.1:{venue.server_address[1]}/x",
                                headers={"X-API-Key": "k"}, idempotent=True)
            assert r.status_code == 200
            with pytest.raises(TimeoutError):
                proxy.accept()  # nobody came
            # https keeps honouring HTTPS_PROXY: a CONNECT tunnel, TLS end to end.
            assert client._transport_for_url(httpx.URL("https://venue.example/x")) is not client._transport
    finally:
        venue.shutdown()
        venue.server_close()
        proxy.close()


# --- bookkeeping -------------------------------------------------------------------------


def test_skew_is_measured_from_the_date_header() -> None:
    rec = Recorder(httpx.Response(200, headers={"Date": date(T0 + 40)}))
    s = sender([], clock=lambda: T0)
    s.send(client_for(rec), "GET", "https://venue.example/x", idempotent=True)
    assert s.last.skew_s == pytest.approx(40.5, abs=0.2)
    assert s.last.status == 200 and s.last.latency_ms >= 0
    assert measure_skew(httpx.Response(200), T0, 0.1) is None
    assert measure_skew(httpx.Response(200, headers={"Date": date(T0 - 10)}), T0, 0.0) == -9.5


def test_skew_matters_above_a_third_of_the_lifetime_and_above_the_dates_resolution() -> None:
    assert skew_matters(10.5, 30) and not skew_matters(9.5, 30)
    assert skew_matters(-6, 15) and not skew_matters(4, 15)
    assert not skew_matters(1.5, 3)  # one-second Date resolution: noise
    assert not skew_matters(None, 30)


def test_rate_limit_headers() -> None:
    rl = header_rate_limit(
        httpx.Response(200, headers={"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "423", "X-RateLimit-Reset": "1742390400"}),
        T0,
    )
    assert (rl.limit, rl.remaining, rl.reset_at, rl.observed_at) == (600, 423, 1742390400.0, T0)
    assert header_rate_limit(httpx.Response(200), T0) is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [("INVALID_API_KEY", True), ("bad_signature", True), ("a" * 41, False), ("ak_live_123", False),
     ("has space", False), ("deadbeef0123", False), (42, False), ("", False), ("ÉTÉ", False)],
)
def test_safe_code_quotes_only_short_identifiers(value, ok: bool) -> None:
    assert (safe_code(value) is not None) is ok
