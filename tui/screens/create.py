"""First run: choose the vault's passphrase (twice), with a strength meter; a weak one
is refused with the reason."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from ..passphrase import estimate, refusal
from ..widgets.key_footer import KeyFooter
from ..widgets.secret_input import SecretInput
from ..widgets.strength_meter import StrengthMeter
from ..workers import error_line
from ._common import display_path, show_deriving
from vault.core.text import printable


class CreateScreen(Screen):
    CSS_PATH = ["unlock.tcss", "create.tcss"]
    AUTO_FOCUS = "#new-passphrase"

    def compose(self) -> ComposeResult:
        with Center():
            with Vertical(id="create-box"):
                yield Static("keyward", id="brand")
                yield Static(Text(printable(f"No vault yet at {display_path(self.app.vault_path)}: create one.")),
                             id="create-intro")  # Text, not markup: a path may hold brackets
                yield Static(
                    "The passphrase is the only way in: there is no recovery. Four or more random words work well.",
                    id="create-help",
                )
                yield SecretInput("new passphrase", id="new-passphrase")
                yield StrengthMeter(id="meter")
                yield SecretInput("the same passphrase again", id="repeat-passphrase")
                with Horizontal(id="deriving"):  # its LoadingIndicator: show_deriving
                    yield Static("deriving key…")
                yield Static("", id="create-message")
        yield KeyFooter(compact=False)

    def on_secret_input_changed(self, event: SecretInput.Changed) -> None:
        if event.entry.id == "new-passphrase":
            self.query_one(StrengthMeter).measure(event.entry.value)
            self._say("")

    def on_secret_input_submitted(self, event: SecretInput.Submitted) -> None:
        event.stop()
        first = self.query_one("#new-passphrase", SecretInput)
        second = self.query_one("#repeat-passphrase", SecretInput)
        if event.entry is first:
            strength = estimate(first.value)
            if not strength.ok:
                self._say(refusal(strength))
                return
            second.focus()
            return
        if self.has_class("-busy"):
            return
        strength = estimate(first.value)
        if not strength.ok:
            self._say(refusal(strength))
            first.focus()
            return
        if second.value != first.value:
            second.clear()
            self._say("The two passphrases differ: type the second one again.")
            return
        passphrase = first.take()
        second.take()
        self.query_one(StrengthMeter).measure("")
        self._create(passphrase)

    def _create(self, passphrase: str) -> None:
        from vault.core.fileformat import DEFAULT_KDF
        from vault.core.service import VaultService

        path, clock, kdf = self.app.vault_path, self.app.clock, self.app.kdf or DEFAULT_KDF
        show_deriving(self, True)
        self._say("")
        self.run_worker(
            lambda: VaultService.create(path, passphrase, kdf, clock=clock),
            name="create",
            group="create",
            description="derive the key and create the vault",
            thread=True,
            exit_on_error=False,
        )

    def _say(self, text: str) -> None:
        self.query_one("#create-message", Static).update(text)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "create":
            return
        if event.state == WorkerState.SUCCESS:
            self.app.unlocked(event.worker.result)
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            show_deriving(self, False)
            self._say(error_line(event.worker.error) if event.worker.error else "Cancelled.")
            self.query_one("#new-passphrase", SecretInput).focus()
