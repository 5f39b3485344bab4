"""A bar and one line saying how strong the passphrase being typed is (see tui.passphrase)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widget import Widget

from ..passphrase import Strength, estimate

_STYLES = ("bold red", "red", "yellow", "green", "bold green")
_CELLS = 20


class StrengthMeter(Widget):
    DEFAULT_CSS = Path(__file__).with_suffix(".tcss").read_text(encoding="utf-8")

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.strength: Strength = estimate("")

    def measure(self, passphrase: str) -> Strength:
        """Estimate `passphrase` and redraw.  The passphrase itself is not kept."""
        self.strength = estimate(passphrase)
        self.refresh()
        return self.strength

    def render(self) -> Text:
        s = self.strength
        filled = 0 if s.bits == 0 else max(1, min(_CELLS, round(s.bits / 100 * _CELLS)))
        style = _STYLES[s.score]
        text = Text()
        text.append("█" * filled, style=style)
        text.append("░" * (_CELLS - filled), style="dim")
        text.append(f"  {s.label}", style=style)
        if s.bits:
            text.append(f"  ≈ {s.bits:.0f} bits", style="dim")
        if s.reason and s.bits:
            text.append(f"\n{s.reason}: {s.advice}", style="italic")
        return text
