"""The monitor's parts one at a time: scheduling, deduplication, the exposition, the files
it writes, its notifiers (real subprocesses, a real loopback HTTP server)."""

from __future__ import annotations

import json
import os
import random
import stat
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from vault.core.errors import InputError
from vault.monitor import schedule
from vault.monitor.metrics import AccountState, MonitorState, parse_listen, registry_for, write_textfile
from vault.monitor.notify import CommandNotifier, Conditions, DesktopNotifier, Dispatcher, Event, WebhookNotifier
from vault.monitor.rules import alert_rules, systemd_quote
from vault.monitor.schedule import RateSeen
from vault.ops.monitor_status import read_status, status_path, write_status

NOW = 1_800_000_000.0
CONTRACT = {
    "keyward_up", "keyward_account_info", "keyward_check_success", "keyward_check_duration_seconds",
    "keyward_last_check_timestamp_seconds", "keyward_checks_total", "keyward_refreshes_total",
    "keyward_token_expiry_timestamp_seconds", "keyward_rate_limit_remaining", "keyward_rate_limit_limit",
    "keyward_rate_limit_reset_timestamp_seconds", "keyward_clock_skew_seconds", "keyward_key_age_seconds",
    "keyward_key_max_age_seconds", "keyward_login_blocked",
}


# --- scheduling ------------------------------------------------------------------------------


def test_a_429_pushes_the_next_check_past_the_reset_and_without_one_a_minute_at_least():
    rng = random.Random(1)
    rl = RateSeen(limit=10, remaining=0, reset_at=NOW + 45)
    when, why = schedule.next_check(NOW, 5, 0.1, rng, status=429, rl=rl)
    assert when >= NOW + 45 + schedule.RESET_MARGIN_S and "429" in why
    when, why = schedule.next_check(NOW, 5, 0.1, rng, status=429, rl=None)
    assert when >= NOW + 60 and "no reset" in why
    # A reset already past does not hold it back; the regular interval stands.
    when, _ = schedule.next_check(NOW, 5, 0.0, rng, status=429, rl=RateSeen(10, 0, NOW - 1))
    assert when >= NOW + 60


def test_the_last_tenth_of_a_window_is_left_to_the_bots():
    rng = random.Random(1)
    assert schedule.rate_limit_low(RateSeen(600, 59, NOW + 30))
    assert not schedule.rate_limit_low(RateSeen(600, 60, NOW + 30))
    assert schedule.rate_limit_low(RateSeen(2, 0, NOW + 30)) and not schedule.rate_limit_low(RateSeen(2, 1, NOW + 30))
    when, why = schedule.next_check(NOW, 1, 0.0, rng, status=200, rl=RateSeen(600, 5, NOW + 30))
    assert when >= NOW + 31 and why == "rate limit nearly used up"
    when, why = schedule.next_check(NOW, 1, 0.0, rng, status=200, rl=RateSeen(600, 500, NOW + 30))
    assert when == NOW + 1 and why is None
    # A quota that resets in a month (Hyper's plan): an hour at most, not weeks unwatched.
    when, why = schedule.next_check(NOW, 60, 0.0, rng, status=200, rl=RateSeen(1000, 5, NOW + 30 * 86400))
    assert when == NOW + 3600 and why == "rate limit nearly used up"
    # A 429 is different: the venue refused, so nothing before its reset.
    when, _ = schedule.next_check(NOW, 60, 0.0, rng, status=429, rl=RateSeen(1000, 0, NOW + 30 * 86400))
    assert when > NOW + 30 * 86400


@given(st.floats(1, 86400), st.floats(0, 0.5), st.integers(0, 2**32))
def test_jitter_stays_within_its_fraction(interval, jitter, seed):
    when = schedule.jittered(NOW, interval, jitter, random.Random(seed))
    assert NOW + interval * (1 - jitter) - 1e-6 <= when <= NOW + interval * (1 + jitter) + 1e-6


@given(st.integers(1, 86400), st.floats(0, 86400))
def test_a_keepalive_comes_before_venue_ops_would_log_in_again(idle, left):
    expires = NOW + left
    when = schedule.keepalive_at(expires, idle)
    # VenueOps logs in again once less than min(300 s, idle/4) is left (kiiex.is_fresh).
    assert expires - when > min(300, idle / 4)


