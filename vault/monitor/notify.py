"""Notifications on state changes: deduplicated, with a reminder interval, never fatal.

A condition of an account (its check failing, a refresh failing, its key past its
maximum age, its rate limit low, its clock skewed, its logins blocked) notifies once
when it starts, once more every `reminder_s` while it lasts, and once when it ends.
Events are JSON objects of non-secret values only: labels, venue and environment names,
times, and the one-line messages keyward's errors carry (built from labels and status
codes, never from a credential or a response body).

Delivery runs on its own thread: a slow or failing notifier delays no check, and a
failure is logged (one line, no URL path, no output of the command) and forgotten.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from dataclasses import asdict, dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from vault.core.errors import InputError
from vault.core.model import iso

NOTIFY_TIMEOUT_S = 10.0
QUEUE_MAX = 1000
DEFAULT_REMINDER_S = 4 * 3600.0
# Variables a notifier child must not inherit: where the vault's passphrase lives.
_WITHHELD_ENV = ("CREDENTIALS_DIRECTORY", "KEYWARD_PASSPHRASE_FILE")

KINDS = {
    # kind: (summary when it starts, summary when it ends, what to run)
    "check_failed": ("health check of {account} ({venue}) failed", "health check of {account} ({venue}) recovered",
                     "keyward doctor {account}"),
    "refresh_failed": ("session refresh of {account} ({venue}) failed",
                       "session refresh of {account} ({venue}) works again", "keyward doctor {account}"),
    "login_blocked": ("automatic logins of {account} ({venue}) are blocked after a failed login",
                      "logins of {account} ({venue}) are no longer blocked", "keyward doctor {account}"),
    "key_age_exceeded": ("the key of {account} ({venue}) is older than its maximum age",
                         "the key of {account} ({venue}) is within its maximum age again", "keyward rotate {account}"),
    "rate_limit_low": ("rate limit of {account} ({venue}) is below 10%",
                       "rate limit of {account} ({venue}) has recovered", "keyward check {account}"),
    "clock_skew": ("clock skew against {venue} ({account}) is over 5 s",
                   "clock skew against {venue} ({account}) is back within 5 s", "keyward doctor {account}"),
}


@dataclass(frozen=True)
class Event:
    kind: str
    status: str  # "firing" or "resolved"
    account: str
    venue: str
    env: str
    summary: str
    command: str
    detail: str
    at: str
    reminder: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)


class Conditions:
    """Which conditions are active, and when each was last notified (the deduplication)."""

    def __init__(self, reminder_s: float = DEFAULT_REMINDER_S) -> None:
        self.reminder_s = reminder_s
        self._sent: dict[tuple[str, str], float] = {}

    def update(self, now: float, kind: str, *, account: str, venue: str, env: str, active: bool,
               detail: str = "") -> Event | None:
        key = (account, kind)
        fire, resolve, command = KINDS[kind]
        names = {"account": account, "venue": venue}
        last = self._sent.get(key)
        if active:
            if last is not None and now - last < self.reminder_s:
                return None
            self._sent[key] = now
            return Event(kind, "firing", account, venue, env, fire.format(**names), command.format(**names),
                         detail, iso(now) or "", reminder=last is not None)
        if last is None:
            return None
        del self._sent[key]
        return Event(kind, "resolved", account, venue, env, resolve.format(**names), command.format(**names),
                     detail, iso(now) or "")

    def forget(self, account: str) -> None:
        """An account left the vault: no reminders, no "resolved" for it."""
        for key in [k for k in self._sent if k[0] == account]:
            del self._sent[key]


# --- notifiers ------------------------------------------------------------------------


class CommandNotifier:
    """Runs a command (no shell) with the event as JSON on its standard input."""

    def __init__(self, argv: list[str]) -> None:
        if not argv:
            raise InputError("--notify-command is empty", hint="give a command, e.g. --notify-command '/usr/local/bin/page-me'")
        self.argv = argv
        self.name = f"command {os.path.basename(argv[0])}"

    def send(self, event: Event) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _WITHHELD_ENV}
        try:
            done = subprocess.run(self.argv, input=event.to_json().encode(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=NOTIFY_TIMEOUT_S, env=env, close_fds=True)
        except FileNotFoundError:
            raise RuntimeError("not found") from None
        except PermissionError:
            raise RuntimeError("not executable") from None
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"no exit within {NOTIFY_TIMEOUT_S:.0f} s") from None
        except OSError as exc:
            raise RuntimeError(exc.strerror or type(exc).__name__) from None
        if done.returncode != 0:
            raise RuntimeError(f"exit code {done.returncode}")


def check_webhook_url(url: str) -> str:
    """https anywhere, plain http only to loopback; no credentials in the URL's userinfo."""
    from vault.net.endpoints import is_loopback_host

    from vault.net.endpoints import split_url

    parts = split_url(url)
    if parts is None:
        raise InputError("--notify-webhook is not a URL", hint="pass https://host/path, or http:// to 127.0.0.1")
    if parts.username is not None or parts.password is not None:
        raise InputError("--notify-webhook carries a user name or password", hint="use a URL without user:pass@")
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise InputError(
        f"--notify-webhook must be https (plain http only to 127.0.0.1), not {parts.scheme or 'no scheme'}://{parts.hostname or ''}",
        hint="use an https URL",
    )


