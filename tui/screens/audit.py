"""The audit trail: every action on every account, newest first, and whether the hash
chain is intact.  Entries never hold a secret (vault.core.audit), so all of it is shown."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from ..widgets.key_footer import KeyFooter

from vault.core.model import iso
from vault.core.text import printable


class AuditScreen(Screen):
    CSS_PATH = "audit.tcss"
    AUTO_FOCUS = "#audit-table"
    BINDINGS = [Binding("escape", "back", "Back", id="audit.back")]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="")
        yield Static("", id="chain")
        yield DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("When (UTC)", key="at", width=20)
        table.add_column("Action", key="action", width=9)
        table.add_column("Account", key="account", width=18)
        table.add_column("Outcome", key="outcome", width=11)
        table.add_column("Detail", key="detail", width=70)
        self.sync()

    def sync(self) -> None:
        from vault.core.audit import verify

        session = self.app.session
        if session is None or not session.open or not self.is_attached:
            return
        entries = session.service.data.audit
        broken = verify(entries)
        chain = self.query_one("#chain", Static)
        if broken is None:
            chain.update(Text(f"{len(entries)} entries · hash chain intact", style="green"))
        else:
            chain.update(Text(f"{len(entries)} entries · the hash chain breaks at entry {broken + 1}: "
                              "the trail was edited outside keyward", style="bold red"))
        table = self.query_one(DataTable)
        table.clear()
        for e in reversed(entries):
            style = "" if e.outcome in ("ok", "") else "yellow" if e.outcome in ("stored", "unverified") else "red"
            # Every cell as Text: a detail such as "a[/b].kwb" is not markup, and control
            # characters in it are shown, not sent to the terminal.
            table.add_row(iso(e.at), Text(printable(e.action)), Text(printable(e.account or "(vault)")),
                          Text(printable(e.outcome), style=style), Text(printable(e.detail)))

    def action_back(self) -> None:
        self.app.pop_screen()
