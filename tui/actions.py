"""The dashboard's verbs, shared by its keys, the detail screen and the command palette.

Each verb starts a `Job` (network and vault writes run in a thread worker) or opens a
screen; none does venue or vault work itself: that is VenueOps' and VaultService's.
Closures capture the session they started in, so a job that finishes after a lock talks
to a closed session and its outcome is dropped by the app.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable

from vault.core.errors import KeywardError

from .widgets.countdown import duration
from .workers import Job, error_line

if TYPE_CHECKING:  # pragma: no cover
    from .app import KeywardApp
    from .session import Session

CHECK_ALL_THREADS = 4


class Secret:
    """A value on its way from a worker to the clipboard: masked in every repr."""

    __slots__ = ("value", "what")

    def __init__(self, value: str, what: str) -> None:
        self.value = value
        self.what = what

    def __repr__(self) -> str:
        return f"Secret(what={self.what!r})"


class AccountActions:
    def __init__(self, app: KeywardApp) -> None:
        self.app = app

    @property
    def session(self) -> Session | None:
        return self.app.session

    def _run(self, job: Job) -> bool:
        return self.app.run_job(job)

    # --- tokens ------------------------------------------------------------------------------

    def mint(self, label: str) -> None:
        session = self.session
        if session is None:
            return

        def done(creds: Any) -> None:
            tok = creds.token
            if tok is None:
                self.app.notify(f"{label}: this venue signs each request; no token to mint.", title="Mint")
            elif tok.expires_at is None:
                self.app.notify(f"{label}: new {tok.kind} token (no expiry).", title="Mint")
            else:
                left = duration(tok.expires_at - self.app.clock())
                self.app.notify(f"{label}: new {tok.kind} token, valid for {left}.", title="Mint")

        self._run(Job(f"mint a token for {label}", lambda: session.mint(label), done=done, key=("mint", label)))

    def refresh(self, label: str) -> None:
        """Automatic renewal (auto-refresh): quiet, and never retried on a refusal."""
        session = self.session
        if session is None:
            return
        self._run(
            Job(
                f"refresh the {label} token",
                lambda: session.refresh(label),
                failed=lambda error: self.app.refresh_failed(label, error),
                key=("refresh", label),
                quiet=True,
            )
        )

    def copy(self, label: str, what: str = "token") -> None:
        """Copy the live token (or, with what="headers" or for venues without one, the
        headers a request needs) to the clipboard; it is cleared after a while."""
        session = self.session
        if session is None:
            return
        from vault.ops.clipboard import disabled

        if disabled():  # before the token is fetched and the copy audited
            from .app import CLIPBOARD_OFF

            self.app.notify(CLIPBOARD_OFF, severity="warning")
            return

        def work() -> Secret:
            creds = session.credentials(label)
            if what == "token" and creds.token is not None:
                secret = Secret(creds.token.value, f"the {label} token")
            else:
                secret = Secret(json.dumps(creds.headers), f"the {label} request headers")
            session.record("copy", label, detail="token" if secret.what.endswith("token") else "headers")
            return secret

        self._run(Job(f"copy the {label} {what}", work,
                      done=lambda s: self.app.copy_secret(s.value, s.what), key=("copy", label)))

    # --- health ------------------------------------------------------------------------------

    def check(self, label: str) -> None:
        session = self.session
        if session is None:
            return

        def done(health: Any) -> None:
            if health.ok:
                latency = f" in {health.latency_ms:.0f} ms" if health.latency_ms is not None else ""
                self.app.notify(f"{label}: ok{latency}.", title="Check")
            else:
                self.app.notify(health.message or f"{label}: failing", title=f"Check {label}",
                                severity="error", markup=False, timeout=8)

        self._run(Job(f"check {label}", lambda: session.check(label), done=done, key=("check", label)))

    def check_all(self, labels: list[str], progress: Callable[[int], None], finished: Callable[[], None]) -> bool:
        """Check every listed account, a few at a time; `progress(n)` runs on the UI
        thread after each one."""
        session = self.session
        if session is None or not labels:
            return False
        app = self.app

        def work() -> tuple[int, list[str]]:
            from concurrent.futures import ThreadPoolExecutor, as_completed

            failing: list[str] = []
            done = 0
            with ThreadPoolExecutor(max_workers=CHECK_ALL_THREADS, thread_name_prefix="keyward-check") as pool:
                futures = {pool.submit(session.check, label): label for label in labels}
                for future in as_completed(futures):
                    try:
                        if not future.result().ok:
                            failing.append(futures[future])
                    except KeywardError:
                        failing.append(futures[future])
                    done += 1
                    try:
                        app.call_from_thread(progress, done)
                    except RuntimeError:  # the app is closing
                        pass
            return done - len(failing), sorted(failing)

        def done(result: tuple[int, list[str]]) -> None:
            finished()
            ok, failing = result
            if failing:
                shown = ", ".join(failing[:5]) + (f" and {len(failing) - 5} more" if len(failing) > 5 else "")
                app.notify(f"{ok} ok, {len(failing)} failing: {shown}", title="Check all",
                           severity="warning", markup=False, timeout=8)
            else:
                app.notify(f"All {ok} accounts ok.", title="Check all")

        return self._run(Job(f"check {len(labels)} accounts", work, done=done,
                             failed=lambda _: finished(), key=("check_all",)))

    # --- changes ---------------------------------------------------------------------------

    def delete(self, label: str) -> None:
        from .screens.confirm_delete import ConfirmDeleteScreen

        session = self.session
        if session is None:
            return

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._run(Job(f"delete {label}", lambda: session.remove(label),
                              done=lambda _: self.app.notify(f"Removed {label}.", title="Delete"),
                              key=("delete", label)))

        self.app.push_screen(ConfirmDeleteScreen(label), confirmed)

    def reveal(self, label: str, field: str, show: Callable[[str], None]) -> None:
        """Record the reveal in the audit trail first; only then show the value."""
        session = self.session
        if session is None:
            return
        self._run(Job(f"reveal {field} of {label}", lambda: session.record("reveal", label, detail=field),
                      done=lambda _: show(field), key=("reveal", label)))

    def toggle_auto_refresh(self, label: str) -> None:
        session = self.session
        if session is None:
            return

        def change(acct) -> bool:
            acct.settings["auto_refresh"] = not acct.settings.get("auto_refresh", False)
            return acct.settings["auto_refresh"]

        self._run(Job(f"switch auto-refresh for {label}",
                      lambda: session.service.update_account(label, change),
                      done=lambda on: self.app.notify(f"{label}: auto-refresh {'on' if on else 'off'}."),
                      key=("settings", label)))

    # --- screens ---------------------------------------------------------------------------

    def _push(self, make: Callable[[], Any]) -> None:
        if self.session is not None:
            self.app.push_screen(make())

    def detail(self, label: str) -> None:
        from .screens.detail import DetailScreen

        self._push(lambda: DetailScreen(label))

    def rotate(self, label: str) -> None:
        from .screens.rotate import RotateScreen

        self._push(lambda: RotateScreen(label))

    def export(self, label: str) -> None:
        from .screens.export import ExportScreen

        self._push(lambda: ExportScreen(label))

    def add(self) -> None:
        from .screens.capture import CaptureScreen

        self._push(CaptureScreen)

    def audit(self) -> None:
        from .screens.audit import AuditScreen

        self._push(AuditScreen)

    def settings(self) -> None:
        from .screens.settings import SettingsScreen

        self._push(SettingsScreen)

    def failed(self, title: str, error: BaseException) -> None:
        self.app.notify(error_line(error), title=title, severity="error", markup=False, timeout=8)
