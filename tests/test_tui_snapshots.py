"""Snapshots of every screen, with all four venues, on a fixed clock.

The vault is `tui.fixtures.sample_vault`: fixed credentials, times and tokens, so two runs
draw the same pixels.  The app's timer is off (`watch=False`): nothing moves unless a test
moves it, and nothing reaches the network (the fixtures point at the venues' real hosts,
which the screens shown here never call).  Each test builds its own vault, so the order
the tests run in (pytest -n 2) does not matter.

Update the baselines with `pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, SMALL_KDF
from tui.app import KeywardApp
from tui.fixtures import T0, sample_vault, settle
from tui.widgets.accounts_table import AccountsTable

SIZE = (140, 40)


def fixed_clock() -> float:
    return T0


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Vault paths on screen are shown relative to ~: make ~ the test's own directory."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def vault_file(home: Path) -> Path:
    path = home / "vaultdir" / "vault.kw"
    sample_vault(path, PASSPHRASE, SMALL_KDF, fixed_clock).lock()
    return path


@pytest.fixture
def unlocked_app(vault_file: Path) -> KeywardApp:
    from vault.core.service import VaultService

    service = VaultService.unlock(vault_file, PASSPHRASE, clock=fixed_clock)
    return KeywardApp(vault_file, service=service, clock=fixed_clock, kdf=SMALL_KDF, watch=False)


async def steady(pilot) -> None:
    """Screens switched, jobs done, no blinking cursor."""
    await settle(pilot, still_cursors=True)


async def select(pilot, label: str) -> None:
    table = pilot.app.screen.query_one(AccountsTable)
    table.move_cursor(row=table.visible_labels.index(label))
    await pilot.pause()


# --- locked --------------------------------------------------------------------------------


def test_unlock_screen(snap_compare, vault_file: Path) -> None:
    app = KeywardApp(vault_file, clock=fixed_clock, watch=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=steady)


def test_unlock_wrong_passphrase(snap_compare, vault_file: Path) -> None:
    app = KeywardApp(vault_file, clock=fixed_clock, watch=False)

    async def run_before(pilot) -> None:
        await pilot.press(*"not it", "enter")
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_create_screen_refuses_weak(snap_compare, home: Path) -> None:
    app = KeywardApp(home / "vaultdir" / "new.kw", clock=fixed_clock, kdf=SMALL_KDF, watch=False)

    async def run_before(pilot) -> None:
        await steady(pilot)
        await pilot.press(*"hunter2hunter2", "enter")
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# --- the dashboard ---------------------------------------------------------------------------


def test_dashboard(snap_compare, unlocked_app: KeywardApp) -> None:
    assert snap_compare(unlocked_app, terminal_size=SIZE, run_before=steady)


def test_dashboard_filtered(snap_compare, unlocked_app: KeywardApp) -> None:
    async def run_before(pilot) -> None:
        await steady(pilot)
        await pilot.press("slash", *"prod")
        await steady(pilot)

    assert snap_compare(unlocked_app, terminal_size=SIZE, run_before=run_before)


def test_dashboard_in_80_columns(snap_compare, unlocked_app: KeywardApp) -> None:
    """The smallest terminal worth supporting: the live columns stay, the footer wraps."""
    assert snap_compare(unlocked_app, terminal_size=(80, 24), run_before=steady)


def test_detail_in_80_columns(snap_compare, unlocked_app: KeywardApp) -> None:
    async def run_before(pilot) -> None:
        await steady(pilot)
        await select(pilot, "hyper-solver")
        await pilot.press("enter")
        await steady(pilot)

    assert snap_compare(unlocked_app, terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("label", ["pt-desk", "tr-agent", "hyper-solver", "kiiex-spot"])
def test_detail(snap_compare, unlocked_app: KeywardApp, label: str) -> None:
    async def run_before(pilot) -> None:
        await steady(pilot)
        await select(pilot, label)
        await pilot.press("enter")
        await steady(pilot)

    assert snap_compare(unlocked_app, terminal_size=SIZE, run_before=run_before)


def test_detail_with_a_revealed_field(snap_compare, unlocked_app: KeywardApp) -> None:
    async def run_before(pilot) -> None:
        await steady(pilot)
        await select(pilot, "kiiex-spot")
        await pilot.press("enter")
        await steady(pilot)
        await pilot.press("down", "v")
        await steady(pilot)

    assert snap_compare(unlocked_app, terminal_size=SIZE, run_before=run_before)


def test_capture_with_a_recognised_paste(snap_compare, unlocked_app: KeywardApp) -> None:
    paste = json.dumps({"APIKey": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "APISecret": "S3CR3Tcafebabedeadbeef",
                        "Nonce": "S3CR3T777", "UserId": "1077", "UserName": "desk-three"})

    async def run_before(pilot) -> None:
        await steady(pilot)
        await pilot.press("a")
        await steady(pilot)
        pilot.app.screen.query_one("#paste").set_text(paste)
        await steady(pilot)

    assert snap_compare(unlocked_app, terminal_size=SIZE, run_before=run_before)


def test_rotate_wizard(snap_compare, unlocked_app: KeywardApp) -> None:
    async def run_before(pilot) -> None:
        await steady(pilot)
        await select(pilot, "hyper-solver")
        await pilot.press("r")
        await steady(pilot)

    assert snap_compare(unlocked_app, terminal_size=SIZE, run_before=run_before)


def test_export_dialog(snap_compare, unlocked_app: KeywardApp) -> None:
    async def run_before(pilot) -> None:
        await steady(pilot)
        await select(pilot, "tr-agent")
        await pilot.press("e")
        await steady(pilot)

    assert snap_compare(unlocked_app, terminal_size=SIZE, run_before=run_before)


def test_audit_view(snap_compare, unlocked_app: KeywardApp) -> None:
    async def run_before(pilot) -> None:
        await steady(pilot)
        await pilot.press("u")
        await steady(pilot)

    assert snap_compare(unlocked_app, terminal_size=SIZE, run_before=run_before)


def test_settings(snap_compare, unlocked_app: KeywardApp) -> None:
    async def run_before(pilot) -> None:
        await steady(pilot)
        await pilot.press("s")
        await steady(pilot)

    assert snap_compare(unlocked_app, terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare, unlocked_app: KeywardApp) -> None:
    async def run_before(pilot) -> None:
        await steady(pilot)
        await pilot.press("question_mark")
        await steady(pilot)

    assert snap_compare(unlocked_app, terminal_size=SIZE, run_before=run_before)


def test_confirm_delete(snap_compare, unlocked_app: KeywardApp) -> None:
    async def run_before(pilot) -> None:
        await steady(pilot)
        await select(pilot, "kiiex-spot")
        await pilot.press("d")
        await steady(pilot)

    assert snap_compare(unlocked_app, terminal_size=SIZE, run_before=run_before)
