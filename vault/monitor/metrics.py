"""What the monitor knows, and its Prometheus exposition.

`MonitorState` is the monitor's memory of every account (what the last check, summary
and settings said, and its counters).  `StateCollector` is a prometheus_client custom
collector that turns it into metric families at scrape time, the exporter shape
(blackbox_exporter, node_exporter's collectors): nothing is kept in the client library's
own metric objects, so an account that disappears from the vault disappears from the
metrics.  The names and labels are a contract (docs/ops.md).  No value that comes out of
here is ever a credential: labels are account labels, venue names and environment
names, and values are times, counts and flags.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from vault.monitor.schedule import RateSeen

CHECK_RESULTS = ("success", "failure")
REFRESH_RESULTS = ("success", "failure")


@dataclass
class AccountState:
    label: str
    venue: str
    env: str
    check_success: int | None = None
    check_duration_s: float | None = None
    last_check_at: float | None = None
    token_kind: str | None = None
    token_issued_at: float | None = None
    token_expires_at: float | None = None
    rate: RateSeen | None = None
    skew_s: float | None = None
    key_since: float | None = None
    key_max_age_s: float | None = None
    login_blocked: int = 0
    locks_out: bool = False
    interval_s: float = 60.0
    session_idle_s: int | None = None
    checks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECK_RESULTS, 0))
    refreshes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REFRESH_RESULTS, 0))


class MonitorState:
    """Shared between the monitor's loop (writer) and the metrics server (reader)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.up = 0
        self.accounts: dict[str, AccountState] = {}


# (metric name, help, kind, labels, value of an AccountState or None to skip)
_KEYS = ("account", "venue")


def _expiry(a: AccountState) -> float | None:
    # Sessions and cached bearers only: a venue that signs each request has no expiry to watch.
    return a.token_expires_at if a.token_kind in ("bearer", "session") else None


_GAUGES: tuple[tuple[str, str, Callable[[AccountState], float | None]], ...] = (
    ("keyward_check_success", "1 if the account's last health check succeeded, else 0.", lambda a: a.check_success),
    ("keyward_check_duration_seconds", "Duration of the last health check (login and rate-limit waits included).",
     lambda a: a.check_duration_s),
    ("keyward_last_check_timestamp_seconds", "When the last health check ran (Unix time).", lambda a: a.last_check_at),
    ("keyward_token_expiry_timestamp_seconds",
     "When the cached session or bearer token expires (Unix time); absent for venues that sign each request.", _expiry),
    ("keyward_rate_limit_remaining", "Requests left in the venue's rate-limit window, as last seen.",
     lambda a: a.rate.remaining if a.rate else None),
    ("keyward_rate_limit_limit", "The venue's rate-limit window size in requests, as last seen.",
     lambda a: a.rate.limit if a.rate else None),
    ("keyward_rate_limit_reset_timestamp_seconds", "When the venue's rate-limit window resets (Unix time), as last seen.",
     lambda a: a.rate.reset_at if a.rate else None),
    ("keyward_clock_skew_seconds", "The venue's clock minus this machine's, from the Date header of the last check.",
     lambda a: a.skew_s),
    ("keyward_key_max_age_seconds", "The key's maximum age before it should be rotated.", lambda a: a.key_max_age_s),
    ("keyward_login_blocked",
     "1 while keyward refuses to log in on its own after a failed login (Kiiex lock-out guard), else 0.",
     lambda a: a.login_blocked),
)


class StateCollector:
    """A prometheus_client collector over a MonitorState, read at scrape time."""

    def __init__(self, state: MonitorState, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.clock = clock

    def describe(self) -> list[Any]:
        return []  # no collect() at registration time

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        now = self.clock()
        up = GaugeMetricFamily("keyward_up", "1 while the monitor runs and can read the vault.")
        info = GaugeMetricFamily("keyward_account_info", "One per monitored account, always 1.",
                                 labels=["account", "venue", "env"])
        gauges = [(GaugeMetricFamily(name, doc, labels=list(_KEYS)), get) for name, doc, get in _GAUGES]
        age = GaugeMetricFamily("keyward_key_age_seconds", "Seconds since the key was created or last rotated.",
                                labels=list(_KEYS))
        checks = CounterMetricFamily("keyward_checks", "Health checks run, by result.", labels=[*_KEYS, "result"])
        refreshes = CounterMetricFamily("keyward_refreshes", "Session renewals and keep-alives, by result.",
                                        labels=[*_KEYS, "result"])
        with self.state.lock:
            up.add_metric([], self.state.up)
            for a in self.state.accounts.values():
                keys = [a.label, a.venue]
                info.add_metric([a.label, a.venue, a.env], 1)
                for family, get in gauges:
                    value = get(a)
                    if value is not None:
                        family.add_metric(keys, value)
                if a.key_since is not None:
                    age.add_metric(keys, max(0.0, now - a.key_since))
                for result, n in a.checks.items():
                    checks.add_metric([*keys, result], n)
                for result, n in a.refreshes.items():
                    refreshes.add_metric([*keys, result], n)
        yield up
        yield info
        for family, _ in gauges:
            yield family
        yield age
        yield checks
        yield refreshes


def registry_for(state: MonitorState, clock: Callable[[], float] = time.time) -> Any:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state, clock))
    return registry


def write_textfile(path: Path, registry: Any) -> None:
    """The node_exporter textfile: written to a hidden temp file in the same directory
    (node_exporter reads only *.prom), fsynced, renamed over the target, the directory
    fsynced.  A scrape never sees half a file."""
    from prometheus_client import generate_latest

    data = generate_latest(registry)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        # Readable by node_exporter (another user) whatever the umask (the unit sets 0077):
        # it holds labels and numbers, no credential.
        os.fchmod(fd, 0o644)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def parse_listen(value: str) -> tuple[str, int] | None:
    """`HOST:PORT`, `[V6]:PORT`, or "off" (None).  Raises ValueError with what is wrong."""
    value = value.strip()
    if value.lower() in ("off", "none", ""):
        return None
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
    else:
        host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {value!r} is not HOST:PORT")
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ValueError(f"--listen {value!r}: give an IP address (127.0.0.1, [::1] or 0.0.0.0), not a name") from None
        host = "127.0.0.1"
    return host, int(port)


def is_loopback(host: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(host).is_loopback


def serve(registry: Any, host: str, port: int) -> tuple[Any, Any]:
    """The /metrics endpoint (prometheus_client's threaded WSGI server): (server, thread)."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=registry)
