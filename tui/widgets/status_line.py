"""One line of live status under the table.  Redrawn in place, never re-laid out:
`Static.update` asks for a layout pass, which re-renders the whole screen, the table
included, once a second."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widget import Widget


class StatusLine(Widget):
    DEFAULT_CSS = Path(__file__).with_suffix(".tcss").read_text(encoding="utf-8")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = Text()

    def show(self, text: Text) -> None:
        if text != self._text:
            self._text = text
            self.refresh()

    def render(self) -> Text:
        return self._text
