"""Settings: auto-lock, clipboard clearing and the key maximum age, saved in the vault."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Input, Static

from ..widgets.key_footer import KeyFooter
from ..workers import Job, error_line

# name, label, unit, minimum, maximum
FIELDS = (
    ("auto_lock_minutes", "Auto-lock", "minutes without a key press or click", 1, 1440),
    ("clipboard_clear_seconds", "Clipboard", "seconds until a copied token is cleared", 5, 600),
    ("key_max_age_days", "Key max age", "days before a key is marked for rotation", 1, 3650),
)


class SettingsScreen(Screen):
    CSS_PATH = ["form.tcss", "settings.tcss"]
    AUTO_FOCUS = "#auto_lock_minutes"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="settings.cancel"),
        Binding("ctrl+s", "save", "Save", id="settings.save"),
    ]

    def compose(self) -> ComposeResult:
        settings = self.app.session.settings if self.app.session else None
        yield Header(show_clock=False, icon="")
        with VerticalScroll(id="settings-box", classes="form-box", can_focus=False):
            yield Static("Settings", classes="form-title")
            yield Static("Stored in the vault: they apply to every keyward process that opens it.", classes="form-help")
            for name, label, unit, low, high in FIELDS:
                with Horizontal(classes="form-row"):
                    yield Static(label, classes="form-label")
                    yield Input(str(getattr(settings, name, "")), type="integer", id=name, classes="number")
                    yield Static(f"{unit} ({low}-{high})", classes="unit")
            yield Static("", id="settings-message", classes="form-message")
        yield KeyFooter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        values: dict[str, int] = {}
        for name, label, _, low, high in FIELDS:
            raw = self.query_one(f"#{name}", Input).value.strip()
            if not raw.isdigit() or not low <= int(raw) <= high:
                self.query_one("#settings-message", Static).update(
                    Text(f"{label} must be a whole number from {low} to {high}.", style="red"))
                return
            values[name] = int(raw)
        session = self.app.session
        if session is None:
            return

        def done(_: object) -> None:
            self.app.notify("Settings saved.", title="Settings")
            if self.is_attached:
                self.app.pop_screen()

        self.app.run_job(Job("save the settings", lambda: session.save_settings(**values), done=done,
                             failed=lambda e: self.query_one("#settings-message", Static).update(
                                 Text(error_line(e), style="red")), key=("settings",)))

    def action_cancel(self) -> None:
        self.app.pop_screen()
