"""Hostile text and hostile input: what reaches a terminal is data, what comes in is bounded.

Findings 3 and 4 of issue 12 through the real CLI, then the pieces one by one: the one
escaping function, the bounded reader, the load-time repair of poisoned values, and a
hypothesis fuzz of the response parsers and of the capture/paste recogniser.
"""

from __future__ import annotations

import json
import os
import math
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, SMALL_KDF

ESCAPES = "\x1b[1A\x1b[2K\x1b]52;c;aGVsbG8=\x07\x9b2J"
TERMINAL_BYTES = ("\x1b", "\x07", "\x9b", "\x08", "\r")


def no_terminal_codes(text: str) -> bool:
    return not any(c in text for c in TERMINAL_BYTES)


def stdin_run(kw, args: list[str], data: bytes):
    """The CLI with raw bytes on stdin (KeywardCLI's `input` is text)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "vault", "--vault", str(kw.vault_path), "--passphrase-file",
                           str(kw.passphrase_file), *args], input=data, capture_output=True, env=kw.env, timeout=60,
                          start_new_session=True)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


# --- finding 3: the audit trail prints what it is given -----------------------------------


def test_audit_details_reach_the_terminal_escaped(vault, tmp_path: Path) -> None:
    """An export path full of escape codes, an OSC 52 clipboard write among them."""
    kw = vault
    fields = {"api_key": "ak_live_escape_key_0123456789", "api_secret": "sk_live_escape_secret_012345"}
    src = tmp_path / "f.json"
    src.write_text(json.dumps(fields))
    assert kw("add", "tradeready", "tr", "--from-json", str(src), "--base-url", "http://127.0.0.1:9",
              "--notes", "note " + ESCAPES).code == 0
    bundle_pass = tmp_path / "bp"
    bundle_pass.write_text("a long bundle passphrase here\n")
    (tmp_path / f"a{ESCAPES}[").mkdir()
    evil = tmp_path / f"a{ESCAPES}[" / "b].kwb"  # the a[/b].kwb, with escape codes
    r = kw("export", "--encrypted", str(evil), "--bundle-passphrase-file", str(bundle_pass))
    assert r.code == 0, r
    for args in (("audit",), ("show", "tr"), ("list",)):
        r = kw(*args)
        assert r.code == 0, r
        assert no_terminal_codes(r.out + r.err), (args, r)
    r = kw("audit")
    assert "\\x1b" in r.out  # shown, as text: the entry is not hidden either
    # --json escapes by nature, and round-trips the real value.
    entries = json.loads(kw("audit", "--json").out)["entries"]
    assert any(ESCAPES in e["detail"] for e in entries)


def test_an_error_quoting_outside_text_reaches_the_terminal_escaped(vault, tmp_path: Path) -> None:
    """A file name is outside text too, and error messages quote it."""
    kw = vault
    r = kw("import", str(tmp_path / f"missing{ESCAPES}.json"))
    assert r.code != 0 and r.code != 70, r
    assert no_terminal_codes(r.out + r.err), r


# --- finding 4: input ----------------------------------------------------------------------


def test_invalid_utf8_on_stdin_is_a_one_line_error_naming_the_byte(vault) -> None:
    code, out, err = stdin_run(vault, ["add", "tradeready", "tr", "--from-json", "-"],
                               b'{"api_key": "ak_live_x\xff\xfe", "api_secret": "s"}')
    assert code == 25, (code, err)
    assert "Traceback" not in err and "internal error" not in err
    assert err.count("\n") == 1 and "offset 22" in err, err


def test_invalid_utf8_on_capture_stdin_is_a_one_line_error(vault) -> None:
    code, out, err = stdin_run(vault, ["capture", "tradeready", "tr", "--base-url", "http://127.0.0.1:9"],
                               b'{"api_key": "\xc3\x28"}')
    assert code == 25 and "offset 13" in err and err.count("\n") == 1, (code, err)


def test_deeply_nested_json_is_refused_with_a_typed_error(vault) -> None:
    deep = b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    for args in (["add", "tradeready", "tr", "--from-json", "-"], ["import", "-"],
                 ["capture", "tradeready", "tr", "--base-url", "http://127.0.0.1:9"]):
        code, out, err = stdin_run(vault, args, deep)
        assert code == 25, (args, code, err)
        assert "nested" in err and "Traceback" not in err and err.count("\n") == 1, (args, err)


def test_stdin_past_the_cap_is_refused_with_a_clear_error(vault) -> None:
    big = b'{"api_key": "' + b"a" * (2 << 20) + b'"}'
    code, out, err = stdin_run(vault, ["add", "tradeready", "tr", "--from-json", "-"], big)
    assert code == 4, (code, err)
    assert "MiB" in err and err.count("\n") == 1, err


def test_a_credential_file_past_the_cap_is_refused(vault, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b'{"api_key": "' + b"a" * (2 << 20) + b'"}')
    for args in (["add", "tradeready", "tr", "--from-json", str(big)], ["import", str(big)],
                 ["capture", "tradeready", "tr", "--file", str(big), "--base-url", "http://127.0.0.1:9"]):
        r = vault(*args)
        assert r.code == 4 and "MiB" in r.err and r.err.count("\n") == 1, (args, r)


# --- fuzz: arbitrary bytes raise only keyward's own errors ------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=int(os.environ.get("KW_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
T0 = 1_800_000_000.0
KEYS = ["token", "expires_at", "error", "code", "message", "details", "retry_after_seconds", "plans",
        "requestsRemaining", "requestsQuota", "expiresAt", "Authenticated", "SessionToken", "Token", "locked",
        "Requires2FA", "result", "errorcode", "errormsg", "detail", "loc", "msg", "type", "UserId"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
                           max_leaves=20)


def _json_bytes(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


bodies = st.one_of(st.binary(max_size=600), json_values.map(_json_bytes),
                   st.integers(min_value=1, max_value=5000).map(lambda n: b'{"error": ' + b"[" * n + b"]" * n + b"}"))
header_values = st.one_of(st.sampled_from(["inf", "nan", "-1", "1e400", "1796111000000", "0", "99999999999",
                                           "Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
                                           "http://evil.example\x1b[2J/x", "", "gzip"]),
                          st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
headers = st.dictionaries(st.sampled_from(["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                                           "Retry-After", "Date", "Location", "Content-Type"]), header_values,
                          max_size=5)
statuses = st.one_of(st.sampled_from([200, 201, 302, 400, 401, 403, 404, 422, 429, 500, 503]),
                     st.integers(min_value=200, max_value=599))


def _fuzz_accounts():
    from tests.test_hostile_venues import accounts

    return {a.venue: a for a in accounts("https://venue.example")}


FUZZ_ACCOUNTS = None


@FUZZ
@given(status=statuses, body=bodies, hdrs=headers, venue=st.sampled_from(["powertrade", "tradeready",
                                                                          "hypersolutions", "kiiex"]),
       login=st.booleans())
def test_fuzz_response_parsers_raise_only_keyward_errors(status, body, hdrs, venue, login) -> None:
    import httpx

    from vault.core.errors import KeywardError
    from vault.net.http import Sender, generic_error, header_rate_limit, json_body, make_client, retry_delay
    from vault.venues import get_provider

    global FUZZ_ACCOUNTS
    if FUZZ_ACCOUNTS is None:
        FUZZ_ACCOUNTS = _fuzz_accounts()
    acct = FUZZ_ACCOUNTS[venue]
    provider = get_provider(venue)
    path = {"tradeready": "/api/v1/auth/login", "kiiex": "/AuthenticateUser"}.get(venue, "/x") if login else "/x"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={k: v.encode("latin-1", "replace").decode("latin-1") for k, v in hdrs.items()},
                              content=body)

    try:
        with make_client(transport=httpx.MockTransport(handler)) as client:
            response = Sender(clock=lambda: T0, sleep=lambda s: None).send(
                client, "POST", acct.base_url + path, idempotent=True, venue=provider.title, label=acct.label)
    except KeywardError:
        return
    for name, step in (
        ("rate_limit", lambda: provider.rate_limit(response, T0)),
        ("header_rate_limit", lambda: header_rate_limit(response, T0)),
        ("retry_delay", lambda: retry_delay(response, T0)),
        ("generic_error", lambda: generic_error(provider.title, acct.label, response)),
        ("json_body", lambda: json_body(response, provider.title)),  # any JSON value: a float too
        ("raise_for_error", lambda: provider.raise_for_error(acct, response)),
        ("parse_login", lambda: provider.parse_login(acct, response, T0, None) if venue == "tradeready" else None),
        ("parse_login", lambda: provider.parse_login(acct, response, T0) if venue == "kiiex" else None),
    ):
        try:
            result = step()
        except KeywardError:
            continue
        if name == "json_body":
            continue
        if result is not None and hasattr(result, "reset_at"):  # a RateLimit: in range
            assert result.reset_at is None or 946684800 <= result.reset_at < 7258118400
            for n in (result.limit, result.remaining):
                assert n is None or (isinstance(n, int) and 0 <= n <= 10**12)
        if name == "retry_delay" and result is not None:
            assert 0 <= result <= 86400


@FUZZ
@given(data=st.one_of(st.binary(max_size=800), st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
                      json_values.map(_json_bytes)),
       venue=st.sampled_from(["powertrade", "tradeready", "hypersolutions", "kiiex"]))
def test_fuzz_the_capture_recogniser_raises_only_keyward_errors(data: bytes, venue: str) -> None:
    from vault.core.errors import KeywardError
    from vault.core.inputs import decode, load_json
    from vault.ops.capture import parse, unfinished
    from vault.ops.formats import parse_json, recognise

    try:
        text = decode(data, "the paste")
    except KeywardError:
        return
    unfinished(text)
    for step in (lambda: parse(text, venue), lambda: recognise(parse_json(text, "stdin")),
                 lambda: recognise(load_json(text, "stdin"))):
        try:
            step()
        except KeywardError:
            pass
        except ValueError as err:  # a JSONDecodeError from load_json is the caller's to word
            assert type(err).__name__ == "JSONDecodeError", err


def test_printable_escapes_every_control_and_keeps_text() -> None:
    from vault.core.text import printable

    assert printable("plain, ünïcödé and 日本") == "plain, ünïcödé and 日本"
    assert printable("a\x1b[2Jb\x07\x9b\x7f\u202e") == "a\\x1b[2Jb\\x07\\x9b\\x7f\\u202e"
    assert printable("one\ntwo\tthree") == "one\\x0atwo\tthree"
    assert printable("one\ntwo", newlines=True) == "one\ntwo"
    assert printable("\r\x00", newlines=True) == "\\x0d\\x00"
    assert all(printable(chr(c)) != chr(c) for c in list(range(0, 9)) + list(range(10, 32)) + list(range(127, 160)))


def test_model_values_are_kept_in_range_on_construction_and_load() -> None:
    from vault.core.model import Account, Health, RateLimit, Token, VaultData

    inf, nan = float("inf"), float("nan")
    rl = RateLimit(limit=inf, remaining=nan, reset_at=1796111000000, observed_at=T0)
    assert (rl.limit, rl.remaining, rl.reset_at) == (None, None, 1796111000.0)
    assert RateLimit(limit=10, remaining=50, reset_at=-5, observed_at=T0).remaining == 10
    assert RateLimit(limit=10**400, remaining=-1, reset_at=253402300799, observed_at=T0).reset_at is None
    h = Health(ok=1, checked_at=nan, latency_ms=-3, status=True, skew_s=inf, message=None)
    assert (h.ok, h.checked_at, h.latency_ms, h.status, h.skew_s, h.message) == (False, 0.0, None, None, None, "")
    assert Token("v", issued_at=T0, expires_at=T0 + 1e9).expires_at is None
    assert Token("v", issued_at=T0, expires_at=T0 + 3600).expires_at == T0 + 3600
    raw = VaultData(accounts=[Account(label="a", venue="kiiex", base_url="https://x", fields={})]).to_dict()
    raw["accounts"][0].update(rate_limit={"limit": None, "remaining": 5, "reset_at": inf, "observed_at": nan},
                              token={"value": "x" * 100000, "issued_at": 1.0, "expires_at": 2.0, "kind": "session"},
                              history=[10**400, -1, 3, 2.5])
    loaded = VaultData.from_dict(raw).accounts[0]
    assert loaded.rate_limit.reset_at is None and loaded.rate_limit.observed_at == 0.0
    assert loaded.token is None and loaded.history == [3]


def test_header_rate_limit_converts_milliseconds_and_says_what_it_dropped() -> None:
    import httpx

    from vault.net.http import header_rate_limit, rate_limit_notices, retry_delay

    def answer(**h):
        return httpx.Response(200, headers={k.replace("_", "-"): v for k, v in h.items()})

    ms = answer(X_RateLimit_Limit="100", X_RateLimit_Remaining="99", X_RateLimit_Reset=str(int((T0 + 60) * 1000)))
    assert header_rate_limit(ms, T0).reset_at == T0 + 60
    rel = answer(X_RateLimit_Limit="100", X_RateLimit_Remaining="99", X_RateLimit_Reset="60")
    assert header_rate_limit(rel, T0).reset_at == T0 + 60
    bad = answer(X_RateLimit_Limit="inf", X_RateLimit_Remaining="nan", X_RateLimit_Reset="-1")
    assert header_rate_limit(bad, T0) is None
    assert len(rate_limit_notices(bad, T0)) == 3 and all("ignored" in n for n in rate_limit_notices(bad, T0))
    assert retry_delay(httpx.Response(429, headers={"Retry-After": "99999999999"}), T0) is None
    assert retry_delay(httpx.Response(429, headers={"Retry-After": "nan"}), T0) is None
    assert retry_delay(httpx.Response(429, headers={"Retry-After": "7"}), T0) == 7.0


def test_inputs_reader_bounds_decodes_and_limits_nesting(tmp_path: Path) -> None:
    import io

    from vault.core.errors import InputTooLarge, MalformedInput
    from vault.core.inputs import MAX_JSON_DEPTH, load_json, read_file, read_stream

    class Raw(io.StringIO):
        def __init__(self, data: bytes) -> None:
            super().__init__()
            self.buffer = io.BytesIO(data)

    assert read_stream(Raw(b'{"a": "\xc3\xa9"}')) == '{"a": "é"}'
    with pytest.raises(MalformedInput, match="offset 3"):
        read_stream(Raw(b"abc\xff"))
    with pytest.raises(InputTooLarge):
        read_stream(Raw(b"x" * 100), limit=10)
    with pytest.raises(InputTooLarge):
        read_stream(io.StringIO("x" * 100), limit=10)
    with pytest.raises(MalformedInput, match="offset 1"):
        read_stream(io.StringIO("a\udcff"))  # surrogate-escaped bytes from a text stdin
    f = tmp_path / "f"
    f.write_bytes(b"x" * 11)
    with pytest.raises(InputTooLarge):
        read_file(f, limit=10)
    assert load_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "x")
    with pytest.raises(MalformedInput, match="nested"):
        load_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "x")
    with pytest.raises(MalformedInput, match="nested"):
        load_json("[" * 100000 + "]" * 100000, "x")


def test_an_audit_detail_cannot_forge_a_line_of_the_trail(vault, tmp_path: Path) -> None:
    """A newline in a detail (an export path may hold one) would print as a second,
    forged entry: one entry is one line."""
    kw = vault
    src = tmp_path / "f.json"
    src.write_text(json.dumps({"api_key": "ak_live_forge_key_0123456789", "api_secret": "sk_live_forge_secret_0123"}))
    assert kw("add", "tradeready", "tr", "--from-json", str(src), "--base-url", "http://127.0.0.1:9").code == 0
    bundle_pass = tmp_path / "bp"
    bundle_pass.write_text("a long bundle passphrase here\n")
    forged = tmp_path / "x\n2027-01-01T00:00:00Z  remove    tr                   ok         forged.kwb"
    assert kw("export", "--encrypted", str(forged), "--bundle-passphrase-file", str(bundle_pass)).code == 0
    r = kw("audit")
    entries = json.loads(kw("audit", "--json").out)["entries"]
    lines = [line for line in r.out.splitlines() if not line.startswith("audit trail intact")]
    assert len(lines) == len(entries), r.out
    assert "\\x0a2027-01-01" in r.out


def test_an_absurd_date_is_dropped_with_a_notice() -> None:
    import httpx

    from vault.net.http import measure_skew, response_notices

    for value in ("Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"):
        answer = httpx.Response(200, headers={"Date": value})
        assert measure_skew(answer, T0, 0.1) is None
        assert any("Date" in n and "clock skew unknown" in n for n in response_notices(answer, T0)), value
    assert response_notices(httpx.Response(200, headers={"Date": "Fri, 15 Jan 2027 08:00:00 GMT"}), T0) == []


@pytest.mark.parametrize("mode", ["drip_body", "drip_headers", "stall_before_answer", "info_storm"])
def test_sender_ends_a_dripping_or_stalling_answer_at_its_deadline(mode: str) -> None:
    """The whole call, not each read: every byte arrives well inside the read timeout."""
    from tests.hostile_server import HostileVenue
    from vault.core.errors import DeadlineExceeded
    from vault.net.http import SENT_UNANSWERED, Sender, make_client

    with HostileVenue() as hv, make_client() as client:
        hv.mode = mode
        with pytest.raises(DeadlineExceeded) as info:
            Sender(deadline_s=0.5).send(client, "GET", hv.base_url + "/usage", idempotent=True, venue="Hyper",
                                        label="desk")
    assert "'desk'" in str(info.value) and "0.5 s deadline" in str(info.value) and info.value.exit_code == 39
    assert info.value.code == SENT_UNANSWERED


def test_sender_refuses_a_body_past_its_cap_and_an_encoding_it_did_not_ask_for() -> None:
    from tests.hostile_server import HostileVenue
    from vault.core.errors import ResponseTooLarge, VenueError
    from vault.net.http import Sender, make_client

    with HostileVenue() as hv, make_client() as client:
        hv.mode = "large_token"  # 1.2 MiB of JSON (the token twice)
        send = Sender(max_response_bytes=64 << 10).send
        with pytest.raises(ResponseTooLarge, match="'desk'.*0.0625 MiB on the wire"):
            send(client, "GET", hv.base_url + "/x", idempotent=True, venue="Hyper", label="desk")
        assert Sender(max_response_bytes=2 << 20).send(client, "GET", hv.base_url + "/x",
                                                       idempotent=True).status_code == 200
        hv.mode = "unknown_encoding"
        with pytest.raises(VenueError, match="encoding"):
            Sender().send(client, "GET", hv.base_url + "/x", idempotent=True, venue="Hyper", label="desk")


def test_text_that_is_no_url_is_a_typed_error_wherever_a_url_arrives() -> None:
    """urlsplit raises ValueError on some input (found by the response fuzz above: a
    redirect's Location "http://evil.example\\x1b[2J/x"); a venue, a user or a file can
    send such text, and each place must answer with keyward's own error."""
    import httpx

    from vault.core.errors import InputError, KeywardError, VenueError
    from vault.net.endpoints import check_base_url, split_url
    from vault.net.http import generic_error
    from vault.venues.base import checked_uri

    for bad in ("http://evil.example\x1b[2J/x", "http://[::1", "https://host:notaport/", "https://]/"):
        assert split_url(bad) is None, bad
        with pytest.raises(InputError):
            check_base_url(bad)
    redirect = httpx.Response(309, headers={"Location": "http://evil.example\x1b[2J/x"})
    err = generic_error("PowerTrade", "desk", redirect)
    assert isinstance(err, VenueError) and "redirect" in err.message
    with pytest.raises(KeywardError):
        checked_uri("https://[x/", "uri")
    from vault.monitor.notify import check_webhook_url

    with pytest.raises(InputError):
        check_webhook_url("http://[::1/hook")
