"""The dashboard: every account's token, rate limit, health and key age, live; every
action one key away."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, ProgressBar, Static

from ..widgets.accounts_table import AccountsTable, Row
from ..widgets.countdown import duration
from ..widgets.key_footer import KeyFooter
from ..widgets.status_line import StatusLine

MONITOR_READ_EVERY_S = 5.0  # the monitor's status file is re-read this often, not every tick


class DashboardScreen(Screen):
    CSS_PATH = "dashboard.tcss"
    AUTO_FOCUS = "#accounts"
    BINDINGS = [
        Binding("m", "mint", "Mint", id="account.mint",
                tooltip="Mint a token, or refresh it (log in again) for the selected account"),
        Binding("c", "copy('token')", "Copy", id="account.copy",
                tooltip="Copy the token; the clipboard is cleared after the clipboard time"),
        Binding("C", "copy('headers')", "Headers", id="account.copy_headers",
                tooltip="Copy the request headers as JSON; cleared like the token"),
        Binding("r", "rotate", "Rotate", id="account.rotate",
                tooltip="Rotate: new credentials in, verified against the venue, the old set kept"),
        Binding("e", "export", "Export", id="account.export",
                tooltip="Export: an encrypted bundle, or a plaintext file after a tick box"),
        Binding("a", "add", "Add", id="vault.add",
                tooltip="Add or capture an account: paste what the venue showed once"),
        Binding("d", "delete", "Delete", id="account.delete",
                tooltip="Delete the account, after typing its label"),
        Binding("h", "check", "Check", id="account.check", tooltip="Check the selected account against its venue"),
        Binding("H", "check_all", "Check all", id="vault.check_all",
                tooltip="Check every account shown, with a progress bar"),
        Binding("slash", "filter", "Filter", key_display="/", id="vault.filter",
                tooltip="Filter by label, venue, environment or tag (esc clears)"),
        Binding("enter", "detail", "Detail", id="account.detail",
                tooltip="Detail: fields, decoded token, headers, generations, audit, rate-limit sparkline"),
        Binding("u", "audit", "Audit", id="vault.core.audit", tooltip="The audit trail, with its hash-chain check"),
        Binding("s", "settings", "Settings", id="vault.settings",
                tooltip="Settings: auto-lock, clipboard clearing, key maximum age"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="vault.clear_filter"),
    ]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="")
        if self.app.banner:
            yield Static(self.app.banner, id="banner")
        yield Input(placeholder="filter by label, venue, environment or tag", id="filter")
        yield AccountsTable(id="accounts")
        yield Static(
            "No accounts yet. Press [b]a[/b] to add one from what the venue showed you.",
            id="empty",
        )
        # total=0, not None: a bar without a total animates, 15 redraws a second even
        # while hidden (about 0.5% of a core: all an idle dashboard spent apart from its
        # countdowns).  action_check_all sets the real total before showing it.
        yield ProgressBar(id="check-progress", show_eta=False, total=0)
        yield StatusLine(id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = self.app.session.vault_name if self.app.session else ""
        self.sync()

    # --- data ------------------------------------------------------------------------------

    @property
    def table(self) -> AccountsTable:
        return self.query_one(AccountsTable)

    def sync(self) -> None:
        """Re-read the vault (after a job, a reload, a change from the CLI)."""
        session = self.app.session
        if session is None or not session.open or not self.is_attached:
            return
        now = self.app.clock()
        default_age = session.settings.key_max_age_days
        rows = [Row.of(acct, default_age) for acct in session.accounts]
        self._rows = rows
        self.table.set_rows(rows, now)
        self.set_class(not rows, "-empty")
        self._status(now)

    def tick(self, now: float) -> None:
        self.table.tick(now)
        self._status(now)

    def _status(self, now: float) -> None:
        session = self.app.session
        if session is None or not session.open:
            return
        rows = getattr(self, "_rows", [])
        overdue = sum(1 for r in rows if (now - r.key_since) / 86400 > r.max_age_days)
        failing = sum(1 for r in rows if r.health is not None and not r.health.ok)
        parts: list[tuple[str, str]] = [(f"{len(rows)} account{'s' if len(rows) != 1 else ''}", "")]
        if self.table.filter_text:
            parts.append((f"{len(self.table.visible_labels)} shown (filter: {self.table.filter_text})", ""))
        if overdue:
            parts.append((f"{overdue} key{'s' if overdue != 1 else ''} past max age", "red"))
        if failing:
            parts.append((f"{failing} failing", "red"))
        minutes = session.settings.auto_lock_minutes
        if minutes > 0:
            parts.append((f"auto-lock in {duration(self.app.last_activity + minutes * 60 - now)}", ""))
        if self.app.clipboard_deadline is not None:
            parts.append((f"clipboard clears in {duration(self.app.clipboard_deadline - now)}", "yellow"))
        monitor = self._monitor(now)
        if monitor is not None:
            parts.append(monitor)
        text = Text()
        for i, (part, style) in enumerate(parts):
            if i:
                text.append(" · ")
            text.append(part, style=style)
        self.query_one(StatusLine).show(text)

    def _monitor(self, now: float) -> tuple[str, str] | None:
        """What `keyward monitor` last said about this vault (its status file), if one ever ran."""
        from vault.ops.monitor_status import read_status, status_path

        if now - getattr(self, "_monitor_read_at", float("-inf")) >= MONITOR_READ_EVERY_S or now < self._monitor_read_at:
            self._monitor_read_at = now
            self._monitor_status = read_status(status_path(self.app.vault_path))
        status = self._monitor_status
        if status is None:
            return None
        style = "yellow" if not status.running else "red" if status.failing else "green"
        return status.describe(now), style

    # --- the selected account ----------------------------------------------------------------

    def _selected(self) -> str | None:
        label = self.table.selected_label
        if label is None:
            self.notify("No account selected.", timeout=3)
        return label

    def action_mint(self) -> None:
        if label := self._selected():
            self.app.actions.mint(label)

    def action_copy(self, what: str) -> None:
        if label := self._selected():
            self.app.actions.copy(label, what)

    def action_rotate(self) -> None:
        if label := self._selected():
            self.app.actions.rotate(label)

    def action_export(self) -> None:
        if label := self._selected():
            self.app.actions.export(label)

    def action_delete(self) -> None:
        if label := self._selected():
            self.app.actions.delete(label)

    def action_check(self) -> None:
        if label := self._selected():
            self.app.actions.check(label)

    def action_detail(self) -> None:
        if label := self._selected():
            self.app.actions.detail(label)

    @on(DataTable.RowSelected, "#accounts")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_detail()

    def action_add(self) -> None:
        self.app.actions.add()

    def action_audit(self) -> None:
        self.app.actions.audit()

    def action_settings(self) -> None:
        self.app.actions.settings()

    def action_check_all(self) -> None:
        labels = self.table.visible_labels
        if not labels:
            self.notify("No accounts to check.", timeout=3)
            return
        bar = self.query_one("#check-progress", ProgressBar)
        bar.update(total=len(labels), progress=0)

        def finished() -> None:
            self.remove_class("-checking")

        if self.app.actions.check_all(labels, lambda n: bar.update(progress=n), finished):
            self.add_class("-checking")

    # --- filter ------------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.add_class("-filtering")
        # At once, not through Widget.focus (a callback queued behind the keys already
        # typed): "/ki" typed fast must filter on "ki", not lose it to the table.
        self.set_focus(self.query_one("#filter", Input))

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value, self.app.clock())
        self._status(self.app.clock())

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if not self.has_class("-filtering"):
            return
        box.value = ""
        self.remove_class("-filtering")
        self.table.set_filter("", self.app.clock())
        self.table.focus()
