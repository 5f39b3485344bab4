"""The footer, on as many rows as its keys need.

Textual's Footer is one row: on a narrow terminal the keys run under the command-palette
key and out of sight.  Every key of the dashboard must stay visible, so when they do not
fit on one row this footer lays them out in a grid of as many columns as fit, and grows a
row at a time.
"""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE_ROOM = 13  # "▏^p palette" and its padding, docked on the right


def grid_shape(lengths: list[int], room: int) -> tuple[int, int]:
    """(columns, rows) for items of `lengths` cells laid out row by row in `room` cells,
    with one cell between columns: the most columns that fit."""
    n = len(lengths)
    if n == 0:
        return 0, 1
    cols = n
    while cols > 1:
        widths = [max(lengths[c::cols]) for c in range(cols)]
        if sum(widths) + cols - 1 <= room:
            break
        cols -= 1
    return cols, math.ceil(n / cols)


class KeyFooter(Footer):
    DEFAULT_CSS = """
    KeyFooter.-rows {
        layout: grid;
        grid-columns: auto;
        grid-rows: 1;
        grid-gutter: 0 1;
    }
    KeyFooter.-rows FooterKey {
        margin: 0;
    }
    """

    def __init__(self, *, compact: bool = True, show_command_palette: bool = True) -> None:
        super().__init__(compact=compact, show_command_palette=show_command_palette)
        self._laid_out_for = -1

    def compose(self) -> ComposeResult:
        items = list(super().compose())
        keys = [w for w in items if isinstance(w, FooterKey) and not w.has_class("-command-palette")]
        room = self.app.size.width - (PALETTE_ROOM if len(keys) != len(items) else 0)
        # compact: "k description"; the full style pads the key with a space each side
        pad = 1 if self.compact else 3
        cols, rows = grid_shape([len(k.key_display) + pad + len(k.description) for k in keys], room)
        self._laid_out_for = self.app.size.width
        self.set_class(rows > 1, "-rows")
        self.styles.height = rows
        if rows > 1:
            self.styles.grid_size_columns = cols
        yield from items

    def on_resize(self) -> None:
        if self._bindings_ready and self.app.size.width != self._laid_out_for:
            self.call_after_refresh(self.recompose)
