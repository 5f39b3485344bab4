"""One account in full: the detail pane, and the same one-key actions as the dashboard
plus reveal (one field, 10 s, audited) and auto-refresh."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header

from ..widgets.detail_pane import REVEAL_SECONDS, DetailPane
from ..widgets.key_footer import KeyFooter
from ..workers import Job, error_line


class DetailScreen(Screen):
    CSS_PATH = "detail.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back", id="detail.back", tooltip="Back to the dashboard"),
        Binding("v", "reveal", "Reveal", id="detail.reveal",
                tooltip="Reveal the highlighted field for 10 s (recorded in the audit trail)"),
        Binding("m", "mint", "Mint", id="detail.mint", tooltip="Mint a token, or refresh it (log in again)"),
        Binding("c", "copy('token')", "Copy", id="detail.copy",
                tooltip="Copy the token; the clipboard is cleared after the clipboard time"),
        Binding("C", "copy('headers')", "Headers", id="detail.copy_headers",
                tooltip="Copy the request headers as JSON; cleared like the token"),
        Binding("h", "check", "Check", id="detail.check", tooltip="Check the account against its venue"),
        Binding("r", "rotate", "Rotate", id="detail.rotate",
                tooltip="Rotate: new credentials in, verified against the venue, the old set kept"),
        Binding("e", "export", "Export", id="detail.export",
                tooltip="Export: an encrypted bundle, or a plaintext file after a tick box"),
        Binding("d", "delete", "Delete", id="detail.delete", tooltip="Delete the account, after typing its label"),
        Binding("t", "auto_refresh", "Auto-refresh", id="detail.auto_refresh",
                tooltip="Switch auto-refresh on or off: renew the token before it expires"),
    ]

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="")
        yield DetailPane(id="pane")
        yield KeyFooter()

    @property
    def pane(self) -> DetailPane:
        return self.query_one(DetailPane)

    def on_mount(self) -> None:
        self.sub_title = self.label
        self.sync()
        self.query_one("#fields").focus()
        self._load_headers()

    def _load_headers(self) -> None:
        session = self.app.session
        if session is None:
            return
        label = self.label
        acct = session.find(label)
        if acct is None:
            return
        if session.has_session(acct) and not session.session_fresh(acct, self.app.clock()):
            # Looking must not log in: a venue that locks users out counts every attempt.
            self.pane.headers_failed("no live session: press m to log in, then open this again")
            return
        self.app.run_job(
            Job(
                f"build the {label} request headers",
                lambda: session.preview(label),
                done=lambda creds: self.is_attached and self.pane.set_headers(creds.headers),
                failed=lambda error: self.is_attached and self.pane.headers_failed(error_line(error)),
                key=("headers", label),
                quiet=True,
            )
        )

    def sync(self) -> None:
        session = self.app.session
        if session is None or not session.open or not self.is_attached:
            return
        acct = session.find(self.label)
        if acct is None:
            self.notify(f"{self.label} is no longer in the vault.", timeout=4)
            self.app.pop_screen()
            return
        self.pane.show(
            acct,
            session.history(self.label),
            session.recent_audit(self.label),
            self.app.clock(),
            session.settings.key_max_age_days,
        )

    def tick(self, now: float) -> None:
        self.pane.tick(now)

    def mask_all(self) -> None:
        if self.is_attached:
            self.pane.mask()

    # --- actions -----------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_reveal(self) -> None:
        name = self.pane.selected_field
        if name is None:
            return
        session = self.app.session
        acct = session.find(self.label) if session else None
        if acct is None or name not in acct.fields:
            return
        from vault.venues import get_provider, secret_names

        if name not in secret_names(get_provider(acct.venue)):
            self.notify(f"{name} is not secret: it is shown as it is.", timeout=3)
            return

        def show(field: str) -> None:
            current = self.app.session.find(self.label) if self.app.session else None
            if current is None or not self.is_attached:
                return
            now = self.app.clock()
            self.pane.reveal(field, current.fields[field], now + REVEAL_SECONDS, now)

        self.app.actions.reveal(self.label, name, show)

    def action_mint(self) -> None:
        self.app.actions.mint(self.label)

    def action_copy(self, what: str) -> None:
        self.app.actions.copy(self.label, what)

    def action_check(self) -> None:
        self.app.actions.check(self.label)

    def action_rotate(self) -> None:
        self.app.actions.rotate(self.label)

    def action_export(self) -> None:
        self.app.actions.export(self.label)

    def action_delete(self) -> None:
        self.app.actions.delete(self.label)

    def action_auto_refresh(self) -> None:
        self.app.actions.toggle_auto_refresh(self.label)
