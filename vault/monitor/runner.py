"""The monitor's loop: one thread that schedules, a few that talk to venues.

The main thread owns the schedule and the state.  Due work (a health check, a session
keep-alive, a bearer renewal) goes to a small pool of worker threads, which call the ops
interface only (VenueOps or the unlock agent's client: the same method names) and hand
back what they saw; the main thread turns that into metrics, notifications and the next
due time.  Between due times it sleeps on a pipe that a finished job, or SIGTERM/SIGINT,
writes a byte to: no polling, so an idle monitor costs nothing.

Everything a check learns is saved by VenueOps itself (`check` records the health, the
rate limit and the slid session through `transact`), so `keyward list` and the dashboard
show what the monitor saw.
"""

from __future__ import annotations

import heapq
import os
import queue
import random
import select
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vault.core.errors import AccountNotFound, AgentError, InputError, KeywardError, VaultBusy, VaultError
from vault.core.model import iso, parse_iso
from vault.monitor import schedule
from vault.monitor.metrics import AccountState, MonitorState, registry_for, serve, write_textfile
from vault.monitor.notify import Conditions, Dispatcher
from vault.monitor.schedule import RateSeen

WORKERS = 4
FLUSH_EVERY_S = 1.0  # textfile and status file: at most once a second
LABELS_EVERY_S = 30.0  # new and removed accounts are noticed this fast
REOPEN_EVERY_S = 30.0  # after the vault became unreadable (the agent stopped, say)
RENEW_RETRY_S = 60.0  # a failed renewal is retried no sooner than this, doubling each time
RENEW_RETRY_MAX_S = 3600.0
MAX_SLEEP_S = 60.0
SKEW_NOTIFY_S = 5.0


def _log_to_stderr(message: str, _lock: threading.Lock = threading.Lock()) -> None:
    with _lock:
        print(f"keyward monitor: {message}", file=sys.stderr, flush=True)


@dataclass
class Outcome:
    label: str
    action: str  # "check", "keepalive" or "renew"
    health: Any = None
    duration_s: float = 0.0
    summary: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    refresh_error: str | None = None  # a failed renewal's one-line message
    gone: bool = False  # the account was removed meanwhile
    broken: str | None = None  # the vault cannot be read: why


@dataclass
class Plan:
    next_check: float
    next_refresh: float | None = None
    refresh_action: str | None = None  # "keepalive" | "renew"
    busy: bool = False
    renew_failures: int = 0  # in a row: each one doubles the wait before the next try

    @property
    def due(self) -> float:
        return self.next_check if self.next_refresh is None else min(self.next_check, self.next_refresh)


