"""The dashboard's table: one row per account, live cells redrawn only when in view.

Rows are built from `Row`, a snapshot of an account that holds no credential value (the
key column is already masked by vault.ops.views), so the table never holds a secret.  The
app's one timer calls `tick(now)`: it recomputes the live cells of the rows on screen and
calls `update_cell` only where the text changed, inside one `batch_update`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import events
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from vault.ops import views
from vault.core.model import Account, Health, RateLimit, Token
from vault.core.text import printable

from . import countdown

# (key, title, width) per layout.  The table picks the widest layout that fits: every
# column from 135 terminal columns; from 100, short live cells and no masked key; below,
# the venue gives way too, so that the live columns always show (the detail screen has
# the rest).  Cell padding adds 2 a column, the scrollbar gutter 2.
LAYOUTS = {
    "full": (
        ("label", "Label", 16),
        ("venue", "Venue", 14),
        ("env", "Env", 7),
        ("key", "Key", 12),
        ("age", "Age", 6),
        ("token", "Token", 9),
        ("rate", "Rate limit", 25),
        ("health", "Health", 31),
    ),
    "medium": (
        ("label", "Label", 14),
        ("venue", "Venue", 14),
        ("env", "Env", 7),
        ("age", "Age", 5),
        ("token", "Token", 8),
        ("rate", "Rate", 12),
        ("health", "Health", 21),
    ),
    "compact": (
        ("label", "Label", 13),
        ("env", "Env", 7),
        ("age", "Age", 5),
        ("token", "Token", 8),
        ("rate", "Rate", 12),
        ("health", "Health", 21),
    ),
}
COLUMNS = LAYOUTS["full"]
LIVE = ("age", "token", "rate", "health")


def layout_width(columns) -> int:
    return sum(width + 2 for _, _, width in columns)


def layout_for(width: int) -> str:
    """The widest layout whose columns fit in `width` cells (the table's, gutter excluded)."""
    for name in ("full", "medium"):
        if layout_width(LAYOUTS[name]) <= width:
            return name
    return "compact"


@dataclass(frozen=True)
class Row:
    """What the table shows of an account: no credential value, ever."""

    label: str
    venue: str
    env: str
    key: str  # masked by vault.ops.views.key_display when the key is secret
    key_since: float
    max_age_days: int
    token: Token | None  # a copy without its value: times and kind only
    rate: RateLimit | None
    health: Health | None
    tags: tuple[str, ...] = ()
    signing_window: int | None = None  # signed per request: the signature's life (views.signing_window)

    @classmethod
    def of(cls, acct: Account, default_max_age: int) -> Row:
        tok = acct.token
        return cls(
            label=acct.label,
            venue=acct.venue,
            env=views.env_name(acct),
            key=views.key_display(acct),
            key_since=acct.rotated_at or acct.created_at,
            max_age_days=views.key_max_age(acct, default_max_age),
            token=None if tok is None else Token("", tok.issued_at, tok.expires_at, tok.kind),
            rate=acct.rate_limit,
            health=acct.health,
            tags=tuple(acct.tags),
            signing_window=views.signing_window(acct),
        )

    def matches(self, needle: str) -> bool:
        hay = " ".join((self.label, self.venue, self.env, *self.tags)).lower()
        return all(part in hay for part in needle.lower().split())

    def cell(self, column: str, now: float, width: int = 0, short: bool = False) -> Text:
        """The cell's text, clipped to `width` (0: as long as it is).  `short`: the live
        cells' short forms (no reset countdown, no latency) for narrow layouts."""
        text = self._cell(column, now, short)
        if width and text.cell_len > width:
            text.truncate(width, overflow="ellipsis")
        return text

    def _cell(self, column: str, now: float, short: bool) -> Text:
        if column == "label":
            return Text(printable(self.label), style="bold")
        if column == "venue":
            return Text(self.venue)
        if column == "env":
            return Text(self.env, style="dim" if self.env in ("custom", "sandbox") else "")
        if column == "key":
            return Text(printable(self.key))  # a non-secret key is the user's text, shown as is
        if column == "age":
            return countdown.age_cell((now - self.key_since) / 86400, self.max_age_days)
        if column == "token":
            return countdown.token_cell(self.token, now, self.signing_window)
        if column == "rate":
            return countdown.rate_cell(self.rate, now, short=short)
        if column == "health":
            return countdown.health_cell(self.health, now, self.token, short=short)
        raise KeyError(column)


class AccountsTable(DataTable):
    DEFAULT_CSS = Path(__file__).with_suffix(".tcss").read_text(encoding="utf-8")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._rows: dict[str, Row] = {}
        self._order: list[str] = []  # labels in display order (after the filter)
        self._shown: dict[tuple[str, str], Text] = {}
        self.filter_text = ""
        self.updates = 0  # cells redrawn by tick(): lets tests and the benchmark see the cost
        # DataTable keys its cell render cache on a table-wide update counter, so one
        # changed countdown re-renders every visible cell.  This cache is keyed on each
        # cell's own version instead: a tick re-renders only the cells that changed.
        self._versions: dict[tuple[str, str], int] = {}
        self._cells: dict[tuple, object] = {}
        self.layout_name = ""
        self.columns_shown: tuple[tuple[str, str, int], ...] = ()
        self._widths: dict[str, int] = {}
        self._now = 0.0

    def on_mount(self) -> None:
        self._set_layout(layout_for(self._room()))

    def _room(self) -> int:
        width = self.size.width or self.app.size.width
        return width - self.styles.scrollbar_size_vertical

    def on_resize(self) -> None:
        name = layout_for(self._room())
        if name != self.layout_name:
            self._set_layout(name)
            self._rebuild(self._now)

    def _set_layout(self, name: str) -> None:
        self.layout_name = name
        self.columns_shown = LAYOUTS[name]
        self._widths = {key: width for key, _, width in self.columns_shown}
        self.clear(columns=True)
        self._order = []
        for key, title, width in self.columns_shown:
            self.add_column(title, key=key, width=width)

    def _text(self, row: Row, key: str, now: float) -> Text:
        return row.cell(key, now, self._widths[key], short=self.layout_name != "full")

    # --- keys ----------------------------------------------------------------------------

    async def _on_key(self, event: events.Key) -> None:
        """"/" opens the filter here, in the table's own queue, so that the keys typed
        right behind it (queued to the table before the focus could move) are handed on
        to the filter instead of being lost or, worse, taken as commands ("/desk" fast
        would otherwise open the delete dialog)."""
        focused = self.screen.focused
        if focused is not None and focused is not self and event.is_printable and event.character:
            event.stop()
            event.prevent_default()
            focused.post_message(events.Key(event.key, event.character))
            return
        open_filter = getattr(self.screen, "action_filter", None)
        if event.key == "slash" and callable(open_filter):
            event.stop()
            event.prevent_default()
            open_filter()
            return
        await super()._on_key(event)

    # --- content -----------------------------------------------------------------------

    @property
    def selected_label(self) -> str | None:
        if not self._order or not (0 <= self.cursor_row < len(self._order)):
            return None
        return self._order[self.cursor_row]

    @property
    def visible_labels(self) -> list[str]:
        return list(self._order)

    def set_rows(self, rows: list[Row], now: float) -> None:
        """Show `rows` (filtered), keeping the cursor on the same account when it remains."""
        self._now = now
        self._rows = {r.label: r for r in rows}
        order = [r.label for r in rows if not self.filter_text or r.matches(self.filter_text)]
        if order == self._order and self.row_count == len(order):
            self._update_all(now)
            return
        self._rebuild(now, order)

    def _rebuild(self, now: float, order: list[str] | None = None) -> None:
        selected = self.selected_label
        if order is None:
            order = [label for label, r in self._rows.items() if not self.filter_text or r.matches(self.filter_text)]
        self.clear()
        self._shown.clear()
        self._cells.clear()
        self._order = order
        for label in order:
            row = self._rows[label]
            cells = []
            for key, _, _ in self.columns_shown:
                text = self._text(row, key, now)
                self._shown[(label, key)] = text
                cells.append(text)
            self.add_row(*cells, key=label)
        if selected in order:
            self.move_cursor(row=order.index(selected), animate=False, scroll=True)

    def set_filter(self, text: str, now: float) -> None:
        self.filter_text = text.strip()
        self.set_rows(list(self._rows.values()), now)

    def _update_all(self, now: float) -> None:
        """Same rows, new data: redraw every cell whose text changed."""
        with self.app.batch_update():
            for label in self._order:
                self._redraw(label, now, [k for k, _, _ in self.columns_shown])

    def _redraw(self, label: str, now: float, columns) -> None:
        row = self._rows[label]
        for key in columns:
            if key not in self._widths:
                continue
            text = self._text(row, key, now)
            if self._shown.get((label, key)) != text:
                self._shown[(label, key)] = text
                self._versions[(label, key)] = self._versions.get((label, key), 0) + 1
                self.update_cell(label, key, text, update_width=False)
                self.updates += 1

    # --- the clock ---------------------------------------------------------------------

    def rows_in_view(self) -> range:
        first = int(self.scroll_y)
        height = max(0, self.scrollable_content_region.height - self.header_height)
        return range(first, min(len(self._order), first + height + 1))

    def tick(self, now: float) -> None:
        """Recompute the live cells of the rows on screen; redraw only what changed."""
        self._now = now
        if not self._order:
            return
        with self.app.batch_update():
            for index in self.rows_in_view():
                self._redraw(self._order[index], now, LIVE)

    def _render_cell(self, row_index: int, column_index: int, base_style, width: int,
                     cursor: bool = False, hover: bool = False):
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        label = self._order[row_index] if row_index < len(self._order) else None
        columns = self.columns_shown
        column = columns[column_index][0] if column_index < len(columns) else None
        key = (label, column, row_index, base_style, width, cursor, hover, self._show_hover_cursor,
               self._pseudo_class_state, self._versions.get((label, column), 0))
        lines = self._cells.get(key)
        if lines is None:
            if len(self._cells) > 20_000:
                self._cells.clear()
            lines = self._cells[key] = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        return lines

    def label_at(self, index: int) -> str:
        return str(self.coordinate_to_cell_key(Coordinate(index, 0)).row_key.value)
