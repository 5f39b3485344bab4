"""The small status file `keyward monitor` keeps for a vault, and how to read it.

The monitor (vault.monitor) writes it; the dashboard reads it to say "a monitor runs on
this vault, last check 12 s ago".  It lives in the user state directory
(`~/.local/state/keyward/monitor-<hash of the vault path>.json`), mode 0600 in a 0700
directory, and holds no credential: a pid, times, counts, where metrics are served.

Here, below both faces, because the dashboard may not import the monitor.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATUS_VERSION = 1
MAX_STATUS_BYTES = 64 * 1024  # a status file is a few hundred bytes; anything larger is not ours


def state_dir() -> Path:
    """$XDG_STATE_HOME/keyward (the platform's user state directory)."""
    from vault.core.dirs import user_state_dir

    return Path(user_state_dir())


def status_path(vault_path: str | os.PathLike[str], base: Path | None = None) -> Path:
    """The status file of the monitor of this vault (one per resolved vault path)."""
    resolved = os.path.realpath(os.path.expanduser(os.fspath(vault_path)))
    digest = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return (base or state_dir()) / f"monitor-{digest}.json"


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/PID/stat), which tells a live
    monitor from an unrelated process that reused its pid after a crash."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read(4096).decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ")".
    rest = raw[raw.rfind(")") + 2:].split()
    return rest[19] if len(rest) > 19 else None


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Atomically replace the status file (temp file in the same directory, fsync, rename)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps({"v": STATUS_VERSION, **status}, separators=(",", ":")).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def remove_status(path: Path, pid: int) -> None:
    """Remove the status file if it is still this process's (a newer monitor's stays)."""
    status = read_status(path)
    if status is not None and status.pid == pid:
        try:
            os.unlink(path)
        except OSError:
            pass


@dataclass(frozen=True)
class MonitorStatus:
    pid: int
    started_at: float
    last_check_at: float | None
    accounts: int
    failing: int
    running: bool  # the process that wrote it is still alive

    def describe(self, now: float) -> str:
        """One short phrase for a status line: "monitor: last check 12 s ago, 1 failing"."""
        if not self.running:
            when = self.last_check_at or self.started_at
            return f"monitor stopped (last ran {_ago(now - when)})"
        if self.last_check_at is None:
            text = "monitor running, no check yet"
        else:
            text = f"monitor: last check {_ago(now - self.last_check_at)}"
        if self.failing:
            text += f", {self.failing} failing"
        return text


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def read_status(path: Path) -> MonitorStatus | None:
    """The status of this vault's monitor, or None when none ever ran (or the file is
    not one we wrote: it is parsed as hostile input, bounded and type-checked)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_STATUS_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_STATUS_BYTES:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("v") != STATUS_VERSION:
        return None

    def number(key: str) -> float | None:
        value = data.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    pid, started = data.get("pid"), number("started_at")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or started is None:
        return None
    start = data.get("proc_start")
    running = start is not None and process_start(pid) == start
    counts = [data.get(k) if isinstance(data.get(k), int) and not isinstance(data.get(k), bool) else 0
              for k in ("accounts", "failing")]
    return MonitorStatus(pid, started, number("last_check_at"), max(0, counts[0]), max(0, counts[1]), running)
