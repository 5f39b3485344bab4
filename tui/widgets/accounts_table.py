"""The dashboard's table: one row per account, live cells redrawn only when in view.

Rows are built from `Row`, a snapshot of an account that holds no credential value (the
key column is already masked by vault.ops.views), so the table never holds a secret.  The
app's one timer calls `tick(now)`: it recomputes the live cells of the rows on screen and
redraws only the cells whose text changed, and only the lines of those rows.

Why not `DataTable.update_cell` for the countdowns: each call bumps the table-wide update
counter that keys every DataTable cache and repaints the whole widget, so one changed
countdown re-rendered every line in view and the header, and rebuilt the row-offset and
row-order lists of all 1,000 rows.  A live cell is instead written into the table's data,
DataTable's per-line caches are dropped (everything in them predates the write) and only
the changed rows' lines are marked dirty.  And a cell that changed is drawn directly
(`_draw_cell`) rather than through rich's console (Styled(Padding(text)), ~0.2 ms a cell):
the same segments, as tests/test_tui_idle.py checks against DataTable's own drawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.coordinate import Coordinate
from textual.geometry import Region
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
        self.rows_redrawn = 0  # rows whose lines tick() marked for repainting
        # DataTable keys its cell render cache on a table-wide update counter, so one
        # changed countdown re-renders every visible cell.  This cache is keyed on each
        # cell's own version instead: a tick re-renders only the cells that changed.
        self._versions: dict[tuple[str, str], int] = {}
        self._cells: dict[tuple, object] = {}
        self._cell_styles: dict[tuple, tuple] = {}  # a cell position's styles (see _cell_style)
        self.layout_name = ""
        self.columns_shown: tuple[tuple[str, str, int], ...] = ()
        self._widths: dict[str, int] = {}
        self._now = 0.0
        self._paint_style: Style | None = None

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
        self._cell_styles.clear()
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
        columns = [k for k, _, _ in self.columns_shown]
        if any([self._redraw(label, now, columns) for label in self._order]):
            self._forget_lines()
            self.refresh()

    def _redraw(self, label: str, now: float, columns) -> bool:
        """Put the new text of `label`'s `columns` into the table where it changed (the
        caller then repaints); True if any did."""
        row = self._rows[label]
        data = self._data[label]  # DataTable's own cells, keyed by RowKey/ColumnKey (str-equal)
        changed = False
        for key in columns:
            if key not in self._widths:
                continue
            text = self._text(row, key, now)
            old = self._shown.get((label, key))
            # Text equality compares the characters and spans, not the base style: a key
            # turning yellow at 80% of its maximum age keeps its "72d".
            if old is None or old != text or old.style != text.style:
                self._shown[(label, key)] = text
                self._versions[(label, key)] = self._versions.get((label, key), 0) + 1
                data[key] = text
                self.updates += 1
                changed = True
        return changed

    def _forget_lines(self) -> None:
        """Drop DataTable's caches of rendered lines and rows after cells were written
        behind its back: they are keyed on its update counter, which such a write leaves
        alone (so that the row-offset and row-order lists stay valid).  Cells themselves
        are cached by `_render_cell` on their own versions."""
        self._line_cache.clear()
        self._row_render_cache.clear()
        self._row_renderable_cache.clear()
        self._cell_render_cache.clear()

    def _repaint_rows(self, indices: list[int]) -> None:
        """Mark only the lines of these rows (all one line high) as needing a repaint."""
        top = self.header_height if self.show_header else 0
        scroll_y = round(self.scroll_y)
        width = self.size.width
        runs: list[list[int]] = []
        for index in indices:
            if runs and runs[-1][1] == index:
                runs[-1][1] = index + 1
            else:
                runs.append([index, index + 1])
        self.refresh(*(Region(0, top + start - scroll_y, width, end - start) for start, end in runs))

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
        order = self._order
        dirty = [index for index in self.rows_in_view() if self._redraw(order[index], now, LIVE)]
        if dirty:
            self._forget_lines()
            self._repaint_rows(dirty)
            self.rows_redrawn += len(dirty)

    # --- drawing ---------------------------------------------------------------------
    #
    # Every countdown in view changes each second, so each tick repaints every row in view
    # (about 35 at 40 lines).  DataTable draws a line at a cost that matters at that rate:
    # three walks up the DOM for styles it could look up once a paint, and each changed
    # cell through rich's console.  These overrides draw the same segments for the plain
    # case (one-line rows, a row cursor, no fixed or labelled columns: this table) and hand
    # anything else to DataTable; tests/test_tui_idle.py compares the two line by line.

    def render_lines(self, crop: Region):
        self._paint_style = self.rich_style  # the table's own style: constant through one paint
        try:
            return super().render_lines(crop)
        finally:
            self._paint_style = None

    def render_line(self, y: int):
        style = self._paint_style
        if style is None or self.fixed_rows:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, style)

    def _render_line_in_row(self, row_key, line_no: int, base_style: Style, cursor_location: Coordinate,
                            hover_location: Coordinate):
        row_index = self._row_locations.get(row_key)
        if (row_index is None or row_key is self._header_row_key or self.cursor_type != "row"
                or self.fixed_columns or self._should_render_row_labels):
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        cache_key = (row_key, line_no, base_style, cursor_location, hover_location, self.cursor_type,
                     self.show_cursor, self._show_hover_cursor, self._update_count, self._pseudo_class_state)
        cached = self._row_render_cache.get(cache_key)
        if cached is not None:
            return cached
        row_style = self._get_row_style(row_index, base_style)
        cursor = cursor_location.row == row_index  # a row cursor highlights every cell of its row
        hover = hover_location.row == row_index
        render_cell = self._render_cell
        cells = []
        table_width = self._row_label_column_width
        for column_index, column in enumerate(self.ordered_columns):
            width = column.get_render_width(self)
            table_width += width
            cells.append(render_cell(row_index, column_index, row_style, width, cursor=cursor, hover=hover)[line_no])
        extend_style, _ = self._get_styles_to_render_cell(
            False, False, False, hover_location.row == (row_index or 0), cursor, self.show_cursor,
            self._show_hover_cursor, False, False,
        )
        extend_style = row_style + extend_style + Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        cells.append([Segment(" " * max(0, self.size.width - table_width), extend_style)])
        pair = ([], cells)
        self._row_render_cache[cache_key] = pair
        return pair

    def _get_row_style(self, row_index: int, base_style: Style) -> Style:
        """DataTable's rule, with the row's component style read through the widget's
        style cache (DataTable looks it up afresh, a walk up the DOM, for every line)."""
        if row_index == -1:
            return self.get_component_rich_style("datatable--header")
        if row_index < self.fixed_rows:
            return self.get_component_rich_style("datatable--fixed")
        if self.zebra_stripes:
            return self.get_component_rich_style("datatable--odd-row" if row_index % 2 else "datatable--even-row")
        return base_style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cells.clear()  # a theme or CSS change recolours every cell
        self._cell_styles.clear()

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
            text = self._data.get(label, {}).get(column)  # keyed by RowKey/ColumnKey, both str-equal
            lines = None
            if isinstance(text, Text):
                lines = self._draw_cell(text, row_index, column_index, base_style, width, cursor, hover)
            if lines is None:
                lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cells[key] = lines
        return lines

    def _draw_cell(self, text: Text, row_index: int, column_index: int, base_style: Style, width: int,
                   cursor: bool, hover: bool) -> list[list[Segment]] | None:
        """What DataTable._render_cell draws for a cell holding `text`, built directly:
        the padding, the text's pieces, the filler, each styled (base + meta + cursor
        component) + the piece's style + the post style, as rich's Styled(Padding(text))
        would.  None (draw it DataTable's way) for anything but one line of text that fits
        in a one-line row."""
        pad = self.cell_padding
        room = width - 2 * pad
        plain = text.plain
        if not plain or "\n" in plain or "\t" in plain or text.justify not in (None, "default"):
            return None
        length = text.cell_len
        if length > room:
            return None
        where = (row_index, column_index, base_style, cursor, hover, self.show_cursor, self._show_hover_cursor,
                 self.cursor_foreground_priority, self.cursor_background_priority)
        context = self._cell_styles.get(where)
        if context is None:
            context = self._cell_styles[where] = self._cell_style(row_index, column_index, base_style, cursor, hover)
        if not context:
            return None
        pre, post, blank = context
        if text._spans:
            pieces = [(piece, style) for piece, style, _ in Text("\n").join([text]).render(self.app.console)]
        else:  # what join + render make of a text without spans: its own style, or none
            pieces = [(plain, self.app.console.get_style(text.style) if text.style else None)]
        line = [Segment(" " * pad, blank)] if pad else []
        for piece, style in pieces:
            if pre:
                style = pre + style
            if post:
                style = style + post if style else post
            line.append(Segment(piece, style))
        if length < room:
            line.append(Segment(" " * (room - length), blank))
        if pad:
            line.append(Segment(" " * pad, blank))
        return [line]

    def _cell_style(self, row_index: int, column_index: int, base_style: Style, cursor: bool,
                    hover: bool) -> tuple[Style, Style, Style] | tuple[()]:
        """(pre, post, blank) for a cell: DataTable's styles for that cell (its meta
        included) and what the padding is drawn in; () where DataTable draws differently
        (fixed rows or columns, rows more than one line high)."""
        if len(self._cell_styles) > 20_000:
            self._cell_styles.clear()
        row = self.rows.get(self._row_locations.get_key(row_index))
        if (row is None or row.height != 1 or self.fixed_rows or self.fixed_columns
                or self.app.console_options.justify not in (None, "default")):
            return ()
        component, post = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css",
        )
        pre = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component
        blank = pre + Style.null() if pre else Style.null()
        if post:
            blank = blank + post if blank else post
        return pre, post, blank

    def label_at(self, index: int) -> str:
        return str(self.coordinate_to_cell_key(Coordinate(index, 0)).row_key.value)
