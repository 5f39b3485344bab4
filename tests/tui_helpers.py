"""Pilot helpers shared by the dashboard tests."""

from __future__ import annotations

from tui import fixtures
from tui.app import KeywardApp
from tui.widgets.accounts_table import AccountsTable


async def settle(app: KeywardApp, pilot) -> None:
    """Let screens switch and every background job finish (no sleeping on the clock)."""
    await fixtures.settle(pilot)


async def press(app: KeywardApp, pilot, *keys: str) -> None:
    """Press the keys, then settle: what a person sees after typing them."""
    await pilot.press(*keys)
    await settle(app, pilot)


async def select(app: KeywardApp, pilot, label: str) -> None:
    table = app.screen.query_one(AccountsTable)
    table.move_cursor(row=table.visible_labels.index(label))
    await pilot.pause()
    assert table.selected_label == label
