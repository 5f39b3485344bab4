"""The keyward dashboard application: lifecycle, the clock, and the leak closures.

The app owns what is global: which vault is open (a `Session`) and when to drop it
(lock, auto-lock), the one timer that drives every countdown, the clipboard and its
clearing, and the routing of background jobs' outcomes.  Screens and widgets live in
tui/screens and tui/widgets; the verbs (mint, copy, check...) in tui/actions.

Collaborators come in through the constructor (an unlocked service or none, a clock, an
HTTP client factory) so tests can run the real app on a temporary vault against the
sandbox with a fake clock.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from vault.core.errors import AuthRejected, KeywardError

from .actions import AccountActions
from .session import Session
from .workers import Job, Jobs, error_line

Clock = Callable[[], float]
DISK_POLL_TICKS = 2  # look at the vault file's header every 2 s for another process's save
REFRESH_RETRY_S = 60.0
ACTIVITY = (events.Key, events.MouseDown, events.MouseScrollDown, events.MouseScrollUp, events.Paste)


def as_clock(clock: Any) -> Clock:
    """Accept a callable returning POSIX seconds, an object with `now()`, or None."""
    if clock is None:
        return time.time
    now = getattr(clock, "now", None)
    if callable(now):
        return now
    if callable(clock):
        return clock
    raise TypeError("clock must be a callable or have a now() method")


def _account_commands():
    from .commands import AccountCommands

    return AccountCommands


CLIPBOARD_OFF = "Not copied: the clipboard is turned off (KEYWARD_CLIPBOARD=none)."

# --- ending on SIGHUP / SIGTERM --------------------------------------------------------------
#
# A closed terminal (SIGHUP) or a kill (SIGTERM) must end the app the normal way, so the
# clipboard is cleared and `keyward demo` removes its throwaway vault.  Three races made
# that intermittent (issue 14):
#   - tmux's kill-server hangs the terminal up (the kernel's SIGHUP) and signals too: the
#     second SIGHUP arrived after the event loop had closed, when asyncio had put the
#     default action (terminate) back, and killed the process before the demo's clean-up;
#   - a hung-up terminal fails Textual's writes with EIO, which ended its writer thread;
#     the next 30 writes filled its queue and the main thread blocked for ever on it, with
#     the loop (and so the loop's SIGTERM handler) stuck behind it: SIGTERM was ignored;
#   - a signal before the loop ran still had the default action.
# So: the handler is a plain signal.signal one, installed before the demo builds its vault
# and kept until the process ends; it takes no lock (a byte down a pipe, and
# call_soon_threadsafe), so it cannot wait on one the interrupted main thread holds.  Writes
# to a terminal that is gone are dropped.  And a watchdog thread, woken by that byte, ends
# the process (after the registered emergency clean-ups) if a graceful exit has not
# finished within EXIT_GRACE_S.

EXIT_SIGNALS = ("SIGHUP", "SIGTERM")
EXIT_GRACE_S = 10.0


class ExitSignals:
    """Process-wide: what the first SIGHUP/SIGTERM does, and that later ones change nothing."""

    def __init__(self) -> None:
        self.received: list[int] = []  # (list.append is atomic: safe in a handler)
        self.app: KeywardApp | None = None
        self.loop: Any = None
        self.done = False  # the app has returned: the caller's clean-up is under way
        self.emergency: list[Callable[[], None]] = []  # run by the watchdog before it ends the process
        self.installed = False
        self._wake_r = self._wake_w = -1

    def install(self) -> None:
        """Idempotent.  Main thread only (signal.signal's rule); elsewhere a no-op."""
        import signal

        if self.installed or threading.current_thread() is not threading.main_thread():
            return
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        threading.Thread(target=self._watchdog, name="keyward exit watchdog", daemon=True).start()
        for name in EXIT_SIGNALS:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), self._handle)
        self.installed = True

    def _handle(self, signum: int, frame: Any) -> None:
        first = not self.received
        self.received.append(signum)
        if not first:
            return  # already ending: a second SIGHUP or SIGTERM changes nothing
        try:
            os.write(self._wake_w, b"x")  # the watchdog starts its count
        except OSError:
            pass
        loop, app = self.loop, self.app
        if not self.done and loop is not None and app is not None:
            try:
                loop.call_soon_threadsafe(app._signalled)
            except RuntimeError:  # the loop has closed: the app is returning anyway
                pass
        # Before the loop runs, the app sees `received` on mount and exits at once.

    def _watchdog(self) -> None:
        try:
            os.read(self._wake_r, 1)
        except OSError:
            return
        deadline = time.monotonic() + EXIT_GRACE_S
        while time.monotonic() < deadline:
            time.sleep(0.1)
        for cleanup in list(self.emergency):
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - the process ends next whatever happens
                pass
        os._exit(1)


