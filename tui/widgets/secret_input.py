"""Entry widgets for secrets: they show neither the secret nor its length, and offer no
way to copy it back out.

Textual's ``Input(password=True)`` draws one bullet per character and keeps its copy and
cut bindings (ctrl+c / ctrl+x write the selection to the terminal clipboard through OSC
52), and its ``Changed`` message carries the value in its repr.  These widgets hold the
value privately, draw a fixed mask, block copy and cut, and post messages that carry only
the widget.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

MASK = "•" * 8


class _SecretEntry(Widget, can_focus=True):
    """Shared behaviour: private value, blocked copy/cut, no text selection."""

    DEFAULT_CSS = Path(__file__).with_suffix(".tcss").read_text(encoding="utf-8")
    SCOPED_CSS = False  # the stylesheet names both subclasses
    ALLOW_SELECT = False
    BINDINGS = [
        # Screen binds ctrl+c to "copy selected text"; these win while a secret entry has focus.
        Binding("ctrl+c,super+c", "blocked", "Copy blocked", show=False, id="secret.copy"),
        Binding("ctrl+x,super+x", "blocked", "Cut blocked", show=False, id="secret.cut"),
        Binding("ctrl+u", "clear", "Clear", show=False, id="secret.clear"),
    ]

    class Changed(Message):
        """The value changed.  Read it from `entry.value`: it is not in the message."""

        def __init__(self, entry: _SecretEntry) -> None:
            super().__init__()
            self.entry = entry

        @property
        def control(self) -> _SecretEntry:
            return self.entry

    filled = reactive(False)

    def __init__(self, placeholder: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.placeholder = placeholder
        self._value = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, filled={bool(self._value)})"

    @property
    def value(self) -> str:
        return self._value

    def _set(self, value: str) -> None:
        self._value = value
        self.filled = bool(value)
        self.refresh()
        self.post_message(self.Changed(self))

    def clear(self) -> None:
        if self._value:
            self._set("")

    def take(self) -> str:
        """Return the value and forget it: the widget keeps no copy once used."""
        value, self._value = self._value, ""
        self.filled = False
        self.refresh()
        return value

    def action_clear(self) -> None:
        self.clear()

    def action_blocked(self) -> None:
        self.app.bell()
        self.notify("Copying out of a secret field is disabled.", severity="warning", timeout=3)


class SecretInput(_SecretEntry):
    """One line: a passphrase, an API secret.  Enter submits."""

    class Changed(_SecretEntry.Changed):
        """Handled as `on_secret_input_changed`."""

    BINDINGS = [
        Binding("backspace", "delete_left", "Delete", show=False, id="secret.backspace"),
        Binding("enter", "submit", "Submit", show=False, id="secret.submit"),
    ]

    class Submitted(Message):
        def __init__(self, entry: SecretInput) -> None:
            super().__init__()
            self.entry = entry

        @property
        def control(self) -> SecretInput:
            return self.entry

    def render(self) -> Text:
        if not self._value:
            return Text(self.placeholder, style="dim")
        return Text(MASK)

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character:
            event.stop()
            event.prevent_default()
            self._set(self._value + event.character)

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        lines = event.text.splitlines()
        if lines:
            self._set(self._value + lines[0])

    def action_delete_left(self) -> None:
        if self._value:
            self._set(self._value[:-1])

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self))


class PasteZone(_SecretEntry):
    """Multi-line material (a venue's one-time JSON, a PEM key) arriving by terminal
    paste.  Shows what was received, never the text itself."""

    class Changed(_SecretEntry.Changed):
        """Handled as `on_paste_zone_changed`."""

    def render(self) -> Text:
        if not self._value:
            return Text(self.placeholder, style="dim")
        lines = self._value.count("\n") + 1
        return Text(f"{MASK}  received ({lines} line{'s' if lines != 1 else ''}); ctrl+u clears")

    def set_text(self, text: str) -> None:
        self._set(text)

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        # A paste replaces: two pastes glued together are never what the user meant.
        self._set(event.text)

    async def _on_key(self, event: events.Key) -> None:
        # Terminals without bracketed paste deliver a paste as keystrokes.
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self._set(self._value + "\n")
        elif event.is_printable and event.character:
            event.stop()
            event.prevent_default()
            self._set(self._value + event.character)
