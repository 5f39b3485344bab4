"""Pilot helpers shared by the dashboard tests."""

from __future__ import annotations

from tui.app import KeywardApp
from tui.widgets.accounts_table import AccountsTable


async def settle(app: KeywardApp, pilot) -> None:
    """Let screens switch and every background job finish (no sleeping on the clock)."""
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


async def select(app: KeywardApp, pilot, label: str) -> None:
    table = app.screen.query_one(AccountsTable)
    table.move_cursor(row=table.visible_labels.index(label))
    await pilot.pause()
    assert table.selected_label == label
