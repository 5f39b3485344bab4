"""`keyward monitor` end to end: the real command in a subprocess, against the sandbox on
127.0.0.1, its /metrics scraped over HTTP and parsed with prometheus_client.parser.

Waits are bounded polls on what the monitor publishes (never sleep-then-assert)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PASSPHRASE, REPO
from vault.core.service import VaultService

METRICS_LINE = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")


def poll(predicate, timeout: float = 20.0, every: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Scrape(dict):
    """{(name, ((label, value), ...)): value} of one /metrics answer, and its text."""

    text = ""

    def get_value(self, name: str, **labels: str) -> float | None:
        return self.get((name, tuple(sorted(labels.items()))))

    def names(self) -> set[str]:
        return {name for name, _ in self}


def parse(text: str) -> Scrape:
    out = Scrape()
    out.text = text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


class MonitorProcess:
    """`keyward monitor` as a subprocess; its stderr collected line by line."""

    def __init__(self, kw, *args: str, passphrase: bool = True, env: dict[str, str] | None = None,
                 python: tuple[str, ...] = ()) -> None:
        cmd = [sys.executable, *python, "-m", "vault", "--vault", str(kw.vault_path)]
        if passphrase:
            cmd += ["--passphrase-file", str(kw.passphrase_file)]
        # The CLI's own XDG_STATE_HOME (conftest makes one per test): the agent records its
        # fallback socket directory there, so the monitor must look in the same place.
        self.env = {"XDG_STATE_HOME": str(Path(kw.env["HOME"]) / "state")} | kw.env | (env or {})
        self.proc = subprocess.Popen(cmd + ["monitor", *args], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port: int | None = None

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_started(self, timeout: float = 30.0) -> int:
        def found():
            if self.proc.poll() is not None:
                raise AssertionError(f"monitor exited {self.proc.returncode}: {self.stderr}")
            for line in self.lines:
                m = METRICS_LINE.search(line)
                if m:
                    return int(m.group(1))
            return None

        self.port = poll(found, timeout, what="the monitor to start")
        return self.port

    def scrape(self) -> Scrape:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as resp:
            return parse(resp.read().decode())

    def wait_metric(self, check, timeout: float = 20.0, what: str = "a metric"):
        def ok():
            if self.proc.poll() is not None:
                raise AssertionError(f"monitor exited {self.proc.returncode}: {self.stderr}")
            s = self.scrape()
            return s if check(s) else None

        return poll(ok, timeout, 0.2, what)

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)


@pytest.fixture
def monitors():
    started: list[MonitorProcess] = []

    def start(kw, *args: str, **kwargs) -> MonitorProcess:
        m = MonitorProcess(kw, *args, **kwargs)
        started.append(m)
        return m

    yield start
    for m in started:
        m.kill()


def accounts_of(vault_path: Path) -> list:
    return VaultService.unlock(vault_path, PASSPHRASE).accounts


def secrets_of(vault_path: Path) -> list[str]:
    """Every stored field value, every cached token, and each secret's masked form."""
    out = []
    for acct in accounts_of(vault_path):
        for value in acct.fields.values():
            if len(value) >= 8:
                out += [value, value[:4] + "…"]
                out += [line for line in value.splitlines() if len(line) >= 16 and "-----" not in line]
        if acct.token is not None:
            out.append(acct.token.value)
    return out


def checks(s: Scrape, label: str, venue: str, result: str = "success") -> float:
    return s.get_value("keyward_checks_total", account=label, venue=venue, result=result) or 0


# --- the whole picture -------------------------------------------------------------------


