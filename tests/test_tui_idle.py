"""The idle dashboard's cost, as behaviour: what an idle second repaints, and that drawing
it cheaply draws exactly what DataTable would (issue 14: 1,000 accounts idle at <= 5% of a
core; benchmarks/bench_tui.py measures it)."""

from __future__ import annotations

import functools
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.widgets import DataTable

from tests.conftest import FakeClock, PASSPHRASE, SMALL_KDF
from tui.app import KeywardApp
from tui.fixtures import T0, sample_vault, settle
from tui.widgets.accounts_table import AccountsTable
from vault.core.model import Token

pytestmark = pytest.mark.anyio

TICKING = {"acct-0002": 600, "acct-0005": 1200, "acct-0009": 1800}  # label -> token life left at T0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def mostly_still_vault(path: Path, clock: FakeClock):
    """60 accounts whose cells do not change from one second to the next, but for the
    three in TICKING, whose tokens count down."""
    service = sample_vault(path, PASSPHRASE, SMALL_KDF, clock, extra=60)

    def still(data) -> None:
        for acct in data.accounts:
            acct.settings.pop("auto_refresh", None)
            acct.token = acct.rate_limit = acct.health = None
            acct.created_at = acct.rotated_at = T0 - 86400 * 3 - 3600
            if acct.label in TICKING:
                acct.token = Token("opaque", T0 - 60, T0 + TICKING[acct.label], "bearer")

    service.transact(still)
    return service


