"""Help: every key of the screen it was opened over, and the app's own, from the same
Binding objects that drive the footer (one source, so they cannot disagree)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

from ..widgets.key_footer import KeyFooter

EXTRA = (
    ("ctrl+p", "Command palette: every action for every account, settings, audit, masked screenshot"),
    ("v", "Detail screen: reveal the highlighted field for 10 s (recorded in the audit trail)"),
    ("t", "Detail screen: switch the account's auto-refresh on or off"),
)
NOTES = (
    "Tokens count down live (yellow in the last 20% of their life); keys past the maximum age end in !.",
    "Copies clear themselves after the clipboard time in settings; locking clears them at once.",
    "The vault locks itself after the idle time in settings: decrypted data is dropped.",
)


def _keys(binding: Binding) -> str:
    return binding.key_display or binding.key


def _text(binding: Binding) -> str:
    """The footer's word, and what it does in full when the binding says (its tooltip)."""
    return binding.tooltip or binding.description


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, over: Screen) -> None:
        super().__init__()
        bindings = [b for b in getattr(type(over), "BINDINGS", []) if isinstance(b, Binding)]
        from ..app import KeywardApp

        app_bindings = [b for b in KeywardApp.BINDINGS if isinstance(b, Binding)]
        self.rows = [(_keys(b), _text(b)) for b in bindings + app_bindings if b.description]
        self.rows += [row for row in EXTRA if row[0] not in {k for k, _ in self.rows}]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static("Keys", classes="title")
            table: DataTable = DataTable(id="help-keys", cursor_type="none", show_header=False)
            table.add_columns("key", "does")
            for key, text in self.rows:
                table.add_row(key, text)
            yield table
            yield Static("\n".join(f"• {n}" for n in NOTES), id="help-notes")
        yield KeyFooter(compact=False)
