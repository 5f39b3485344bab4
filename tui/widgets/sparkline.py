"""Rate-limit remaining over this session, as a sparkline with its range."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Sparkline, Static


class RateSparkline(Widget):
    DEFAULT_CSS = Path(__file__).with_suffix(".tcss").read_text(encoding="utf-8")

    def compose(self) -> ComposeResult:
        yield Sparkline([], summary_function=min, id="spark")
        yield Static("", id="spark-caption")

    def show(self, samples: list[int], limit: int | None) -> None:
        spark = self.query_one("#spark", Sparkline)
        caption = self.query_one("#spark-caption", Static)
        if not samples:
            spark.data = []
            caption.update("no rate-limit readings yet this session")
            self.set_class(True, "-empty")
            return
        self.set_class(False, "-empty")
        spark.data = list(samples)
        of = f"/{limit}" if limit else ""
        caption.update(
            f"{len(samples)} reading{'s' if len(samples) != 1 else ''}: "
            f"min {min(samples)}{of}, last {samples[-1]}{of}"
        )
