"""Rate-limit remaining over this session, drawn against the limit (0 at the bottom, the
full bucket at the top) so that one low reading looks low."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widget import Widget

BLOCKS = "▁▂▃▄▅▆▇█"


def spark(samples: list[int], limit: int | None, width: int) -> str:
    """The last `width` samples as block characters scaled to [0, limit]."""
    if not samples or width <= 0:
        return ""
    top = limit if limit else max(samples) or 1
    out = []
    for value in samples[-width:]:
        level = min(1.0, max(0.0, value / top))
        out.append(BLOCKS[round(level * (len(BLOCKS) - 1))])
    return "".join(out)


class RateSparkline(Widget):
    DEFAULT_CSS = Path(__file__).with_suffix(".tcss").read_text(encoding="utf-8")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.samples: list[int] = []
        self.limit: int | None = None

    def show(self, samples: list[int], limit: int | None) -> None:
        self.samples, self.limit = list(samples), limit
        self.refresh()

    def render(self) -> Text:
        if not self.samples:
            return Text("no rate-limit readings yet this session", style="dim")
        last = self.samples[-1]
        low = self.limit and last / self.limit < 0.25
        text = Text(spark(self.samples, self.limit, max(1, self.size.width)), style="red" if low else "cyan")
        of = f"/{self.limit}" if self.limit else ""
        n = len(self.samples)
        text.append(f"\n{n} reading{'s' if n != 1 else ''}: min {min(self.samples)}{of}, last {last}{of}", style="dim")
        return text