def test_metrics_cover_every_account_and_list_shows_what_the_monitor_saw(kw, sandbox, sandbox_account, monitors, tmp_path):
    venues = {"pt": "powertrade", "tr": "tradeready", "hs": "hypersolutions", "kx": "kiiex"}
    for label, venue in venues.items():
        sandbox_account(venue, label)
    textfile = tmp_path / "keyward.prom"
    m = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1", "--textfile", str(textfile))
    m.wait_started()
    s = m.wait_metric(lambda s: all(checks(s, lb, v) >= 2 for lb, v in venues.items()), what="two checks of each")

    assert s.get_value("keyward_up") == 1
    for label, venue in venues.items():
        keys = {"account": label, "venue": venue}
        assert s.get_value("keyward_account_info", env="sandbox", **keys) == 1
        assert s.get_value("keyward_check_success", **keys) == 1
        assert s.get_value("keyward_check_duration_seconds", **keys) > 0
        assert s.get_value("keyward_rate_limit_limit", **keys) > 0
        assert s.get_value("keyward_rate_limit_remaining", **keys) is not None
        assert s.get_value("keyward_rate_limit_reset_timestamp_seconds", **keys) > 0
        assert s.get_value("keyward_clock_skew_seconds", **keys) is not None
        assert 0 <= s.get_value("keyward_key_age_seconds", **keys) < 3600
        assert s.get_value("keyward_key_max_age_seconds", **keys) == 90 * 86400
        assert s.get_value("keyward_login_blocked", **keys) == 0
        assert s.get_value("keyward_refreshes_total", result="failure", **keys) == 0
    # Sessions have an expiry; venues that sign each request do not.
    assert s.get_value("keyward_token_expiry_timestamp_seconds", account="kx", venue="kiiex") > time.time()
    for label in ("pt", "hs"):
        assert s.get_value("keyward_token_expiry_timestamp_seconds", account=label, venue=venues[label]) is None

    # `keyward list` shows what the monitor saw: it was saved through the same transact.
    before = m.scrape()
    listed = {row["label"]: row for row in json.loads(kw("list", "--json").out)}
    after = m.scrape()
    for label, venue in venues.items():
        health = listed[label]["health"]
        assert health["ok"] is True
        checked = time.mktime(time.strptime(health["checked_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        first = before.get_value("keyward_last_check_timestamp_seconds", account=label, venue=venue)
        last = after.get_value("keyward_last_check_timestamp_seconds", account=label, venue=venue)
        assert first - 1 <= checked <= last  # one of the checks the monitor reported (ISO: whole seconds)

    # The node_exporter textfile says the same, and is complete.
    text = poll(lambda: textfile.read_text() if textfile.exists() else None, what="the textfile")
    assert parse(text).get_value("keyward_up") == 1
    assert not [p for p in textfile.parent.iterdir() if p.name.startswith(".")], "a temp file was left behind"

    # No secret, token or key prefix anywhere in what the monitor published or logged.
    published = m.scrape().text + text + m.stderr
    for secret in secrets_of(kw.vault_path):
        assert secret not in published

    # SIGTERM: exit 0, the endpoint goes away with keyward_up, and the textfile too.
    assert m.terminate() == 0, m.stderr
    with pytest.raises(urllib.error.URLError):
        m.scrape()
    assert not textfile.exists()
    assert "Traceback" not in m.stderr


# --- fault drills --------------------------------------------------------------------------


class Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    class Handler(Hook):
        received: list[dict] = []

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-path-token", Handler.received
    server.shutdown()
    server.server_close()


def notify_script(tmp_path: Path) -> tuple[str, Path]:
    """A real notifier command: appends each event (its stdin) as one line to a file."""
    events = tmp_path / "events.jsonl"
    script = tmp_path / "notify.py"
    script.write_text(f"import sys\nwith open({str(events)!r}, 'a') as fh:\n    fh.write(sys.stdin.read() + '\\n')\n")
    return f"{sys.executable} {script}", events


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_venue_that_starts_refusing_notifies_once_and_once_more_on_recovery(
        kw, sandbox, sandbox_account, monitors, tmp_path, webhook):
    sandbox_account("powertrade", "desk")
    command, events = notify_script(tmp_path)
    url, posted = webhook
    m = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1", "--jitter", "0",
                 "--notify-command", command, "--notify-webhook", url)
    m.wait_started()
    m.wait_metric(lambda s: s.get_value("keyward_check_success", account="desk", venue="powertrade") == 1)
    assert read_events(events) == [] and posted == []

    sandbox.config.fail_500 = True
    m.wait_metric(lambda s: s.get_value("keyward_check_success", account="desk", venue="powertrade") == 0,
                  what="the check to fail")
    # Two failing checks after the first: a notification per check would have had a second
    # (at least) delivered by now.
    m.wait_metric(lambda s: checks(s, "desk", "powertrade", "failure") >= 3, what="more failing checks")
    poll(lambda: len(read_events(events)) >= 1, what="the notification")
    [fired] = read_events(events)
    assert fired["kind"] == "check_failed" and fired["status"] == "firing" and fired["account"] == "desk"
    assert fired["venue"] == "powertrade" and fired["command"] == "keyward doctor desk"
    assert "HTTP 500" in fired["detail"]

    sandbox.config.fail_500 = False
    m.wait_metric(lambda s: s.get_value("keyward_check_success", account="desk", venue="powertrade") == 1,
                  what="the recovery")
    first = checks(m.scrape(), "desk", "powertrade")
    m.wait_metric(lambda s: checks(s, "desk", "powertrade") >= first + 2, what="more good checks")
    poll(lambda: len(posted) >= 2, what="the webhook's second event")
    got = read_events(events)
    assert [(e["kind"], e["status"]) for e in got] == [("check_failed", "firing"), ("check_failed", "resolved")]
    assert [(e["kind"], e["status"]) for e in posted] == [("check_failed", "firing"), ("check_failed", "resolved")]
    # The log names the webhook's host, never its path (often a secret itself).
    assert "secret-path-token" not in m.stderr
    published = json.dumps(got) + json.dumps(posted) + m.stderr
    for secret in secrets_of(kw.vault_path):
        assert secret not in published
    assert m.terminate() == 0


def test_a_failing_notifier_is_logged_and_the_monitor_carries_on(kw, sandbox, sandbox_account, monitors, tmp_path):
    sandbox_account("powertrade", "desk")
    sandbox.config.fail_503 = True
    m = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1", "--notify-command", str(tmp_path / "missing"))
    m.wait_started()
    poll(lambda: "notification by command missing failed (not found)" in m.stderr, what="the notifier's failure")
    failed = checks(m.scrape(), "desk", "powertrade", "failure")
    m.wait_metric(lambda s: checks(s, "desk", "powertrade", "failure") > failed, what="a check after that failure")
    assert m.terminate() == 0


def test_a_429_pushes_the_next_check_past_the_window_reset(kw, sandbox, sandbox_account, monitors):
    sandbox_account("powertrade", "desk")
    # A call waits out a 429 itself only within the vault's request deadline (3 s here):
    # a reset further away than that surfaces as a 429 (the default deadline, 60 s, would
    # make this a minute).
    VaultService.unlock(kw.vault_path, PASSPHRASE).transact(lambda d: setattr(d.settings, "request_deadline_s", 3.0))
    sandbox.configure(rate_limit=100, rate_window_s=3600)
    m = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1", "--jitter", "0")
    m.wait_started()
    s = m.wait_metric(lambda s: checks(s, "desk", "powertrade") >= 1, what="the first check")
    # Bots spend the window: from now on the venue refuses, until a reset `reset_in_s` from
    # now.  The window counts from the monitor's first request (published, rounded up, as
    # its reset minus 3600 s), so it is stretched to end that far from now, whatever the
    # monitor's start-up cost on a loaded machine.
    reset_in_s = 6.0
    first_request = s.get_value("keyward_rate_limit_reset_timestamp_seconds", account="desk", venue="powertrade") - 3600
    sandbox.configure(rate_limit=1, rate_window_s=time.time() + reset_in_s - first_request)
    s = m.wait_metric(lambda s: checks(s, "desk", "powertrade", "failure") == 1, what="the rate-limited check")
    # The 429 is out: the usual limit again, or the monitor's own checks from before the
    # bots would keep the next window full.  A check before the reset would now succeed,
    # and is caught below all the same.
    sandbox.configure(rate_limit=100)
    assert s.get_value("keyward_check_success", account="desk", venue="powertrade") == 0
    reset = s.get_value("keyward_rate_limit_reset_timestamp_seconds", account="desk", venue="powertrade")
    assert s.get_value("keyward_rate_limit_remaining", account="desk", venue="powertrade") == 0
    line = poll(lambda: next((ln for ln in m.lines if "rate-limited (HTTP 429)" in ln), None), what="the log line")
    when = re.search(r"next check at (\S+), after the window resets at (\S+)", line)
    assert when, line
    parse_iso = lambda t: time.mktime(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone  # noqa: E731
    assert parse_iso(when.group(1)) > parse_iso(when.group(2)) == reset

    # With a 1 s interval it would check again every second until the reset: it does not.
    good = checks(s, "desk", "powertrade")
    while time.time() < reset:
        s = m.scrape()
        assert checks(s, "desk", "powertrade", "failure") == 1 and checks(s, "desk", "powertrade") == good
        time.sleep(0.2)
    # And it comes back after the reset, inside the new window.
    s = m.wait_metric(lambda s: checks(s, "desk", "powertrade") > good, timeout=60, what="the check after the reset")
    assert s.get_value("keyward_last_check_timestamp_seconds", account="desk", venue="powertrade") >= reset
    assert s.get_value("keyward_check_success", account="desk", venue="powertrade") == 1
    assert checks(s, "desk", "powertrade", "failure") == 1
    assert m.terminate() == 0


# --- sessions -------------------------------------------------------------------------------


def kiiex_user(vault_path: Path, label: str) -> str:
    return next(a for a in accounts_of(vault_path) if a.label == label).fields["user_id"]


def test_a_kiiex_session_is_kept_alive_with_no_second_login(kw, sandbox, sandbox_account, monitors):
    # A 4 s idle window: a keep-alive every 2 s (half the window), each still 1 s clear of
    # the quarter-window margin below which VenueOps would log in again.
    sandbox.configure(kiiex_session_idle_s=4)
    # Checks once an hour: only the keep-alives can keep a 4 s idle session open.
    sandbox_account("kiiex", "spot", settings={"session_idle_s": 4, "check_interval_s": 3600})
    user = kiiex_user(kw.vault_path, "spot")
    m = monitors(kw, "--listen", "127.0.0.1:0")
    m.wait_started()
    s = m.wait_metric(lambda s: (s.get_value("keyward_refreshes_total", account="spot", venue="kiiex",
                                             result="success") or 0) >= 3, timeout=30, what="three keep-alives")
    assert sandbox.kiiex_attempts(user) == 1  # the first check's login, and no other
    # A keep-alive is the health call, so it counts as a check too: one scheduled check, the rest keep-alives.
    kept = s.get_value("keyward_refreshes_total", account="spot", venue="kiiex", result="success")
    assert checks(s, "spot", "kiiex") == kept + 1
    assert s.get_value("keyward_token_expiry_timestamp_seconds", account="spot", venue="kiiex") > time.time()
    assert m.terminate() == 0


def test_after_a_failed_kiiex_login_the_monitor_never_logs_in_again(kw, sandbox, sandbox_account, monitors):
    from tests.conftest import sandbox_fields

    fields = sandbox_fields(sandbox, "kiiex")
    fields["api_secret"] = "f" * len(fields["api_secret"])
    sandbox_account("kiiex", "spot", fields=fields)
    m = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1")
    m.wait_started()
    # The failed login's check and two more, neither of which logs in.
    s = m.wait_metric(lambda s: checks(s, "spot", "kiiex", "failure") >= 3, what="failing checks")
    assert s.get_value("keyward_login_blocked", account="spot", venue="kiiex") == 1
    assert sandbox.kiiex_attempts(fields["user_id"]) == 1
    assert m.terminate() == 0
    assert sandbox.kiiex_attempts(fields["user_id"]) == 1


def test_a_tradeready_bearer_is_renewed_before_it_expires(kw, sandbox, sandbox_account, monitors):
    sandbox.configure(tradeready_jwt_lifetime_s=4)  # renewed at half life: every 2 s
    sandbox_account("tradeready", "bot", settings={"check_interval_s": 3600})
    assert kw("login", "bot").code == 0  # a bot is using a bearer
    m = monitors(kw, "--listen", "127.0.0.1:0")
    m.wait_started()
    s = m.wait_metric(lambda s: (s.get_value("keyward_refreshes_total", account="bot", venue="tradeready",
                                             result="success") or 0) >= 2, timeout=30, what="two renewals")
    expiry = s.get_value("keyward_token_expiry_timestamp_seconds", account="bot", venue="tradeready")
    assert expiry > time.time()
    [row] = [r for r in json.loads(kw("list", "--json").out) if r["label"] == "bot"]
    assert row["token"]["kind"] == "bearer"
    assert "renewed the bearer" in m.stderr
    # The bearer in the vault works: a request with it is accepted.
    assert kw("check", "bot").code == 0
    assert m.terminate() == 0


# --- the process ----------------------------------------------------------------------------


def test_a_killed_monitor_comes_back_under_restart_on_failure_without_a_second_login(
        kw, sandbox, sandbox_account, monitors):
    sandbox_account("kiiex", "spot")
    user = kiiex_user(kw.vault_path, "spot")
    clean = {0}  # Restart=on-failure: a clean exit code (or SIGTERM/SIGINT/SIGHUP/SIGPIPE) is not restarted

    def should_restart(rc: int) -> bool:
        return rc not in clean and rc not in (-signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP, -signal.SIGPIPE)

    m = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1")
    m.wait_started()
    m.wait_metric(lambda s: checks(s, "spot", "kiiex") >= 2)
    m.kill()
    assert should_restart(m.proc.returncode)

    again = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1")
    again.wait_started()
    again.wait_metric(lambda s: checks(s, "spot", "kiiex") >= 2, what="checks after the restart")
    assert sandbox.kiiex_attempts(user) == 1  # the cached session carried over: no duplicate login
    rc = again.terminate()
    assert rc == 0 and not should_restart(rc)
    assert "stopping" in again.stderr


def test_through_a_tokens_only_agent_without_a_passphrase(kw, sandbox, sandbox_account, monitors):
    sandbox_account("powertrade", "desk")
    assert kw("unlock", "--tokens-only", "--ttl", "10m").code == 0
    try:
        m = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1", passphrase=False)
        m.wait_started()
        m.wait_metric(lambda s: checks(s, "desk", "powertrade") >= 2)
        assert "through the unlock agent" in m.stderr
        # The agent goes away and there is no passphrase: keyward_up says so, the process stays.
        assert kw("lock", passphrase=False).code == 0
        m.wait_metric(lambda s: s.get_value("keyward_up") == 0, what="keyward_up 0")
        assert "cannot read the vault" in m.stderr
        assert m.terminate() == 0
    finally:
        kw("lock", passphrase=False)


def test_startup_failures_are_one_line_with_their_own_exit_codes(kw, vault, sandbox, tmp_path):
    from vault.core.errors import AccountNotFound, InputError, WrongPassphrase

    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    r = kw("--passphrase-file", str(wrong), "monitor", "--listen", "127.0.0.1:0", passphrase=False)
    assert r.code == WrongPassphrase.exit_code and len(r.err.strip().splitlines()) == 1, r.err

    r = kw("monitor", "--notify-webhook", "http://192.0.2.1/hook")
    assert r.code == InputError.exit_code and "https" in r.err and len(r.err.strip().splitlines()) == 1

    r = kw("monitor", "--listen", "localhost:notaport")
    assert r.code == InputError.exit_code and "HOST:PORT" in r.err

    r = kw("monitor", "nosuch", "--listen", "127.0.0.1:0")
    assert r.code == AccountNotFound.exit_code and "nosuch" in r.err

    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = kw("monitor", "--listen", f"127.0.0.1:{taken.getsockname()[1]}")
    assert r.code == InputError.exit_code and "cannot listen" in r.err and len(r.err.strip().splitlines()) == 1
    assert "Traceback" not in r.err


def test_a_non_loopback_listen_address_is_taken_only_with_a_warning(kw, vault, monitors):
    m = monitors(kw, "--listen", "0.0.0.0:0")
    poll(lambda: "warning: serving metrics on 0.0.0.0" in m.stderr or m.proc.poll() is not None,
         what="the warning")
    assert "warning: serving metrics on 0.0.0.0" in m.stderr, m.stderr
    assert m.terminate() == 0


def test_print_systemd_is_a_unit_with_load_credential_and_restart_on_failure(kw, vault, tmp_path):
    r = kw("monitor", "--print-systemd", "--interval", "30", "--notify-desktop")
    assert r.code == 0, r.err
    unit = r.out
    assert "Restart=on-failure" in unit
    assert f"LoadCredential=keyward-passphrase:{kw.passphrase_file}" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert f"--vault {kw.vault_path.resolve()} monitor --interval 30 --notify-desktop" in exec_start
    assert "--passphrase-file" not in exec_start  # the credential replaces it
    analyze = subprocess.run(["which", "systemd-analyze"], capture_output=True, text=True).stdout.strip()
    if analyze:
        path = tmp_path / "keyward-monitor.service"
        path.write_text(unit)
        done = subprocess.run([analyze, "verify", "--man=no", str(path)], capture_output=True, text=True,
                              env=kw.env)
        # verify checks syntax and that ExecStart's binary exists; it must not complain about our unit.
        assert "keyward-monitor.service:" not in done.stderr, done.stderr


def test_the_systemd_credential_unlocks_the_vault(kw, sandbox, sandbox_account, monitors, tmp_path):
    sandbox_account("powertrade", "desk")
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    (creds / "keyward-passphrase").write_text(PASSPHRASE + "\n")
    m = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1", passphrase=False,
                 env={"CREDENTIALS_DIRECTORY": str(creds)})
    m.wait_started()
    m.wait_metric(lambda s: checks(s, "desk", "powertrade") >= 1)
    assert "unlocked here" in m.stderr
    assert m.terminate() == 0


assert REPO  # the CLI subprocesses run this checkout (PYTHONPATH set by the kw fixture)


def test_check_interval_s_is_a_setting_of_every_venue_and_the_monitor_honours_it(kw, sandbox, sandbox_account, monitors):
    from vault.core.errors import InputError

    venues = {"pt": "powertrade", "tr": "tradeready", "hs": "hypersolutions", "kx": "kiiex"}
    for label, venue in venues.items():
        sandbox_account(venue, label)
        r = kw("setting", label, "check_interval_s", "3600")
        assert r.code == 0, r.err
    assert kw("setting", "pt", "check_interval_s", "0").code == InputError.exit_code
    rows = json.loads(kw("setting", "kx", "--json").out)
    assert {"name": "check_interval_s", "value": 3600} in [{k: r[k] for k in ("name", "value")} for r in rows]

    # The control: an account without the setting, checked every --interval (1 s).
    sandbox_account("powertrade", "ctl")

    # No jitter: every first check at start-up, the control's every second after.
    m = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1", "--jitter", "0")
    m.wait_started()
    m.wait_metric(lambda s: all(checks(s, lb, v) == 1 for lb, v in venues.items()), what="the first checks")
    # The control's third check comes two intervals after the first checks: by then
    # --interval 1 would have checked each of them again.
    s = m.wait_metric(lambda s: checks(s, "ctl", "powertrade") >= 3, what="the control's third check")
    assert all(checks(s, lb, v) == 1 for lb, v in venues.items()), s.text
    assert m.terminate() == 0


def test_the_running_monitor_never_imports_textual(kw, sandbox, sandbox_account, monitors):
    """The CLI path stays free of textual, the long-running monitor included (what it
    imported, from python -X importtime, after it has checked, served and notified)."""
    sandbox_account("powertrade", "desk")
    m = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1", "--notify-command", "true", python=("-X", "importtime"))
    m.wait_started()
    sandbox.config.fail_500 = True
    m.wait_metric(lambda s: checks(s, "desk", "powertrade", "failure") >= 1)
    sandbox.config.fail_500 = False
    m.wait_metric(lambda s: checks(s, "desk", "powertrade") >= 2)
    assert m.terminate() == 0
    imported = [line.rsplit("|", 1)[1].strip() for line in m.lines if line.startswith("import time:")]
    assert "prometheus_client" in imported  # the probe sees imports
    assert not [name for name in imported if name.split(".")[0] in ("textual", "tui")]


def test_notify_desktop_without_notify_send_says_how_to_get_it(kw, vault, tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    r = kw("monitor", "--notify-desktop", "--print-systemd", env={"PATH": str(bare)})
    assert r.code == 0
    assert "notify-send is not installed" in r.err and "libnotify-bin" in r.err


def test_one_monitor_per_vault(kw, sandbox, sandbox_account, monitors):
    from vault.core.errors import VaultBusy, VaultNotFound

    sandbox_account("powertrade", "desk")
    first = monitors(kw, "--listen", "127.0.0.1:0")
    first.wait_started()
    r = kw("monitor", "--listen", "127.0.0.1:0", env={"XDG_STATE_HOME": first.env["XDG_STATE_HOME"]}, timeout=30)
    assert r.code == VaultBusy.exit_code and f"already runs on this vault (pid {first.proc.pid})" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert first.terminate() == 0
    # Once it stopped, another may start (the kernel released the lock).
    again = monitors(kw, "--listen", "127.0.0.1:0")
    again.wait_started()
    assert again.terminate() == 0
    # No vault at all: one line, its own code.
    r = kw("--vault", str(kw.vault_path.with_name("none.kw")), "monitor", "--listen", "127.0.0.1:0")
    assert r.code == VaultNotFound.exit_code and len(r.err.strip().splitlines()) == 1, r.err