@given(st.floats(1, 86400 * 2))
def test_a_bearer_is_renewed_after_it_was_issued_and_well_before_it_expires(life):
    when = schedule.renew_at(NOW, NOW + life)
    assert NOW < when < NOW + life
    assert NOW + life - when >= min(schedule.RENEW_BEFORE_S, life / 2) - 1e-6


# --- deduplication -----------------------------------------------------------------------------


def test_a_condition_notifies_once_reminds_after_the_interval_and_resolves_once():
    c = Conditions(reminder_s=3600)
    keys = {"account": "desk", "venue": "powertrade", "env": "prod"}
    assert c.update(NOW, "check_failed", active=False, **keys) is None  # never fired: nothing to resolve
    first = c.update(NOW, "check_failed", active=True, detail="HTTP 500", **keys)
    assert first.status == "firing" and not first.reminder and first.command == "keyward doctor desk"
    assert all(c.update(NOW + t, "check_failed", active=True, **keys) is None for t in (1, 60, 3599))
    again = c.update(NOW + 3600, "check_failed", active=True, **keys)
    assert again.status == "firing" and again.reminder
    done = c.update(NOW + 3700, "check_failed", active=False, **keys)
    assert done.status == "resolved" and "recovered" in done.summary
    assert c.update(NOW + 3701, "check_failed", active=False, **keys) is None
    # Conditions of one account are independent; a removed account is forgotten.
    assert c.update(NOW, "key_age_exceeded", active=True, **keys).kind == "key_age_exceeded"
    c.forget("desk")
    assert c.update(NOW + 1, "key_age_exceeded", active=False, **keys) is None


# --- the exposition ----------------------------------------------------------------------------


def exposition(state: MonitorState) -> dict:
    text = generate_latest(registry_for(state, clock=lambda: NOW + 100)).decode()
    out: dict = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_the_exposition_has_the_contract_names_and_labels():
    state = MonitorState()
    state.up = 1
    state.accounts["spot"] = AccountState("spot", "kiiex", "prod", check_success=1, check_duration_s=0.2,
                                          last_check_at=NOW, token_kind="session", token_expires_at=NOW + 3600,
                                          rate=RateSeen(600, 599, NOW + 60), skew_s=0.4, key_since=NOW,
                                          key_max_age_s=90 * 86400, login_blocked=1)
    state.accounts["desk"] = AccountState("desk", "powertrade", "test", check_success=0, token_kind="jwt",
                                          token_expires_at=NOW + 30, key_since=NOW - 50)
    got = exposition(state)
    assert set(got) == CONTRACT
    assert got["keyward_up"] == [({}, 1)]
    assert ({"account": "spot", "venue": "kiiex", "env": "prod"}, 1) in got["keyward_account_info"]
    # A minted JWT is not a session: no expiry for a venue that signs each request.
    assert got["keyward_token_expiry_timestamp_seconds"] == [({"account": "spot", "venue": "kiiex"}, NOW + 3600)]
    assert ({"account": "desk", "venue": "powertrade"}, 150) in got["keyward_key_age_seconds"]  # at scrape time
    assert {tuple(sorted(labels)) for labels, _ in got["keyward_checks_total"]} == {("account", "result", "venue")}
    # Values never seen are absent, not zero.
    assert all(labels["account"] == "spot" for labels, _ in got["keyward_clock_skew_seconds"])


def test_the_textfile_is_replaced_whole_with_nothing_left_beside_it(tmp_path):
    state = MonitorState()
    registry = registry_for(state)
    target = tmp_path / "keyward.prom"
    target.write_text("old")
    old_umask = os.umask(0o077)  # as under the printed systemd unit
    try:
        for up in (0, 1):
            state.up = up
            write_textfile(target, registry)
            assert f"keyward_up {up:.1f}" in target.read_text()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # node_exporter runs as another user
    assert [p.name for p in tmp_path.iterdir()] == ["keyward.prom"]
    with pytest.raises(OSError):
        write_textfile(tmp_path / "missing-dir" / "k.prom", registry)
    assert [p.name for p in tmp_path.iterdir()] == ["keyward.prom"]


