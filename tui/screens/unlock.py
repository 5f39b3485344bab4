"""Unlock: one masked entry; the key derivation runs in a worker behind a visible
"deriving key" indicator, and a wrong passphrase costs one line and another try."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from ..widgets.key_footer import KeyFooter
from ..widgets.secret_input import SecretInput
from ..workers import error_line
from ._common import display_path, show_deriving
from vault.core.text import printable


class UnlockScreen(Screen):
    CSS_PATH = "unlock.tcss"
    AUTO_FOCUS = "#passphrase"

    def __init__(self, message: str = "") -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        with Center():
            with Vertical(id="unlock-box"):
                yield Static("keyward", id="brand")
                # Text, not markup: a path (or a notice quoting one) may hold brackets.
                yield Static(Text(printable(f"Vault {display_path(self.app.vault_path)}")), id="vault-path")
                if self.app.banner:
                    yield Static(Text(printable(self.app.banner)), id="banner")
                yield SecretInput("passphrase, then Enter", id="passphrase")
                with Horizontal(id="deriving"):  # its LoadingIndicator: show_deriving
                    yield Static("deriving key…")
                yield Static(self.message, id="unlock-message")
        yield KeyFooter(compact=False)

    def on_secret_input_submitted(self, event: SecretInput.Submitted) -> None:
        event.stop()
        if self.busy:
            return
        passphrase = event.entry.take()
        if not passphrase:
            self._say("Enter the vault's passphrase.")
            return
        from vault.core.service import VaultService

        path, clock = self.app.vault_path, self.app.clock
        self._busy(True)
        self.run_worker(
            lambda: VaultService.unlock(path, passphrase, clock=clock),
            name="unlock",
            group="unlock",
            description="derive the key and open the vault",
            thread=True,
            exit_on_error=False,
        )

    @property
    def busy(self) -> bool:
        return self.has_class("-busy")

    def _busy(self, on: bool) -> None:
        show_deriving(self, on)
        if on:
            self._say("")

    def _say(self, text: str) -> None:
        self.query_one("#unlock-message", Static).update(text)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "unlock":
            return
        if event.state == WorkerState.SUCCESS:
            self.app.unlocked(event.worker.result)
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._busy(False)
            self._say(error_line(event.worker.error) if event.worker.error else "Cancelled.")
            self.query_one("#passphrase", SecretInput).focus()