@asynccontextmanager
async def still_dashboard(tmp_path: Path):
    """The dashboard of mostly_still_vault, settled: (app, pilot, its table, the clock)."""
    clock = FakeClock()
    service = mostly_still_vault(tmp_path / "v.kw", clock)
    app = KeywardApp(service.file.path, service=service, clock=clock, watch=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        yield app, pilot, app.screen.query_one(AccountsTable), clock


def shown(table: AccountsTable) -> list[str]:
    """The table's lines as they are on screen (what its last paint drew)."""
    return [strip.text for strip in table.render_lines(Region(0, 0, table.size.width, table.size.height))]


async def test_an_idle_tick_repaints_only_the_rows_whose_text_changed(tmp_path: Path) -> None:
    async with still_dashboard(tmp_path) as (app, pilot, table, clock):
        ticking = sorted(table.visible_labels.index(label) for label in TICKING)
        assert set(ticking) <= set(table.rows_in_view())
        painted: list[int] = []
        render_line = table.render_line

        def counting(y: int):
            painted.append(y)
            return render_line(y)

        table.render_line = counting  # type: ignore[method-assign]
        for second in (1, 2, 3):
            painted.clear()
            table.updates = 0
            clock.t = T0 + second
            app.tick()
            await pilot.pause()
            # One token cell in each of three rows changed: those three lines are drawn
            # again, not the other ~34 rows in view nor the header.
            assert table.updates == len(TICKING)
            assert sorted(painted) == [table.header_height + index for index in ticking]
            lines = shown(table)
            for label, left in TICKING.items():
                line = lines[table.header_height + table.visible_labels.index(label)]
                assert label in line and f"{(left - second) // 60:02d}:{(left - second) % 60:02d}" in line


async def test_a_repainted_row_never_shows_an_older_second(tmp_path: Path) -> None:
    """The cursor moving onto and off a row redraws it: from the cells of the last tick,
    not from a line cached before that tick."""
    async with still_dashboard(tmp_path) as (app, pilot, table, clock):
        row = table.visible_labels.index("acct-0002")
        y = table.header_height + row
        for second, where in ((1, row), (2, 0), (3, row), (4, row + 1), (5, 0)):
            clock.t = T0 + second
            app.tick()
            await pilot.pause()
            table.move_cursor(row=where)
            await pilot.pause()
            assert f"09:{60 - second:02d}" in shown(table)[y], second


@pytest.mark.parametrize("size", [(140, 40), (110, 30), (80, 24)])
async def test_lines_are_drawn_as_datatable_draws_them(tmp_path: Path, size: tuple[int, int]) -> None:
    """AccountsTable draws cells and rows itself (DataTable's way costs ~0.2 ms a cell);
    line by line, for every layout, cursor, hover and focus, the segments are the same."""
    clock = FakeClock()
    service = sample_vault(tmp_path / "v.kw", PASSPHRASE, SMALL_KDF, clock, extra=40)
    app = KeywardApp(service.file.path, service=service, clock=clock, watch=False)
    ours = ("_render_line_in_row", "_render_cell", "_get_row_style")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        table = app.screen.query_one(AccountsTable)
        compared = 0
        for focused in (True, False):
            app.screen.set_focus(table if focused else None)
            await pilot.pause()
            for cursor in (0, 3):
                table.move_cursor(row=cursor)
                await pilot.pause()
                for hover in (None, Coordinate(0, 0), Coordinate(2, 1), Coordinate(5, 3)):
                    table._show_hover_cursor = hover is not None  # the mouse moved over the table
                    table.hover_coordinate = hover or Coordinate(0, 0)
                    table._pseudo_class_state = table.get_pseudo_class_state()
                    for y in range(table.size.height):
                        table._paint_style = table.rich_style  # as inside a paint
                        mine = list(table.render_line(y))
                        table._paint_style = None
                        table._forget_lines()
                        for name in ours:  # DataTable's own drawing, every cache empty
                            setattr(table, name, functools.partial(getattr(DataTable, name), table))
                        try:
                            theirs = list(DataTable.render_line(table, y))
                        finally:
                            for name in ours:
                                delattr(table, name)
                            table._forget_lines()
                        assert mine == theirs, (focused, cursor, hover, y)
                        compared += 1
        assert compared > 2 * 2 * 4 * 10  # every line in view, in each state


async def test_nothing_on_the_idle_dashboard_animates(tmp_path: Path) -> None:
    """A widget with auto_refresh redraws on its own timer, shown or not (a ProgressBar
    without a total: 15 times a second behind display: none)."""
    clock = FakeClock()
    service = sample_vault(tmp_path / "v.kw", PASSPHRASE, SMALL_KDF, clock)
    app = KeywardApp(service.file.path, service=service, clock=clock, watch=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        animated = [w for w in app.screen.walk_children() if w.auto_refresh is not None]
        assert animated == []


async def test_a_locked_app_animates_only_while_it_derives_the_key(tmp_path: Path) -> None:
    """Auto-lock leaves an idle app on the unlock screen: its "deriving key…" spinner
    exists only while a key is being derived."""
    from textual.widgets import LoadingIndicator

    clock = FakeClock()
    service = sample_vault(tmp_path / "v.kw", PASSPHRASE, SMALL_KDF, clock)
    service.lock()
    app = KeywardApp(tmp_path / "v.kw", clock=clock, watch=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert type(app.screen).__name__ == "UnlockScreen"
        assert [w for w in app.screen.walk_children() if w.auto_refresh is not None] == []
        app.screen._busy(True)
        await pilot.pause()
        assert len(app.screen.query(LoadingIndicator)) == 1
        app.screen._busy(False)
        await pilot.pause()
        assert not app.screen.query(LoadingIndicator)
        await pilot.press(*"wrong passphrase", "enter")
        await settle(pilot)
        assert "UnlockScreen" == type(app.screen).__name__ and not app.screen.query(LoadingIndicator)
        assert [w for w in app.screen.walk_children() if w.auto_refresh is not None] == []


async def test_a_cell_whose_colour_changes_but_not_its_text_is_redrawn(tmp_path: Path) -> None:
    """A key passes 80% of its maximum age (72 of 90 days) in the middle of "72d": the
    text stays, the colour turns yellow.  rich's Text equality ignores the base style."""
    clock = FakeClock()
    service = mostly_still_vault(tmp_path / "v.kw", clock)

    def ageing(data) -> None:
        acct = data.find("acct-0007")
        acct.created_at = acct.rotated_at = T0 - 72 * 86400 + 5

    service.transact(ageing)
    app = KeywardApp(service.file.path, service=service, clock=clock, watch=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(AccountsTable)
        y = table.header_height + table.visible_labels.index("acct-0007")

        def age_on_screen():
            line = table.render_lines(Region(0, 0, table.size.width, table.size.height))[y]
            return [(seg.text, seg.style.color) for seg in line if seg.text.strip() == "72d"]

        before = age_on_screen()
        assert len(before) == 1 and "yellow" not in str(table._shown[("acct-0007", "age")].style)
        clock.t = T0 + 10
        app.tick()
        await pilot.pause()
        assert "yellow" in str(table._shown[("acct-0007", "age")].style)
        after = age_on_screen()
        assert len(after) == 1 and after != before  # drawn again, in the theme's yellow
