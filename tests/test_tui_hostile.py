"""The dashboard with hostile text and a poisoned vault (issue 12), under Pilot.

Audit details, notes, field values and venue messages are shown as text: never parsed
as Rich markup (a path like `a[/b].kwb` crashed the audit screen with MarkupError), and
never passed to the terminal as control characters.  A vault holding values an older
keyward stored from a poisoned header opens and shows a readable state.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from tests.conftest import PASSPHRASE, SMALL_KDF, FakeClock
from tui.app import KeywardApp
from tui.widgets.accounts_table import AccountsTable
from vault.cli.app_cmds import build_demo
from vault.core.model import Health, RateLimit, Token
from vault.core.service import VaultService
from vault.sandbox import Sandbox, SandboxConfig

from .tui_helpers import press, select, settle

SIZE = (140, 40)
pytestmark = pytest.mark.anyio
HOSTILE = "a[/b].kwb [bold]x[/bold] \x1b[2J\x1b]52;c;aGk=\x07 \x9b31m \u202e"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sandbox(clock: FakeClock):
    with Sandbox(SandboxConfig(clock=clock)) as sb:
        yield sb


@pytest.fixture
def demo(vault_path: Path, sandbox: Sandbox, clock: FakeClock):
    return build_demo(vault_path, sandbox, clock=clock, kdf=SMALL_KDF, passphrase=PASSPHRASE)


def stored(cls, **values):
    """An object as an older keyward stored it: no validation on the way in."""
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj


def reopened(demo, clock) -> KeywardApp:
    """The app on the vault as it is on disk (as the next start of keyward sees it)."""
    service = VaultService.unlock(demo.service.file.path, PASSPHRASE)
    return KeywardApp(service.file.path, service=service, clock=clock, kdf=SMALL_KDF, watch=False)


def plain(cell) -> str:
    return cell.plain if hasattr(cell, "plain") else str(cell)


def no_controls(text: str) -> bool:
    return not any(c in text for c in ("\x1b", "\x07", "\x9b", "\u202e"))


async def test_the_audit_screen_shows_hostile_details_as_text(demo, clock) -> None:
    def hostile(data) -> None:
        demo.service.audit(data, "export", "pt-desk", "ok", f"bundle written to /tmp/{HOSTILE}")

    demo.service.transact(hostile)
    app = reopened(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "u")
        table = app.screen.query_one("#audit-table", DataTable)
        detail = plain(table.get_cell_at(Coordinate(0, 4)))
        assert "a[/b].kwb [bold]x[/bold]" in detail  # the brackets are text, not markup
        assert "\\x1b[2J" in detail and "\\x07" in detail and "\\x9b" in detail and "\\u202e" in detail
        assert no_controls(detail)
        await pilot.pause()  # rendered: a MarkupError would surface here
        await press(app, pilot, "escape")


async def test_a_poisoned_account_shows_a_readable_state(demo, clock) -> None:
    def poison(data) -> None:
        inf, nan = float("inf"), float("nan")
        acct = data.find("tr-agent")
        acct.rate_limit = stored(RateLimit, limit=10**400, remaining=nan, reset_at=1796111000000.0, observed_at=inf)
        acct.health = stored(Health, ok=False, checked_at=nan, latency_ms=inf, message=f"refused: {HOSTILE}",
                             status=99999, skew_s=-inf)
        acct.token = stored(Token, value="t" * 64, issued_at=nan, expires_at=inf, kind="bearer")
        acct.history = [10**400, -1, 3]
        acct.notes = f"note {HOSTILE}"
        other = data.find("kiiex-spot")
        other.rate_limit = stored(RateLimit, limit=100, remaining=7, reset_at=inf, observed_at=1.0)

    demo.service.transact(poison)
    app = reopened(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(AccountsTable)
        assert "tr-agent" in table.visible_labels
        await select(app, pilot, "tr-agent")
        await press(app, pilot, "enter")
        title = str(app.screen.query_one("#detail-title").render())
        assert "a[/b].kwb [bold]x[/bold]" in title and no_controls(title)
        live = str(app.screen.query_one("#live").render())
        assert no_controls(live)
        assert "inf" not in live and "nan" not in live
        await press(app, pilot, "escape")
        await select(app, pilot, "kiiex-spot")
        await press(app, pilot, "enter")
        await press(app, pilot, "escape")


# In-process (Pilot), so no mode here that would eat memory were a bound broken: the gzip
# bomb and the 4 GB body run in test_hostile_venues, under RLIMIT_AS.
@pytest.mark.parametrize("mode", ["drip_body", "escape_codes", "ratelimit_inf", "redirect", "deep_json"])
async def test_the_dashboard_checks_a_hostile_venue_and_stays_readable(vault_path: Path, mode: str) -> None:
    """`H` (check all) against a misbehaving venue: every account ends failing or
    checked, the screen keeps working, and what the venue sent shows as text."""
    from tests.hostile_server import HostileVenue
    from tests.test_hostile_venues import accounts

    with HostileVenue() as hv:
        service = VaultService.create(vault_path, PASSPHRASE, SMALL_KDF)
        for acct in accounts(hv.base_url):
            service.add_account(acct)

        def short_deadline(data) -> None:
            data.settings.request_deadline_s = 1

        service.transact(short_deadline)
        hv.mode = mode
        app = KeywardApp(vault_path, service=service, kdf=SMALL_KDF, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await press(app, pilot, "H")
            checked = VaultService.unlock(vault_path, PASSPHRASE)
            for label in ("pt", "tr", "hy", "kx"):
                health = checked.get(label).health
                assert health is not None, label
                if mode not in ("ratelimit_inf",):
                    assert health.ok is False and health.message, (label, health)
            for label in ("tr", "kx"):
                await select(app, pilot, label)
                await press(app, pilot, "enter")
                live = str(app.screen.query_one("#live").render())
                assert no_controls(live) and "inf" not in live and "nan" not in live, live
                await press(app, pilot, "escape")
            assert app.screen.query_one(AccountsTable).visible_labels  # still the dashboard