@pytest.mark.parametrize("value, expected", [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:0", ("::1", 0)), ("0.0.0.0:9464", ("0.0.0.0", 9464)),
    ("localhost:9464", ("127.0.0.1", 9464)), ("off", None),
])
def test_listen_addresses(value, expected):
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["9464", "127.0.0.1", "127.0.0.1:x", "example.com:9464", "1.2.3.4:70000", "[::1]9464"])
def test_bad_listen_addresses(value):
    with pytest.raises(ValueError):
        parse_listen(value)


# --- the files for the service around it ----------------------------------------------------------


def test_systemd_words_are_quoted_and_specifiers_escaped():
    assert systemd_quote("/usr/bin/keyward") == "/usr/bin/keyward"
    assert systemd_quote("/my vault/v.kw") == '"/my vault/v.kw"'
    assert systemd_quote("50%") == '"50%%"'
    assert systemd_quote("$HOME") == '"$$HOME"'
    assert systemd_quote('say "hi"') == '"say \\"hi\\""'


def test_the_rules_name_only_a_plain_job():
    assert 'up{job="prom-keyward"} == 0' in alert_rules("prom-keyward")
    with pytest.raises(InputError):
        alert_rules('x"} or vector(1) #')


def test_the_status_file_round_trips_and_is_read_as_hostile_input(tmp_path):
    from vault.ops.monitor_status import process_start

    path = status_path(tmp_path / "v.kw", base=tmp_path / "state")
    assert path == status_path(tmp_path / "." / "v.kw", base=tmp_path / "state")  # one per resolved vault
    assert read_status(path) is None
    write_status(path, {"pid": os.getpid(), "proc_start": process_start(os.getpid()), "started_at": NOW,
                        "last_check_at": NOW + 5, "accounts": 3, "failing": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    got = read_status(path)
    assert got.running and got.accounts == 3 and got.failing == 1
    assert got.describe(NOW + 17) == "monitor: last check 12 s ago, 1 failing"
    # A pid that is no longer this process (the monitor died, the pid was reused): stopped.
    write_status(path, {"pid": os.getpid(), "proc_start": "1", "started_at": NOW, "last_check_at": NOW})
    assert not read_status(path).running
    assert read_status(path).describe(NOW + 600) == "monitor stopped (last ran 10 min ago)"
    for junk in (b"", b"\xff", b"[]", b'{"v": 1}', b'{"v": 1, "pid": true, "started_at": 1}',
                 b'{"v": 1, "pid": 5, "started_at": "x"}', b'{"v": 2, "pid": 5, "started_at": 1}',
                 b'{"v": 1, "pid": 5, "started_at": 1, "pad": "' + b"a" * 70000 + b'"}'):
        path.write_bytes(junk)
        assert read_status(path) is None


# --- notifiers -------------------------------------------------------------------------------------


EVENT = Event("check_failed", "firing", "desk", "powertrade", "prod", "health check of desk (powertrade) failed",
              "keyward doctor desk", "PowerTrade refused <b>x</b> & more", "2027-01-15T08:00:00Z")


def test_the_command_notifier_gets_the_event_on_stdin_and_not_the_passphrase_source(tmp_path, monkeypatch):
    out = tmp_path / "got"
    script = tmp_path / "n.py"
    script.write_text(f"import os, sys\nopen({str(out)!r}, 'w').write(sys.stdin.read() + '\\n' + "
                      "repr(sorted(k for k in os.environ if 'CREDENTIALS' in k or k.startswith('KEYWARD_P'))))")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.setenv("KEYWARD_PASSPHRASE_FILE", str(tmp_path / "p"))
    CommandNotifier([sys.executable, str(script)]).send(EVENT)
    body, env = out.read_text().split("\n")
    assert json.loads(body)["account"] == "desk" and env == "[]"
    with pytest.raises(RuntimeError, match="exit code 3"):
        CommandNotifier([sys.executable, "-c", "raise SystemExit(3)"]).send(EVENT)
    with pytest.raises(RuntimeError, match="not found"):
        CommandNotifier([str(tmp_path / "nope")]).send(EVENT)


@pytest.mark.parametrize("url", ["http://192.0.2.1/h", "ftp://127.0.0.1/h", "https://user:pw@example.com/h", "nope"])
def test_webhooks_are_https_or_loopback_http_without_credentials_in_the_url(url):
    with pytest.raises(InputError):
        WebhookNotifier(url)


def test_the_webhook_posts_json_and_a_refusal_is_an_error(tmp_path):
    got: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append((self.path, self.headers["Content-Type"], self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(500 if self.path == "/fail" else 200)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        hook = WebhookNotifier(base + "/ok")
        hook.send(EVENT)
        assert got[0][0] == "/ok" and got[0][1] == "application/json" and json.loads(got[0][2])["kind"] == "check_failed"
        with pytest.raises(RuntimeError, match="HTTP 500"):
            WebhookNotifier(base + "/fail").send(EVENT)
        assert hook.name == "webhook to 127.0.0.1"
        hook.close()
    finally:
        server.shutdown()
        server.server_close()


def test_desktop_notifications_show_text_not_markup(tmp_path):
    record = tmp_path / "argv"
    fake = tmp_path / "notify-send"
    fake.write_text(f"#!{sys.executable}\nimport sys, json\nopen({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n")
    fake.chmod(0o755)
    DesktopNotifier(str(fake)).send(EVENT)
    argv = json.loads(record.read_text())
    assert argv[:4] == ["--app-name=keyward", "--urgency=critical", "--", "keyward: health check of desk (powertrade) failed"]
    assert "&lt;b&gt;x&lt;/b&gt; &amp; more" in argv[4] and "<b>" not in argv[4]


def test_a_failing_notifier_is_logged_and_the_others_still_run(tmp_path):
    lines: list[str] = []
    delivered: list[Event] = []

    class Broken:
        name = "broken"

        def send(self, event):
            raise ValueError("a message that might quote anything")

    class Good:
        name = "good"

        def send(self, event):
            delivered.append(event)

    d = Dispatcher([Broken(), Good()], lines.append)
    d.start()
    d.submit(EVENT)
    d.stop()
    assert delivered == [EVENT]
    assert any("notification by broken failed (ValueError)" in line for line in lines)
    assert not any("might quote" in line for line in lines)


# --- the loop in process: real VenueOps on a real vault, the real sandbox ---------------------------


def lose_the_vault_after_a_check(monitor, service) -> None:
    """Once `desk` has been checked, lock the vault under the monitor: it reports down."""
    wait_until(lambda: monitor.state.accounts.get("desk") is not None
               and monitor.state.accounts["desk"].checks["success"] >= 1)
    service.lock()
    wait_until(lambda: monitor.state.up == 0)


def run_in_thread(monitor):
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", monitor.run()), daemon=True)
    thread.start()
    return thread, result


def wait_until(predicate, timeout=20.0):
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_textfile_that_cannot_be_written_is_logged_once_and_once_more_when_it_can(service, sandbox_account, tmp_path):
    from vault.monitor.runner import Monitor
    from vault.ops.venue_ops import VenueOps

    sandbox_account("powertrade", "desk")
    target_dir = tmp_path / "textfile"
    target_dir.mkdir()
    lines: list[str] = []
    monitor = Monitor(lambda: (VenueOps(service, notify=lines.append), "local"), interval_s=1, listen=None,
                      textfile=target_dir / "keyward.prom", log=lines.append)
    thread, result = run_in_thread(monitor)
    try:
        wait_until(lambda: (target_dir / "keyward.prom").exists())
        os.rename(target_dir, tmp_path / "moved")
        wait_until(lambda: any("cannot write the textfile" in line for line in lines))
        with monitor.state.lock:
            before = monitor.state.accounts["desk"].checks["success"]
        wait_until(lambda: monitor.state.accounts["desk"].checks["success"] >= before + 3)
        assert sum("cannot write the textfile" in line for line in lines) == 1
        target_dir.mkdir()
        wait_until(lambda: any("the textfile is written again" in line for line in lines))
    finally:
        monitor.stop()
        thread.join(30)
    assert result["rc"] == 0 and not (target_dir / "keyward.prom").exists()


def test_a_vault_that_cannot_be_read_sets_keyward_up_0_and_the_loop_sleeps(service, sandbox_account, tmp_path):
    """Locked under the monitor (as when an agent stops and there is no passphrase): up 0,
    one log line, a retry every 30 s, and no spinning in between."""
    import time

    from vault.monitor.runner import Monitor
    from vault.ops.venue_ops import VenueOps

    class Counting(Monitor):
        wakeups = 0

        def _sleep(self, timeout):
            type(self).wakeups += 1
            super()._sleep(timeout)

    sandbox_account("powertrade", "desk")
    lines: list[str] = []
    monitor = Counting(lambda: (VenueOps(service, notify=lines.append), "local"), interval_s=1, listen=None,
                       log=lines.append)
    thread, result = run_in_thread(monitor)
    try:
        lose_the_vault_after_a_check(monitor, service)
        Counting.wakeups = 0
        time.sleep(1.5)  # (not a timing assertion: a spinning loop wakes thousands of times)
        assert Counting.wakeups < 10
        assert sum("cannot read the vault" in line for line in lines) == 1
    finally:
        monitor.stop()
        thread.join(30)
    assert result["rc"] == 0


def test_the_monitor_comes_back_when_the_vault_can_be_read_again(service, vault_path, sandbox_account, monkeypatch):
    """The agent went and came back (here: the vault locked, then unlocked anew)."""
    from tests.conftest import PASSPHRASE
    from vault.core.service import VaultService
    from vault.monitor import runner
    from vault.monitor.runner import Monitor
    from vault.ops.venue_ops import VenueOps

    monkeypatch.setattr(runner, "REOPEN_EVERY_S", 0.2)
    sandbox_account("powertrade", "desk")
    lines: list[str] = []
    opened: list[VaultService] = []

    def open_ops():
        svc = service if not opened else VaultService.unlock(vault_path, PASSPHRASE)
        opened.append(svc)
        if len(opened) == 2:  # the first attempt to reopen finds it still locked
            svc.lock()
        return VenueOps(svc, notify=lines.append), "local"

    monitor = Monitor(open_ops, interval_s=1, listen=None, log=lines.append)
    thread, result = run_in_thread(monitor)
    try:
        lose_the_vault_after_a_check(monitor, service)
        wait_until(lambda: monitor.state.up == 1)
        done = monitor.state.accounts["desk"].checks["success"]
        wait_until(lambda: monitor.state.accounts["desk"].checks["success"] > done)
        assert any("still cannot read the vault" in line for line in lines)
        assert any("the vault is readable again" in line for line in lines)
    finally:
        monitor.stop()
        thread.join(30)
    assert result["rc"] == 0 and len(opened) == 3


def test_a_renewal_that_keeps_failing_backs_off(service, sandbox, sandbox_account, monkeypatch):
    """A TradeReady secret changed under a cached bearer: the renewal fails, and each
    failure doubles the wait before the next login (not one a minute forever)."""
    import time

    from vault.core.model import Token
    from vault.monitor import runner
    from vault.monitor.runner import Monitor
    from vault.ops.venue_ops import VenueOps

    monkeypatch.setattr(runner, "RENEW_RETRY_S", 0.1)
    tr = sandbox.issue("tradeready", display_name="x")
    sandbox_account("tradeready", "bot", fields={"api_key": tr["api_key"], "api_secret": "sk_live_" + "9" * 40},
                    settings={"check_interval_s": 3600})
    now = time.time()
    service.update_account("bot", lambda a: setattr(a, "token", Token("cached-bearer", now - 3000, now + 600, "bearer")))
    lines: list[str] = []
    monitor = Monitor(lambda: (VenueOps(service, notify=lines.append), "local"), listen=None, log=lines.append)
    thread, result = run_in_thread(monitor)
    try:
        wait_until(lambda: monitor.state.accounts.get("bot") is not None
                   and monitor.state.accounts["bot"].refreshes["failure"] >= 4)
        plan = monitor.plans["bot"]
        assert plan.renew_failures >= 4
        assert plan.next_refresh - time.time() > 0.1 * 2 ** 3 * 0.5  # the fourth failure waits 0.8 s
        assert sum("renewing the bearer failed" in line for line in lines) >= 4
        assert sum("session refresh of bot (tradeready) failed" in line for line in lines) == 1  # notified once
    finally:
        monitor.stop()
        thread.join(30)
    assert result["rc"] == 0
