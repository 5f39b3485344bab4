"""The export dialog: an encrypted bundle (the default) or a plaintext file the user has
to acknowledge; files are written 0600, never over an existing one, and audited first."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Checkbox, Header, Input, RadioButton, RadioSet, Static

from ..passphrase import estimate, refusal
from ..widgets.key_footer import KeyFooter
from ..widgets.secret_input import SecretInput
from ..widgets.strength_meter import StrengthMeter
from ..workers import Job, error_line

FORMATS = (
    ("bundle", "encrypted bundle (recommended): import it with `keyward import FILE`", ".kwb"),
    ("env", "env: KEYWARD_*= lines, PLAINTEXT", ".env"),
    ("json", "json: keyward's export object, PLAINTEXT", ".json"),
    ("native", "native: the venue's own JSON shape, PLAINTEXT", ".json"),
)


class ExportScreen(Screen):
    CSS_PATH = ["form.tcss", "export.tcss"]
    AUTO_FOCUS = "#format"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="export.cancel"),
        Binding("ctrl+s", "write", "Write", id="export.write"),
    ]

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="")
        with VerticalScroll(id="export-box", classes="form-box", can_focus=False):
            yield Static(f"Export {self.label}", classes="form-title")
            with RadioSet(id="format"):
                for i, (_, text, _) in enumerate(FORMATS):
                    yield RadioButton(text, value=i == 0)
            with Horizontal(classes="form-row"):
                yield Static("File", classes="form-label")
                yield Input(value=self._default_path("bundle"), id="path")
            with Vertical(id="bundle-fields"):
                yield Static("A passphrase for the bundle (not the vault's):", classes="form-help")
                yield SecretInput("bundle passphrase", id="bundle-passphrase")
                yield StrengthMeter(id="bundle-meter")
                yield SecretInput("the same passphrase again", id="bundle-repeat")
            yield Checkbox("I understand this file holds the secrets in plaintext; I will delete it when done",
                           id="plaintext-ok")
            yield Static("", id="export-message", classes="form-message")
        yield KeyFooter()

    def _default_path(self, fmt: str) -> str:
        ext = next(e for f, _, e in FORMATS if f == fmt)
        return f"~/keyward-{self.label}{'-' + fmt if fmt in ('env', 'native') else ''}{ext}"

    @property
    def fmt(self) -> str:
        index = self.query_one("#format", RadioSet).pressed_index
        return FORMATS[max(0, index)][0]

    def on_mount(self) -> None:
        self._show_for("bundle")

    def _show_for(self, fmt: str) -> None:
        self.set_class(fmt != "bundle", "-plaintext")

    @on(RadioSet.Changed, "#format")
    def _format_changed(self) -> None:
        fmt = self.fmt
        self.query_one("#path", Input).value = self._default_path(fmt)
        self._show_for(fmt)

    # Enter moves on to the next field, and writes from the last one: a passphrase typed
    # after an Enter must land in the next secret entry, never in the plain file box.
    @on(Input.Submitted, "#path")
    def _path_done(self) -> None:
        target = "#bundle-passphrase" if self.fmt == "bundle" else "#plaintext-ok"
        self.query_one(target).focus()

    @on(SecretInput.Submitted, "#bundle-passphrase")
    def _first_done(self, event: SecretInput.Submitted) -> None:
        event.stop()
        self.query_one("#bundle-repeat", SecretInput).focus()

    @on(SecretInput.Submitted, "#bundle-repeat")
    def _second_done(self, event: SecretInput.Submitted) -> None:
        event.stop()
        self.action_write()

    @on(SecretInput.Changed, "#bundle-passphrase")
    def _measure(self, event: SecretInput.Changed) -> None:
        self.query_one("#bundle-meter", StrengthMeter).measure(event.entry.value)

    def _say(self, text: str, style: str = "red") -> None:
        self.query_one("#export-message", Static).update(Text(text, style=style))

    def action_write(self) -> None:
        session = self.app.session
        if session is None:
            return
        fmt = self.fmt
        raw = self.query_one("#path", Input).value.strip()
        if not raw:
            self._say("Give a file to write.")
            return
        target = Path(raw).expanduser()
        if target.exists():
            self._say(f"{target} already exists: choose another file (keyward never overwrites an export).")
            return
        if not target.parent.is_dir():
            self._say(f"{target.parent} is not a directory: create it first.")
            return
        label = self.label
        if fmt == "bundle":
            first = self.query_one("#bundle-passphrase", SecretInput)
            second = self.query_one("#bundle-repeat", SecretInput)
            strength = estimate(first.value)
            if not strength.ok:
                self._say(refusal(strength))
                return
            if first.value != second.value:
                second.clear()
                self._say("The two passphrases differ: type the second one again.")
                return
            passphrase = first.take()
            second.take()
            self.query_one("#bundle-meter", StrengthMeter).measure("")
            work = lambda: session.export_bundle([label], passphrase, target)  # noqa: E731
            what = "an encrypted bundle"
        else:
            if not self.query_one("#plaintext-ok", Checkbox).value:
                self._say("Tick the box: this writes the secrets in plaintext.")
                return
            work = lambda: session.export_plain(label, fmt, target)  # noqa: E731
            what = f"plaintext {fmt} (mode 0600): delete it when done"

        def done(_: object) -> None:
            self.app.notify(f"Exported {label} to {target} as {what}.", title="Export", markup=False)
            if self.is_attached:
                self.app.pop_screen()

        self.app.run_job(Job(f"export {label}", work, done=done,
                             failed=lambda e: self.is_attached and self._say(error_line(e)), key=("export", label)))

    def action_cancel(self) -> None:
        for entry in self.query(SecretInput):
            entry.take()
        self.app.pop_screen()