class WebhookNotifier:
    """POSTs the event as JSON (keyward's hardened client: no redirects, TLS verified)."""

    def __init__(self, url: str) -> None:
        self.url = check_webhook_url(url)
        self.name = f"webhook to {urlsplit(url).hostname}"  # never the path: it is often a secret
        self._client: Any = None

    def send(self, event: Event) -> None:
        from vault.net.http import make_client

        if self._client is None:
            self._client = make_client(timeout=NOTIFY_TIMEOUT_S)
        try:
            response = self._client.post(self.url, content=event.to_json().encode(),
                                         headers={"Content-Type": "application/json"})
        except Exception as exc:  # httpx's errors: their text may quote the URL
            raise RuntimeError(type(exc).__name__) from None
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"HTTP {response.status_code}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _escape_markup(text: str) -> str:
    # Notification servers read a subset of HTML in the body: show our text as text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class DesktopNotifier:
    """notify-send, where present."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or shutil.which("notify-send")
        self.name = "notify-send"

    @property
    def available(self) -> bool:
        return self.path is not None

    def send(self, event: Event) -> None:
        if self.path is None:
            return
        urgency = "critical" if event.status == "firing" and event.kind in ("check_failed", "login_blocked") else "normal"
        body = _escape_markup(f"{event.detail}\nrun: {event.command}" if event.detail else f"run: {event.command}")
        try:
            done = subprocess.run([self.path, "--app-name=keyward", f"--urgency={urgency}", "--",
                                   _escape_markup(f"keyward: {event.summary}"), body],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=NOTIFY_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(type(exc).__name__) from None
        if done.returncode != 0:
            raise RuntimeError(f"exit code {done.returncode}")


class Dispatcher:
    """Delivers events to every notifier on one background thread."""

    def __init__(self, notifiers: list[Any], log: Callable[[str], None]) -> None:
        self.notifiers = notifiers
        self.log = log
        self._queue: queue.Queue[Event | None] = queue.Queue(QUEUE_MAX)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.notifiers and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="keyward-notify", daemon=True)
            self._thread.start()

    def submit(self, event: Event) -> None:
        state = "reminder" if event.reminder else event.status
        why = f": {event.detail}" if event.detail and event.status == "firing" else ""
        self.log(f"{event.account}: {event.summary} ({state}){why}")
        if not self.notifiers:
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.log(f"notification queue full: dropped the {event.kind} event of {event.account}")

    def stop(self, timeout: float = NOTIFY_TIMEOUT_S + 2) -> None:
        """Deliver what is queued (bounded), then stop."""
        if self._thread is not None:
            try:
                self._queue.put(None, timeout=1)
            except queue.Full:
                pass
            self._thread.join(timeout)
        for notifier in self.notifiers:
            close = getattr(notifier, "close", None)
            if callable(close):
                close()

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            for notifier in self.notifiers:
                try:
                    notifier.send(event)
                except Exception as exc:  # a notifier never stops the monitor
                    reason = str(exc) if type(exc) is RuntimeError else type(exc).__name__
                    self.log(f"notification by {notifier.name} failed ({reason}); the monitor carries on")