class Monitor:
    def __init__(
        self,
        open_ops: Callable[[], tuple[Any, str]],
        *,
        labels: list[str] | None = None,
        interval_s: float = schedule.DEFAULT_INTERVAL_S,
        jitter: float = schedule.DEFAULT_JITTER,
        listen: tuple[str, int] | None = ("127.0.0.1", 9464),
        textfile: Path | None = None,
        dispatcher: Dispatcher | None = None,
        reminder_s: float | None = None,
        status_path: Path | None = None,
        log: Callable[[str], None] = _log_to_stderr,
        workers: int = WORKERS,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._open_ops = open_ops
        self.only = list(labels) if labels else None
        self.interval_s = interval_s
        self.jitter = jitter
        self.listen = listen
        self.textfile = textfile
        self.log = log
        self.dispatcher = dispatcher or Dispatcher([], log)
        self.conditions = Conditions(reminder_s) if reminder_s is not None else Conditions()
        self.status_path = status_path
        self.workers = workers
        self.rng = rng or random.Random()
        self.clock = clock
        self.state = MonitorState()
        self.registry = registry_for(self.state, clock)
        self.ops: Any = None
        self.plans: dict[str, Plan] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._results: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        self._stop = False
        self._dirty = True
        self._flushed_at = 0.0
        self._next_labels = 0.0
        self._reopen_at: float | None = None
        self._server: Any = None
        self._problems: dict[str, str | None] = {}
        self._status_written = False
        self._lock_fd: int | None = None
        self.address: tuple[str, int] | None = None
        self.started_at = clock()

    # --- lifecycle ---------------------------------------------------------------------

    def stop(self, *_: Any) -> None:
        """Ask the loop to end (safe in a signal handler: a flag and a byte, no lock)."""
        self._stop = True
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: the loop wakes anyway

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or stop()); 0 on a clean stop.  Startup failures
        (no vault, wrong passphrase, port taken) raise KeywardError before anything runs."""
        previous = {}
        if threading.current_thread() is threading.main_thread():  # (tests run it in a thread)
            previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._claim()
            self.ops, how = self._open_ops()
            labels = self._labels()  # an unknown label given on the command line fails here
            self._set_up(1)
            if self.listen is not None:
                self._start_server()
            self._sync_labels(labels)
            self.dispatcher.start()
            where = f"; metrics on http://{self._url_host()}:{self.address[1]}/metrics" if self.address else ""
            via = "through the unlock agent" if how == "agent" else "with the vault unlocked here"
            text = f"; textfile {self.textfile}" if self.textfile else ""
            self.log(f"started (pid {os.getpid()}): {len(self.plans)} account(s), {via}{where}{text}")
            self._loop()
            self.log("stopping (signal received)")
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._shutdown()

    def _claim(self) -> None:
        """One monitor per vault: an exclusive lock beside the status file, held until exit
        (the kernel drops it when the process dies, so a crash never leaves it behind)."""
        import fcntl

        if self.status_path is None:
            return
        lock_path = self.status_path.with_suffix(".lock")
        lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            pid = f" (pid {other})" if other.isdigit() else ""
            raise VaultBusy(
                f"a keyward monitor already runs on this vault{pid}",
                hint="stop it first (`systemctl --user stop keyward-monitor`, or kill that pid)",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _url_host(self) -> str:
        host = self.address[0] if self.address else ""
        return f"[{host}]" if ":" in host else host

    def _start_server(self) -> None:
        from vault.monitor.metrics import is_loopback

        host, port = self.listen  # type: ignore[misc]
        if not is_loopback(host):
            self.log(f"warning: serving metrics on {host}, beyond this machine: anyone who can reach port {port} "
                     "sees account labels and their health (no secrets); firewall it or use 127.0.0.1")
        try:
            self._server, _thread = serve(self.registry, host, port)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                             hint="pick another --listen HOST:PORT, or stop what holds that port") from None
        self.address = self._server.server_address[:2]

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.dispatcher.stop()
        if self.textfile is not None:
            try:  # keyward_up goes away with the monitor, as a scrape target's would
                os.unlink(self.textfile)
            except OSError:
                pass
        if self.status_path is not None and self._status_written:  # not for a monitor that never ran
            self._write_status(stopped=True)
        close = getattr(self.ops, "close", None)
        if callable(close):
            close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # (releases the lock)
            self._lock_fd = None
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    # --- the loop ----------------------------------------------------------------------

    def _loop(self) -> None:
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="keyward-check") as pool:
            while not self._stop:
                now = self.clock()
                self._drain()
                if self._reopen_at is not None and now >= self._reopen_at:
                    self._reopen()
                if self._reopen_at is None and now >= self._next_labels:
                    self._refresh_labels()
                if self._reopen_at is None:
                    self._dispatch_due(pool, now)
                self._flush(now)
                self._sleep(self._timeout(self.clock()))
            pool.shutdown(wait=True, cancel_futures=True)
            self._drain()
            self._flush(self.clock(), force=True)

    def _timeout(self, now: float) -> float:
        wake = [now + MAX_SLEEP_S]
        if self._reopen_at is not None:  # nothing else runs until the vault is readable again
            wake.append(self._reopen_at)
        else:
            wake.append(self._next_labels)
            if self._heap:
                wake.append(self._heap[0][0])
        if self._dirty:
            wake.append(self._flushed_at + FLUSH_EVERY_S)
        return max(0.0, min(wake) - now)

    def _sleep(self, timeout: float) -> None:
        if self._stop:
            return
        try:
            ready, _, _ = select.select([self._wake_r], [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries select itself
            return
        if ready:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass

    def _schedule(self, label: str) -> None:
        plan = self.plans.get(label)
        if plan is None or plan.busy:
            return
        self._seq += 1
        heapq.heappush(self._heap, (plan.due, self._seq, label))

    def _dispatch_due(self, pool: ThreadPoolExecutor, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            due, _, label = heapq.heappop(self._heap)
            plan = self.plans.get(label)
            if plan is None or plan.busy or plan.due != due:
                continue  # removed, running, or rescheduled since: a stale entry
            if plan.next_check <= now:
                action = "check"
            else:
                action = plan.refresh_action or "check"
            plan.busy = True
            pool.submit(self._job, label, action)

    # --- jobs (worker threads) ---------------------------------------------------------

    def _job(self, label: str, action: str) -> None:
        out = Outcome(label, action)
        ops = self.ops
        try:
            started = time.perf_counter()
            if action == "renew":
                try:
                    ops.login(label)  # the Credentials are dropped at once: the monitor hands out nothing
                except (AccountNotFound, VaultError, AgentError):
                    raise
                except KeywardError as err:
                    out.refresh_error = str(err)
            else:
                out.health = ops.check(label)
            out.duration_s = time.perf_counter() - started
            out.summary = ops.summary(label)
            detail = ops.account_detail(label)
            settings = detail.get("settings") if isinstance(detail, dict) else None
            out.settings = dict(settings) if isinstance(settings, dict) else {}
        except AccountNotFound:
            out.gone = True
        except KeywardError as err:
            out.broken = str(err)
        except Exception as exc:  # a bug: say which, never what (no traceback, no values)
            out.broken = f"internal error ({type(exc).__name__})"
        self._results.put(out)
        self._wake()

    # --- results (main thread) ---------------------------------------------------------

    def _drain(self) -> None:
        while True:
            try:
                out = self._results.get_nowait()
            except queue.Empty:
                return
            plan = self.plans.get(out.label)
            if plan is not None:
                plan.busy = False
            if out.gone:
                self._drop(out.label)
            elif out.broken is not None:
                self._broken(out.broken)
                if plan is not None:
                    self._schedule(out.label)
            elif plan is not None:
                self._apply(out, plan)
                self._schedule(out.label)
            self._dirty = True

    def _apply(self, out: Outcome, plan: Plan) -> None:
        now = self.clock()
        with self.state.lock:
            st = self.state.accounts.get(out.label)
            if st is None:
                return
            before = (st.token_kind, st.token_issued_at)
            self._absorb(st, out.summary or {}, out.settings)
            renewed = st.token_kind in ("bearer", "session") and (st.token_kind, st.token_issued_at) != before \
                and before[1] is not None
            h = out.health
            if h is not None:
                st.check_success = 1 if h.ok else 0
                st.check_duration_s = round(out.duration_s, 6)
                st.last_check_at = h.checked_at
                st.skew_s = h.skew_s
                st.checks["success" if h.ok else "failure"] += 1
            refreshed: bool | None = None
            if out.action == "renew":
                refreshed = out.refresh_error is None
            elif out.action == "keepalive":
                refreshed = bool(h is not None and h.ok)
            elif renewed:
                refreshed = True  # a check that had to log in again (a session had lapsed)
            if refreshed is not None:
                st.refreshes["success" if refreshed else "failure"] += 1
        # The main thread is the only writer: st is read below without the lock.
        self._events(st, now, h, out, refreshed)
        self._replan(out, plan, st, now)

    def _absorb(self, st: AccountState, summary: dict[str, Any], settings: dict[str, Any]) -> None:
        """What the account's summary and settings say (all non-secret)."""
        from vault.ops.views import env_label
        from vault.venues import get_provider

        if isinstance(summary.get("venue"), str):
            st.venue = summary["venue"]
        st.env = env_label(summary.get("env") if isinstance(summary.get("env"), str) else None,
                           str(summary.get("base_url") or ""))
        tok = summary.get("token")
        if isinstance(tok, dict):
            st.token_kind = tok.get("kind") if isinstance(tok.get("kind"), str) else None
            st.token_issued_at = _time(tok.get("issued_at"))
            st.token_expires_at = _time(tok.get("expires_at"))
        else:
            st.token_kind = st.token_issued_at = st.token_expires_at = None
        rl = summary.get("rate_limit")
        if isinstance(rl, dict):
            st.rate = RateSeen(_int(rl.get("limit")), _int(rl.get("remaining")), _time(rl.get("reset_at")))
        since = _time(summary.get("rotated_at")) or _time(summary.get("created_at"))
        st.key_since = since
        max_days = _int(summary.get("key_max_age_days"))
        st.key_max_age_s = None if max_days is None else float(max_days) * 86400
        try:
            locks_out = bool(getattr(get_provider(st.venue), "locks_out", False))
        except KeywardError:
            locks_out = False
        st.login_blocked = 1 if locks_out and settings.get("login_failed_at") is not None else 0
        st.interval_s = _interval(settings.get("check_interval_s"), self.interval_s)
        st.session_idle_s = _int(settings.get("session_idle_s"))
        st.locks_out = locks_out

    def _events(self, st: AccountState, now: float, h: Any, out: Outcome, refreshed: bool | None) -> None:
        keys = {"account": st.label, "venue": st.venue, "env": st.env}
        updates: list[tuple[str, bool | None, str]] = []
        if h is not None:
            updates.append(("check_failed", not h.ok, h.message if not h.ok else ""))
        if refreshed is not None:
            updates.append(("refresh_failed", not refreshed, out.refresh_error or (h.message if h is not None and not h.ok else "")))
        updates.append(("login_blocked", bool(st.login_blocked), ""))
        if st.key_since is not None and st.key_max_age_s is not None:
            updates.append(("key_age_exceeded", now - st.key_since > st.key_max_age_s, ""))
        updates.append(("rate_limit_low", schedule.rate_limit_low(st.rate), ""))
        if h is not None:
            skewed = h.skew_s is not None and abs(h.skew_s) > SKEW_NOTIFY_S
            updates.append(("clock_skew", skewed, f"skew {h.skew_s:+.1f} s" if skewed else ""))
        for kind, active, detail in updates:
            event = self.conditions.update(now, kind, active=bool(active), detail=detail, **keys)
            if event is not None:
                self.dispatcher.submit(event)

    def _replan(self, out: Outcome, plan: Plan, st: AccountState, now: float) -> None:
        h = out.health
        if out.action == "check":
            plan.next_check, why = schedule.next_check(now, st.interval_s, self.jitter, self.rng,
                                                       status=h.status if h is not None else None, rl=st.rate)
            if why is not None:
                reset = st.rate.reset_at if st.rate is not None else None
                self.log(f"{st.label}: {why}; next check at {iso(plan.next_check)}"
                         + (f", after the window resets at {iso(reset)}" if reset is not None and reset > now else ""))
        plan.next_refresh, plan.refresh_action = None, None
        when: float | None = None
        if st.token_kind == "session" and st.token_expires_at is not None and st.token_expires_at > now:
            # Kept alive with its health call (the cheapest private one); never a login.
            idle = float(st.session_idle_s or schedule.DEFAULT_SESSION_IDLE_S)
            when, action = schedule.keepalive_at(st.token_expires_at, idle), "keepalive"
        elif st.token_kind == "bearer" and not st.locks_out:
            when, action = schedule.renew_at(st.token_issued_at, st.token_expires_at), "renew"
            if out.action == "renew":
                plan.renew_failures = plan.renew_failures + 1 if out.refresh_error is not None else 0
            if when is not None and plan.renew_failures:
                # A renewal that keeps failing (a changed secret) is not tried every minute forever.
                backoff = min(RENEW_RETRY_S * 2 ** (plan.renew_failures - 1), RENEW_RETRY_MAX_S)
                when = max(when, now + backoff)
        if when is not None and when < plan.next_check:
            plan.next_refresh, plan.refresh_action = max(now, when), action
        if out.action == "renew" and out.refresh_error is None and st.token_expires_at is not None:
            self.log(f"{st.label}: renewed the bearer, valid until {iso(st.token_expires_at)}")
        elif out.action == "renew":
            self.log(f"{st.label}: renewing the bearer failed: {out.refresh_error}")

    # --- accounts ------------------------------------------------------------------------

    def _labels(self) -> list[str]:
        labels = list(self.ops.labels())
        if self.only is None:
            return labels
        missing = [label for label in self.only if label not in labels]
        if missing:
            raise AccountNotFound(f"no account labelled {missing[0]!r}", hint="see `keyward list`")
        return [label for label in labels if label in self.only]

    def _refresh_labels(self) -> None:
        self._next_labels = self.clock() + min(LABELS_EVERY_S, max(1.0, self.interval_s))
        try:
            labels = list(self.ops.labels())
        except KeywardError as err:
            self._broken(str(err))
            return
        if self.only is not None:
            labels = [label for label in labels if label in self.only]
        self._sync_labels(labels)

    def _sync_labels(self, labels: list[str]) -> None:
        now = self.clock()
        wanted = set(labels)
        for label in [lb for lb in self.plans if lb not in wanted]:
            self._drop(label)
        new = [label for label in labels if label not in self.plans]
        for label in new:
            try:
                summary = self.ops.summary(label)
                detail = self.ops.account_detail(label)
            except AccountNotFound:
                continue
            except KeywardError as err:
                self._broken(str(err))
                return
            settings = detail.get("settings") if isinstance(detail, dict) else None
            st = AccountState(label=label, venue=str(summary.get("venue") or "?"), env="")
            self._absorb(st, summary, settings if isinstance(settings, dict) else {})
            with self.state.lock:
                self.state.accounts[label] = st
            # The first check soon, spread a little so a big vault does not start in step.
            first = now + self.rng.uniform(0, min(1.0, st.interval_s * self.jitter))
            self.plans[label] = Plan(next_check=first)
            self._schedule(label)
        if new:
            self._dirty = True

    def _drop(self, label: str) -> None:
        self.plans.pop(label, None)
        self.conditions.forget(label)
        with self.state.lock:
            self.state.accounts.pop(label, None)
        self._dirty = True

    def _set_up(self, value: int) -> None:
        with self.state.lock:
            self.state.up = value
        self._dirty = True

    def _broken(self, why: str) -> None:
        if self._reopen_at is None:
            self.log(f"cannot read the vault: {why}; retrying every {REOPEN_EVERY_S:.0f} s")
        self._set_up(0)
        self._reopen_at = self.clock() + REOPEN_EVERY_S

    def _reopen(self) -> None:
        old = self.ops
        try:
            self.ops, how = self._open_ops()
            labels = list(self.ops.labels())
        except KeywardError as err:
            self._reopen_at = self.clock() + REOPEN_EVERY_S
            self.log(f"still cannot read the vault: {err}")
            return
        if old is not None and old is not self.ops and callable(getattr(old, "close", None)):
            old.close()
        self._reopen_at = None
        self._set_up(1)
        self.log(f"the vault is readable again ({'through the unlock agent' if how == 'agent' else 'unlocked here'})")
        if self.only is not None:
            labels = [label for label in labels if label in self.only]
        self._sync_labels(labels)
        for label in self.plans:
            self._schedule(label)

    # --- files ---------------------------------------------------------------------------

    def _flush(self, now: float, *, force: bool = False) -> None:
        if not self._dirty or (not force and now - self._flushed_at < FLUSH_EVERY_S):
            return
        self._dirty = False
        self._flushed_at = now
        if self.textfile is not None:
            try:
                write_textfile(self.textfile, self.registry)
                self._complain("textfile", None)
            except OSError as exc:
                self._complain("textfile", f"cannot write the textfile {self.textfile}: {exc.strerror or type(exc).__name__}")
        if self.status_path is not None:
            self._write_status()

    def _complain(self, what: str, problem: str | None) -> None:
        """Log a file problem once when it starts and once when it is over, not every second."""
        before = self._problems.get(what)
        if problem == before:
            return
        self._problems[what] = problem
        self.log(problem if problem is not None else f"the {what} is written again")

    def _write_status(self, *, stopped: bool = False) -> None:
        from vault.ops.monitor_status import process_start, write_status

        with self.state.lock:
            checks = [a.last_check_at for a in self.state.accounts.values() if a.last_check_at is not None]
            failing = sum(1 for a in self.state.accounts.values() if a.check_success == 0)
            count = len(self.state.accounts)
        status = {
            "pid": os.getpid(),
            "proc_start": None if stopped else process_start(os.getpid()),
            "started_at": self.started_at,
            "stopped_at": self.clock() if stopped else None,
            "last_check_at": max(checks) if checks else None,
            "accounts": count,
            "failing": failing,
            "listen": None if self.address is None else f"{self._url_host()}:{self.address[1]}",
        }
        try:
            write_status(self.status_path, status)  # type: ignore[arg-type]
            self._status_written = True
            self._complain("status file", None)
        except OSError as exc:
            self._complain("status file", f"cannot write the status file {self.status_path}: {exc.strerror or type(exc).__name__}")


def _time(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return parse_iso(value)
        except ValueError:
            return None
    return None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _interval(value: Any, default: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1:
        return float(value)
    return default
