"""Delete confirmation: type the account's label to remove it for good."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class ConfirmDeleteScreen(ModalScreen[bool]):
    CSS_PATH = "confirm_delete.tcss"
    AUTO_FOCUS = "#confirm-label"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="delete.cancel")]

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(f"Delete [b]{self.label}[/b]?", id="confirm-title", markup=True)
            yield Static(
                "Its credentials and retired generations leave the vault for good "
                "(the venue's key stays valid: revoke it there too). "
                "Type the label to confirm, Escape to keep it.",
                id="confirm-help",
            )
            yield Input(placeholder=self.label, id="confirm-label")
            yield Static("", id="confirm-message")

    @on(Input.Submitted, "#confirm-label")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.label:
            self.dismiss(True)
        else:
            self.query_one("#confirm-message", Static).update("The label does not match: nothing was removed.")

    def action_cancel(self) -> None:
        self.dismiss(False)