EXIT = ExitSignals()


class _HangupSafeFile:
    """The terminal stream Textual writes to, minus the failure of a hung-up terminal: a
    write that fails (EIO, EPIPE) marks the terminal gone and later writes are dropped,
    so Textual's writer thread never dies and never leaves its queue to fill."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._file.write(text)
            except (OSError, ValueError):
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._file.flush()
            except (OSError, ValueError):
                self.gone = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class KeywardApp(App[None]):
    TITLE = "keyward"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere keep it
    # Mouse selection + ctrl+c would copy whatever is on screen, a revealed value included.
    ALLOW_SELECT = False
    COMMANDS = App.COMMANDS | {_account_commands}
    BINDINGS = [
        Binding("l", "lock", "Lock", id="app.lock", tooltip="Lock: drop the decrypted vault and show the unlock screen"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help", tooltip="Help: every key of this screen"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True,
                tooltip="Quit (the clipboard is cleared and the vault dropped first)"),
        # `q` too, as in htop, k9s and lazygit: not a priority binding, so a focused text
        # box (a passphrase, the filter) takes the letter and `q` quits only outside one.
        Binding("q", "quit", "Quit", id="app.quit_q", show=False,
                tooltip="Quit (outside text boxes; ctrl+q anywhere)"),
    ]

    def __init__(
        self,
        vault_path: Path | str,
        *,
        service: Any = None,
        clock: Any = None,
        client_factory: Callable[[], Any] | None = None,
        ops_factory: Callable[[Any], Any] | None = None,
        kdf: Any = None,
        banner: str = "",
        notice: str = "",
        watch: bool = True,
    ) -> None:
        """`service`: an unlocked VaultService to start on the dashboard (None: unlock or
        create screen).  `clock`: POSIX seconds, for every countdown, the idle timer and
        the services this app builds.  `client_factory`: the HTTP client VenueOps uses.
        `kdf`: Argon2id parameters for a vault created here.  `banner`: one line shown on
        the dashboard and the unlock screen (the demo's passphrase).  `notice`: a line for
        the first unlock screen (why an unlock agent did not open the vault).  `watch`: run
        the timer (tests that drive `tick()` themselves turn it off)."""
        super().__init__()
        self._close_leaks()
        self.vault_path = Path(vault_path)
        self.clock: Clock = as_clock(clock)
        self.client_factory = client_factory
        self._ops_factory = ops_factory
        self.kdf = kdf
        self.banner = banner
        self.notice = notice
        self.watch = watch
        self.jobs = Jobs()
        self.actions = AccountActions(self)
        self.session: Session | None = self._new_session(service) if service is not None else None
        self.last_activity = self.clock()
        self.clipboard_deadline: float | None = None
        self.ticks = 0
        self._mode_serial = 0
        self._refresh_blocked: dict[str, float] = {}  # label -> clock time when auto-refresh may retry

    # --- leaks ---------------------------------------------------------------------------

    def _close_leaks(self) -> None:
        """Switch off Textual's channels that would carry secrets out of the process: the
        devtools link and TEXTUAL_LOG (every message, keystrokes and pastes included, in
        clear), and the TEXTUAL_SCREENSHOT timer (an unmasked SVG on disk)."""
        import textual.constants as constants

        constants.LOG_FILE = None  # type: ignore[misc]
        constants.SCREENSHOT_DELAY = -1  # type: ignore[misc]
        self.features = frozenset(f for f in self.features if f not in ("devtools", "debug"))
        self.devtools = None

    def _fatal_error(self) -> None:
        """Textual prints a crash with `show_locals=True`: local variables (a passphrase, a
        fields dict) would land on the terminal.  Say what the CLI says instead."""
        from rich.text import Text

        try:  # what we copied must not outlive us, crash or not
            self.clear_clipboard()
        except Exception:  # noqa: BLE001 - already failing; the report matters more
            pass
        self.bell()
        if os.environ.get("KEYWARD_DEBUG"):
            from rich.traceback import Traceback

            self._exit_renderables.append(Traceback(show_locals=False, width=None))
        else:
            name = type(self._exception).__name__ if self._exception else "error"
            self._exit_renderables.append(
                Text(f"keyward: internal error ({name}); please report it. "
                     "Rerun with KEYWARD_DEBUG=1 to see the traceback.")
            )
        self._close_messages_no_wait()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Screenshot":  # saves whatever is on screen, revealed values too
                yield command
        yield SystemCommand(
            "Screenshot (masked)",
            "Mask every revealed value, then save an SVG of the screen",
            lambda: self.set_timer(0.1, self.action_screenshot),  # once the palette has closed
        )

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None, time_format: str | None = None) -> str | None:
        """Every screenshot route (the palette, `app.screenshot`) masks first."""
        self.mask_all()

        def deliver() -> None:
            super(KeywardApp, self).deliver_screenshot(filename, path, time_format)

        self.call_after_refresh(deliver)
        return None

    def copy_to_clipboard(self, text: str) -> None:
        # Any copy the app did not time (a plain Input's ctrl+c) still gets cleared.
        super().copy_to_clipboard(text)
        if text and self.clipboard_deadline is None and self.session is not None:
            self.clipboard_deadline = self.clock() + self.session.settings.clipboard_clear_seconds

    def copy_secret(self, text: str, what: str) -> None:
        """Copy for the user, cleared after the vault's clipboard_clear_seconds.

        The same choice as the CLI (vault.ops.clipboard.choose_backend, KEYWARD_CLIPBOARD
        included): a system clipboard tool when one is reachable, since only a tool can
        be read back to check the value is still ours before clearing it; otherwise
        OSC 52, written through Textual's driver (writing to the tty behind Textual's
        back would tear its output)."""
        from vault.ops.clipboard import ToolBackend, choose_backend, disabled, fingerprint

        if disabled():
            self.notify(CLIPBOARD_OFF, severity="warning")
            return
        try:
            backend = choose_backend(os.environ)
        except KeywardError:
            backend = None
        tool = backend if isinstance(backend, ToolBackend) else None
        if tool is not None:
            try:
                tool.copy(text)
            except KeywardError:
                tool = None
        self._clipboard_tool = tool
        seconds = self.session.settings.clipboard_clear_seconds if self.session else 30
        if tool is not None:
            self._clipboard_salt = os.urandom(16)
            self._clipboard_mac = fingerprint(self._clipboard_salt, text)
            self._clipboard = text  # the in-app copy, for pasting inside the app
            # The CLI's detached clearer as well: a dashboard killed before its own timer
            # fires (SIGKILL, a crash) must not leave the token on the clipboard.
            from vault.ops.clipboard import spawn_clearer

            try:
                spawn_clearer(tool, text, seconds)
            except OSError:
                pass  # the dashboard's own timer still clears it
        else:
            super().copy_to_clipboard(text)
        self.clipboard_deadline = self.clock() + seconds
        self.notify(f"Copied {what}; the clipboard clears in {seconds} s.", title="Copied")

    def clear_clipboard(self) -> None:
        """Clear what we copied: a system clipboard only if it still holds our value (a
        tool can read it back); OSC 52 (write-only) unconditionally; the app's copy."""
        if self.clipboard_deadline is None and not self.clipboard:
            return
        self.clipboard_deadline = None
        tool = getattr(self, "_clipboard_tool", None)
        self._clipboard_tool = None
        if tool is not None:
            from vault.ops.clipboard import clear_if_unchanged

            try:
                clear_if_unchanged(tool, self._clipboard_salt, self._clipboard_mac)
            except KeywardError:
                pass  # the tool vanished: nothing of ours can be left in it
            self._clipboard = ""
        else:
            super().copy_to_clipboard("")

    def mask_all(self) -> None:
        for screen in self.screen_stack:
            mask = getattr(screen, "mask_all", None)
            if callable(mask):
                mask()

    # --- start, unlock, lock ---------------------------------------------------------------

    def _new_session(self, service: Any) -> Session:
        if self._ops_factory is not None:
            ops = self._ops_factory(service)
        else:
            from vault.ops.venue_ops import VenueOps

            ops = VenueOps(service, client_factory=self.client_factory, clock=self.clock, notify=self._ops_notice)
        return Session(service, ops, self.clock, self.client_factory)

    def _ops_notice(self, message: str) -> None:
        """VenueOps' warnings (429 waits, clock skew) arrive from worker threads; its default
        would print to stderr, underneath the screen."""
        def show() -> None:
            self.notify(message, title="Venue", severity="warning", markup=False, timeout=6)

        if self._thread_id == threading.get_ident():
            show()
        else:
            try:
                self.call_from_thread(show)
            except RuntimeError:  # the app is closing
                pass

    # --- signals ---------------------------------------------------------------------------

    def get_driver_class(self):
        """The platform's driver, writing through _HangupSafeFile (see ExitSignals)."""
        base = super().get_driver_class()

        class HangupSafeDriver(base):  # type: ignore[valid-type, misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                if getattr(self, "_file", None) is not None:
                    self._file = _HangupSafeFile(self._file)

        HangupSafeDriver.__name__ = HangupSafeDriver.__qualname__ = f"HangupSafe{base.__name__}"
        return HangupSafeDriver

    def run(self, *args: Any, **kwargs: Any) -> Any:
        EXIT.install()
        try:
            return super().run(*args, **kwargs)
        finally:
            if EXIT.app is self:
                EXIT.loop = EXIT.app = None
                EXIT.done = True  # the caller's clean-up runs next: a signal no longer interrupts it

    def _catch_signals(self) -> None:
        """A closed terminal (SIGHUP) or a kill (SIGTERM) would end the process where it
        stands: the clipboard keeps the token and `keyward demo` leaves its vault in /tmp.
        Quit the normal way instead (ExitSignals says how, and which races that closes)."""
        import asyncio

        if self.is_headless or not EXIT.installed:
            return
        EXIT.loop, EXIT.app = asyncio.get_running_loop(), self
        if EXIT.received:  # a signal came before the loop ran
            self._signalled()

    def _signalled(self) -> None:
        self.clear_clipboard()
        if self.session is not None:
            self.session.close()
            self.session = None
        self.exit(return_code=1)

    def on_mount(self) -> None:
        self._catch_signals()
        if self.watch:
            self.set_interval(1.0, self.tick, name="keyward tick")
        if self.session is not None:
            self._show_vault()
        else:
            self._show_gate(self.notice)

    def _switch_base(self, factory: Callable[[], Screen], kind: str) -> None:
        """Replace every screen with one new base screen.  The old stack is dropped, so no
        screen keeps a reference to vault data after a lock."""
        old = self.current_mode
        self._mode_serial += 1
        mode = f"{kind}-{self._mode_serial}"
        self.add_mode(mode, factory)
        self.switch_mode(mode)
        if old != "_default":
            self.remove_mode(old)

    def _show_gate(self, message: str = "") -> None:
        from .screens.create import CreateScreen
        from .screens.unlock import UnlockScreen

        if self.vault_path.exists():
            self._switch_base(lambda: UnlockScreen(message=message), "gate")
        else:
            self._switch_base(CreateScreen, "gate")

    def _show_vault(self) -> None:
        from .screens.dashboard import DashboardScreen

        self._switch_base(DashboardScreen, "vault")

    def unlocked(self, service: Any) -> None:
        """The unlock (or create) screen's worker produced an open vault."""
        self.session = self._new_session(service)
        self.last_activity = self.clock()
        self._refresh_blocked.clear()
        self._show_vault()

    def action_lock(self) -> None:
        self.lock()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "lock":
            return self.session is not None
        return True

    def lock(self, message: str = "Locked.") -> None:
        """Drop the decrypted state: key, data, every screen that showed it, the clipboard."""
        session, self.session = self.session, None
        if session is None:
            return
        self.mask_all()
        self.workers.cancel_group(self, "keyward")  # thread workers finish; their results are dropped
        self.clear_clipboard()
        session.close()
        del session
        # Best effort (docs/dashboard.md): free what held decrypted values now, rather than
        # whenever the collector next runs; Python cannot overwrite the freed memory.
        import gc

        gc.collect()
        self._show_gate(message)

    async def action_quit(self) -> None:
        self.clear_clipboard()
        if self.session is not None:
            self.session.close()
            self.session = None
        self.exit()

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    # --- activity and the clock -------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, ACTIVITY) and not getattr(event, "is_forwarded", False):
            self.last_activity = self.clock()
        await super().on_event(event)

    def tick(self) -> None:
        """The one timer: clipboard clearing, auto-lock, countdowns, token refresh, disk watch."""
        now = self.clock()
        self.ticks += 1
        if self.clipboard_deadline is not None and now >= self.clipboard_deadline:
            self.clear_clipboard()
            self.notify("Clipboard cleared.", timeout=2)
        session = self.session
        if session is None:
            return
        if not session.open:  # the service was locked under us
            self.lock("The vault was locked.")
            return
        idle_limit = session.settings.auto_lock_minutes * 60
        if idle_limit > 0 and now - self.last_activity >= idle_limit:
            self.lock(f"Locked after {session.settings.auto_lock_minutes} min without activity.")
            return
        for screen in self._live_screens():
            screen.tick(now)
        self._refresh_tokens(now)
        if self.ticks % DISK_POLL_TICKS == 0:
            self._watch_disk()

    def _live_screens(self) -> list[Any]:
        """The top screen, and the one under it when the top is a modal (it shows through)."""
        stack = self.screen_stack
        screens = stack[-1:]
        if stack and isinstance(stack[-1], ModalScreen) and len(stack) > 1:
            screens = stack[-2:]
        return [s for s in screens if callable(getattr(s, "tick", None))]

    def _refresh_tokens(self, now: float) -> None:
        """Bearer and session tokens of accounts with auto-refresh on are renewed before
        they expire (when the venue's own freshness margin says so)."""
        session = self.session
        for acct in session.accounts:
            if not acct.settings.get("auto_refresh") or self._refresh_blocked.get(acct.label, 0) > now:
                continue
            if session.has_session(acct) and not session.session_fresh(acct, now):
                self.actions.refresh(acct.label)

    def refresh_failed(self, label: str, error: BaseException) -> None:
        """Automatic refresh failed: never hammer a venue (Kiiex locks users out after a
        few failed logins): a refused credential stops auto-refresh for this session."""
        now = self.clock()
        if isinstance(error, AuthRejected):
            self._refresh_blocked[label] = float("inf")
            self.notify(f"{label}: {error_line(error)} (auto-refresh paused)", severity="error",
                        title="Auto-refresh", markup=False)
        else:
            self._refresh_blocked[label] = now + REFRESH_RETRY_S

    def _watch_disk(self) -> None:
        try:
            changed = self.session.changed_on_disk()
        except KeywardError:
            return
        if changed:
            self.run_job(Job("reload the vault", self.session.reload, key=("reload",), quiet=True))

    # --- jobs --------------------------------------------------------------------------------

    def run_job(self, job: Job) -> bool:
        if self.session is None:
            return False
        if self.jobs.busy(job.key):
            if not job.quiet:
                self.notify(f"Still busy: {job.description}.", timeout=3)
            return False
        self.jobs.start(self, job, self.session)
        return True

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        job, session = self.jobs.finish(event.worker)
        if job is None or session is not self.session or self.session is None:
            return  # not ours, or the vault was locked while it ran: drop the outcome
        if event.state == WorkerState.SUCCESS:
            if job.done is not None:
                job.done(event.worker.result)
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            if job.failed is not None:
                job.failed(error)
            if not job.quiet:
                self.notify(error_line(error), title=job.description, severity="error", markup=False, timeout=8)
        self.vault_changed()

    def vault_changed(self) -> None:
        """Something in the vault may have changed: let every screen re-read it."""
        if self.session is None or not self.session.open:
            return
        self.session.observe()
        for screen in self.screen_stack:
            sync = getattr(screen, "sync", None)
            if callable(sync):
                sync()
