"""The countdowns: one app-level timer, and each tick redraws only the cells that changed
in the rows on screen (a 1,000-account dashboard must idle cheaply)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import FakeClock, PASSPHRASE, REPO, SMALL_KDF
from tui.app import KeywardApp
from tui.fixtures import T0, sample_vault
from tui.widgets.accounts_table import LIVE, AccountsTable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_the_app_timer_is_the_only_interval_in_the_tui() -> None:
    found = [(p.relative_to(REPO), line.strip()) for p in (REPO / "tui").rglob("*.py")
             for line in p.read_text().splitlines() if re.search(r"set_interval\(|set_timer\(", line)]
    intervals = [f for f in found if "set_interval(" in f[1]]
    assert [str(p) for p, _ in intervals] == ["tui/app.py"], found


async def test_a_tick_redraws_only_changed_cells_of_rows_in_view(tmp_path: Path) -> None:
    clock = FakeClock()
    service = sample_vault(tmp_path / "v.kw", PASSPHRASE, SMALL_KDF, clock, extra=300)
    app = KeywardApp(service.file.path, service=service, clock=clock, watch=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(AccountsTable)
        assert len(table.visible_labels) == 304
        in_view = table.rows_in_view()
        assert 20 < len(in_view) < 60
        below = table.visible_labels[-1]
        before = table._shown[(below, "token")]

        app.tick()  # same second: nothing changed, nothing redrawn
        assert table.updates == 0

        clock.t += 1
        app.tick()
        assert 0 < table.updates <= len(in_view) * len(LIVE)
        assert table._shown[(below, "token")] == before  # off screen: not recomputed

        table.scroll_end(animate=False)
        await pilot.pause()
        assert len(table.visible_labels) - 1 in table.rows_in_view()
        clock.t += 1
        app.tick()
        assert table._shown[(below, "token")] != before


# --- the live cells, as pure functions of (stored state, now) ----------------------------------


def test_token_cell_counts_down_warns_in_the_last_fifth_and_marks_expiry() -> None:
    from vault.core.model import Token
    from tui.widgets.countdown import token_cell, token_state

    tok = Token("", T0, T0 + 100, "jwt")
    assert token_cell(tok, T0 + 1).plain == "01:39"
    assert token_state(tok, T0 + 79) == "live"
    assert token_state(tok, T0 + 81) == "warn"  # 19 s of 100 left
    assert "yellow" in str(token_cell(tok, T0 + 81).style)
    assert "yellow" not in str(token_cell(tok, T0 + 79).style)
    assert token_cell(tok, T0 + 100).plain == "expired" and "red" in str(token_cell(tok, T0 + 100).style)
    assert token_cell(Token("", T0, T0 + 7200, "bearer"), T0).plain == "2:00:00"
    assert token_cell(None, T0).plain == "—"


def test_age_rate_and_health_cells() -> None:
    from vault.core.model import Health, RateLimit, Token
    from tui.widgets.countdown import age_cell, health_cell, rate_cell

    assert age_cell(91, 90).plain == "91d!" and age_cell(30, 90).plain == "30d"
    rl = RateLimit(limit=600, remaining=150, reset_at=T0 + 42, observed_at=T0)
    assert rate_cell(rl, T0).plain == "▰▰▱▱▱▱▱▱ 150/600 ↻00:42"
    assert rate_cell(rl, T0 + 43).plain == "▰▰▱▱▱▱▱▱ 150/600"  # reset passed: no countdown
    assert rate_cell(rl, T0, short=True).plain == "▰▱▱ 150/600"
    ok = Health(ok=True, checked_at=T0 - 125, latency_ms=84.0, message="ok", status=200, skew_s=0.1)
    assert health_cell(ok, T0).plain == "● ok 84ms 2m ago"
    assert health_cell(ok, T0, short=True).plain == "● ok 2m ago"
    skewed = Health(ok=False, checked_at=T0 - 5, latency_ms=40.0, message="x", status=401, skew_s=-47.0)
    jwt30 = Token("", T0, T0 + 30, "jwt")
    assert health_cell(skewed, T0, jwt30).plain == "✖ failing 5s ago ⚠ skew -47s"
    assert health_cell(skewed, T0, jwt30, short=True).plain == "✖ failing ⚠ skew -47s"
    assert health_cell(None, T0).plain == "unchecked"


@pytest.mark.parametrize("width, layout", [(140, "full"), (120, "medium"), (100, "medium"), (80, "compact")])
def test_the_table_layout_fits_the_terminal(width: int, layout: str) -> None:
    from tui.widgets.accounts_table import LAYOUTS, layout_for, layout_width

    assert layout_for(width - 2) == layout  # the scrollbar gutter
    assert layout_width(LAYOUTS[layout]) <= width - 2
