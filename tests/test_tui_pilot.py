"""The dashboard driven key by key (Textual's Pilot) on a real temporary vault, against
the real sandbox over loopback HTTP, with a fake clock the tests advance.

Each test checks the effect where it lands: in the vault, at the sandbox, on the
clipboard, in the audit trail.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from textual.widgets import Input

from tests.conftest import PASSPHRASE, SMALL_KDF, FakeClock
from tui.app import KeywardApp
from tui.screens.create import CreateScreen
from tui.screens.dashboard import DashboardScreen
from tui.screens.detail import DetailScreen
from tui.screens.help import HelpScreen
from tui.screens.unlock import UnlockScreen
from tui.widgets.accounts_table import AccountsTable
from .tui_helpers import press, select, settle
from vault.cli.app_cmds import build_demo
from vault.sandbox import Sandbox, SandboxConfig
from vault.core.service import VaultService

SIZE = (140, 40)
pytestmark = pytest.mark.anyio  # anyio's pytest plugin (installed with httpx) runs the async tests


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(clock=clock)) as sb:
        yield sb


@pytest.fixture
def demo(vault_path: Path, sandbox: Sandbox, clock: FakeClock):
    return build_demo(vault_path, sandbox, clock=clock, kdf=SMALL_KDF, passphrase=PASSPHRASE)


def make_app(demo, clock: FakeClock) -> KeywardApp:
    # watch=False: no real-time timer; the tests call app.tick() after moving the clock.
    return KeywardApp(demo.service.file.path, service=demo.service, clock=clock, kdf=SMALL_KDF, watch=False)


def system_clipboard(tmp_path: Path, monkeypatch) -> Path:
    """A clipboard tool on PATH (the fake xclip of tests/test_clipboard.py): the file it
    keeps the clipboard in."""
    from .test_clipboard import FAKE_XCLIP

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "xclip").write_text(FAKE_XCLIP)
    (bindir / "xclip").chmod(0o755)
    store = tmp_path / "clipboard"
    for name, value in {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "DISPLAY": ":99",
                        "FAKE_CLIPBOARD": str(store), "WAYLAND_DISPLAY": "", "KEYWARD_CLIPBOARD": ""}.items():
        monkeypatch.setenv(name, value)
    return store


def notes(app: KeywardApp) -> list[str]:
    return [n.message for n in app._notifications]


def fresh(path: Path) -> VaultService:
    """The vault as another process (the CLI) sees it on disk."""
    return VaultService.unlock(path, PASSPHRASE)


# --- minting, copying, checking ---------------------------------------------------------


async def test_mint_gives_a_token_the_sandbox_accepts(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = fresh(demo.service.file.path).get("pt-desk").token
        clock.advance(40)  # the demo's token has expired by now
        await select(app, pilot, "pt-desk")
        await press(app, pilot, "m")
        token = fresh(demo.service.file.path).get("pt-desk").token
        assert token is not None and token.value != before.value and token.expires_at > clock()
        response = httpx.get(sandbox.base_url("powertrade") + "/v1/position/funds",
                             headers={"X-Power-Trade": token.value}, timeout=5)
        assert response.status_code == 200, response.text
        assert any("pt-desk: new jwt token" in n for n in notes(app))


async def test_mint_on_a_session_venue_logs_in_again(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        old = fresh(demo.service.file.path).get("tr-agent").token.value
        clock.advance(10)  # a server-signed JWT issued in the same second would be the same
        await select(app, pilot, "tr-agent")
        await press(app, pilot, "m")
        new = fresh(demo.service.file.path).get("tr-agent").token
        assert new.value != old and new.kind == "bearer"
        agents = httpx.get(sandbox.base_url("tradeready") + "/api/v1/agents",
                           headers={"Authorization": f"Bearer {new.value}"}, timeout=5)
        assert agents.status_code == 200, agents.text


async def test_copy_puts_the_token_on_the_clipboard_and_clears_it(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "kiiex-spot")
        await press(app, pilot, "c")
        acct = fresh(demo.service.file.path).get("kiiex-spot")
        assert app.clipboard == acct.token.value
        assert acct.token.value not in " ".join(notes(app))
        assert [e.action for e in fresh(demo.service.file.path).data.audit if e.account == "kiiex-spot"][-1] == "copy"
        seconds = demo.service.data.settings.clipboard_clear_seconds
        clock.advance(seconds - 1)
        app.tick()
        assert app.clipboard == acct.token.value
        clock.advance(2)
        app.tick()
        assert app.clipboard == ""


async def test_copy_headers_gives_json_a_request_can_use(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "hyper-solver")
        await press(app, pilot, "C")
        headers = json.loads(app.clipboard)
        response = httpx.get(sandbox.base_url("hypersolutions") + "/usage", headers=headers, timeout=5)
        assert response.status_code == 200, response.text


async def test_check_records_health_and_a_failure_arrives_as_the_cli_line(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "tr-agent")
        clock.advance(30)
        await press(app, pilot, "h")
        health = fresh(demo.service.file.path).get("tr-agent").health
        assert health.ok and health.checked_at == clock()
        sandbox.configure(fail_503=True)
        await press(app, pilot, "h")
        failing = fresh(demo.service.file.path).get("tr-agent").health
        assert not failing.ok
        assert failing.message in notes(app)  # the same one line `keyward check` prints
        row = app.screen.query_one(AccountsTable).get_row("tr-agent")
        assert "failing" in row[-1].plain


async def test_check_all_checks_every_account_with_progress(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        clock.advance(60)
        await press(app, pilot, "H")
        vault = fresh(demo.service.file.path)
        assert {a.label: a.health.checked_at for a in vault.accounts} == dict.fromkeys(demo.labels, clock())
        bar = app.screen.query_one("#check-progress")
        assert bar.progress == bar.total == 4
        assert "All 4 accounts ok." in notes(app)


async def test_a_slow_venue_does_not_freeze_the_screen(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        sandbox.configure(latency_ms=1500)
        await select(app, pilot, "tr-agent")
        await pilot.press("h")
        await pilot.pause()
        assert app.jobs.busy(("check", "tr-agent"))
        await pilot.press("slash", "k", "i")  # the UI still answers keys while the check waits
        await pilot.pause()
        assert app.screen.query_one(AccountsTable).visible_labels == ["kiiex-spot"]
        assert app.jobs.busy(("check", "tr-agent"))
        await settle(app, pilot)
        assert not app.jobs.busy(("check", "tr-agent"))


# --- deleting, locking ------------------------------------------------------------------


async def test_delete_asks_for_the_label_and_then_removes(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "hyper-solver")
        await press(app, pilot, "d")
        await pilot.press(*"hyper", "enter")  # not the label: nothing happens
        await settle(app, pilot)
        assert fresh(demo.service.file.path).data.find("hyper-solver") is not None
        box = app.screen.query_one("#confirm-label", Input)
        box.value = ""
        await press(app, pilot, *"hyper-solver", "enter")
        assert fresh(demo.service.file.path).data.find("hyper-solver") is None
        assert isinstance(app.screen, DashboardScreen)
        assert "hyper-solver" not in app.screen.query_one(AccountsTable).visible_labels


async def test_escape_keeps_the_account(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "kiiex-spot")
        await press(app, pilot, "d")
        await press(app, pilot, "escape")
        assert fresh(demo.service.file.path).data.find("kiiex-spot") is not None


def no_vault_screens(app: KeywardApp) -> bool:
    return not any(isinstance(s, (DashboardScreen, DetailScreen))
                   for stack in app._screen_stacks.values() for s in stack)


async def test_lock_drops_the_decrypted_state(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    service = demo.service
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "kiiex-spot")
        await press(app, pilot, "c")
        assert app.clipboard
        await press(app, pilot, "enter")
        assert isinstance(app.screen, DetailScreen)
        await press(app, pilot, "l")
        assert app.session is None
        assert service.locked and service._data is None and service._key is None
        assert isinstance(app.screen, UnlockScreen)
        assert no_vault_screens(app)
        assert app.clipboard == ""
        assert "Locked." in str(app.screen.query_one("#unlock-message").render())


async def test_auto_lock_after_idle_and_unlock_again(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        minutes = demo.service.data.settings.auto_lock_minutes
        clock.advance(minutes * 60 - 5)
        app.tick()
        assert app.session is not None
        await pilot.press("down")  # activity resets the idle timer
        clock.advance(minutes * 60 - 5)
        app.tick()
        assert app.session is not None
        clock.advance(10)
        app.tick()
        await settle(app, pilot)
        assert app.session is None and demo.service.locked
        assert isinstance(app.screen, UnlockScreen)
        assert no_vault_screens(app)
        await press(app, pilot, *"not the passphrase", "enter")
        assert isinstance(app.screen, UnlockScreen)
        assert "wrong passphrase" in str(app.screen.query_one("#unlock-message").render())
        await press(app, pilot, *PASSPHRASE, "enter")
        assert isinstance(app.screen, DashboardScreen)
        assert app.screen.query_one(AccountsTable).visible_labels == demo.labels


# --- first run ---------------------------------------------------------------------------


async def test_create_refuses_a_weak_passphrase_with_a_reason(tmp_path: Path, clock) -> None:
    path = tmp_path / "new" / "vault.kw"
    app = KeywardApp(path, clock=clock, kdf=SMALL_KDF, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, CreateScreen)
        await pilot.press(*"password123", "enter")
        await pilot.pause()
        assert "Refused: too short" in str(app.screen.query_one("#create-message").render())
        assert app.screen.query_one("#meter").strength.label == "very weak"
        assert not path.exists()
        await pilot.press("ctrl+u", *"river-tundra-oxide-lantern", "enter", *"river-tundra-oxide-lantrn", "enter")
        await pilot.pause()
        assert "differ" in str(app.screen.query_one("#create-message").render())
        await press(app, pilot, *"river-tundra-oxide-lantern", "enter")
        assert isinstance(app.screen, DashboardScreen)
        assert VaultService.unlock(path, "river-tundra-oxide-lantern").accounts == []


# --- filter, help, detail ----------------------------------------------------------------


async def test_filter_and_help(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"ready")
        await pilot.pause()
        assert app.screen.query_one(AccountsTable).visible_labels == ["tr-agent"]
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query_one(AccountsTable).visible_labels == demo.labels
        await press(app, pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {k for k, _ in app.screen.rows}
        assert {"m", "c", "r", "e", "a", "d", "h", "H", "l", "/", "?", "ctrl+p"} <= keys


async def test_reveal_shows_one_field_for_ten_seconds_and_is_audited(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "kiiex-spot")
        await press(app, pilot, "enter")
        pane = app.screen.pane
        await pilot.press("down", "v")  # api_secret
        await settle(app, pilot)
        secret = demo.service.get("kiiex-spot").fields["api_secret"]
        assert pane.revealed_field == "api_secret"
        assert secret in str(pane.query_one("#revealed").render())
        entry = fresh(demo.service.file.path).data.audit[-1]
        assert (entry.action, entry.account, entry.detail) == ("reveal", "kiiex-spot", "api_secret")
        clock.advance(9)
        app.tick()
        assert pane.revealed_field == "api_secret"
        clock.advance(2)
        app.tick()
        assert pane.revealed_field is None
        assert secret not in str(pane.query_one("#revealed").render())


# --- background behaviour ---------------------------------------------------------------------


async def test_session_tokens_refresh_before_expiry_when_auto_refresh_is_on(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        old = demo.service.get("tr-agent").token
        assert demo.service.get("tr-agent").settings.get("auto_refresh")
        clock.advance(old.expires_at - clock() - 200)  # inside TradeReady's refresh margin
        await pilot.press("down")  # not idle
        app.tick()
        await settle(app, pilot)
        new = fresh(demo.service.file.path).get("tr-agent").token
        assert new.value != old.value and new.expires_at > old.expires_at


async def test_a_change_made_by_the_cli_appears_without_a_restart(demo, clock, sandbox, kw) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        body = sandbox.issue("kiiex", UserName="from-cli")
        result = kw("import", "-", "--label", "from-cli", "--base-url", sandbox.base_url("kiiex"),
                    input=json.dumps(body))
        assert result.code == 0, result.both
        for _ in range(2):  # the disk is looked at every other tick
            app.tick()
        await settle(app, pilot)
        assert "from-cli" in app.screen.query_one(AccountsTable).visible_labels


async def test_add_captures_a_pasted_one_time_json(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "a")
        body = sandbox.issue("kiiex", UserName="pasted")
        app.screen.query_one("#paste").set_text(json.dumps(body))
        await pilot.pause()
        assert "Recognised Kiiex Export to JSON" in str(app.screen.query_one("#recognised").render())
        assert body["APISecret"] not in str(app.screen.query_one("#recognised").render())
        app.screen.query_one("#base-url", Input).value = sandbox.base_url("kiiex")
        app.screen.query_one("#env").value = "custom"
        await press(app, pilot, "ctrl+s")
        acct = fresh(demo.service.file.path).get("pasted")
        assert acct.fields["api_secret"] == body["APISecret"]
        assert isinstance(app.screen, DashboardScreen)


async def test_rotate_replaces_verifies_and_keeps_the_old_generation(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        old = dict(demo.service.get("hyper-solver").fields)
        await select(app, pilot, "hyper-solver")
        await press(app, pilot, "r")
        new = sandbox.issue("hypersolutions")
        app.screen.query_one("#paste").set_text(json.dumps(new))
        await press(app, pilot, "ctrl+s")
        acct = fresh(demo.service.file.path).get("hyper-solver")
        assert acct.fields["api_key"] == new["api_key"]
        assert acct.generations[-1].fields == old
        assert "works" in str(app.screen.query_one("#rotate-message").render()) or acct.health.ok


async def test_export_writes_a_private_file_and_audits_it(demo, clock, sandbox, tmp_path: Path) -> None:
    app = make_app(demo, clock)
    target = tmp_path / "out.json"
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "tr-agent")
        await press(app, pilot, "e")
        app.screen.query_one("#format").query("RadioButton")[2].value = True  # json, plaintext
        await pilot.pause()
        app.screen.query_one("#path", Input).value = str(target)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not target.exists()  # the plaintext box is not ticked yet
        app.screen.query_one("#plaintext-ok").value = True
        await press(app, pilot, "ctrl+s")
        assert json.loads(target.read_text())["fields"] == demo.service.get("tr-agent").fields
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        entry = fresh(demo.service.file.path).data.audit[-1]
        assert (entry.action, entry.account) == ("export", "tr-agent")


async def test_settings_are_saved_in_the_vault(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "s")
        app.screen.query_one("#auto_lock_minutes", Input).value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "from 1 to 1440" in str(app.screen.query_one("#settings-message").render())
        app.screen.query_one("#auto_lock_minutes", Input).value = "2"
        await press(app, pilot, "ctrl+s")
        assert fresh(demo.service.file.path).data.settings.auto_lock_minutes == 2
        clock.advance(121)
        app.tick()
        await settle(app, pilot)
        assert app.session is None


async def test_palette_offers_every_action_for_every_account_and_no_raw_screenshot(demo, clock, sandbox) -> None:
    from tui.commands import ACCOUNT_VERBS, AccountCommands

    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Screenshot" not in titles and "Screenshot (masked)" in titles
        provider = AccountCommands(app.screen)
        commands = {title for title, _, _ in provider._commands()}
        for label in demo.labels:
            for verb, *_ in ACCOUNT_VERBS:
                assert f"{verb}: {label}" in commands
        hits = [hit async for hit in provider.search("Check: kiiex")]
        assert hits and hits[0].text == "Check: kiiex-spot"


async def test_copy_uses_the_system_clipboard_and_clears_only_our_value(demo, clock, sandbox, tmp_path, monkeypatch) -> None:
    """The dashboard shares the CLI's backends (vault.ops.clipboard): with a clipboard tool on
    PATH it copies there and, when the time is up, clears it only if it still holds ours."""
    store = system_clipboard(tmp_path, monkeypatch)
    app = make_app(demo, clock)
    seconds = demo.service.data.settings.clipboard_clear_seconds
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "kiiex-spot")
        await press(app, pilot, "c")
        token = fresh(demo.service.file.path).get("kiiex-spot").token.value
        assert store.read_text() == token
        clock.advance(seconds + 1)
        app.tick()
        assert store.read_text() == ""  # ours, so cleared

        await press(app, pilot, "c")
        store.write_text("something the user copied since")
        clock.advance(seconds + 1)
        app.tick()
        assert store.read_text() == "something the user copied since"


# --- found by using it in a real terminal ------------------------------------------------------


async def test_a_typed_base_url_is_used_and_never_falls_back_to_production(demo, clock, sandbox) -> None:
    """Typing a base URL switches the environment to custom; a named environment with a
    URL, or custom without one, is refused instead of silently storing the venue's
    production host."""
    from textual.widgets import Select

    from tui.screens.capture import CUSTOM

    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "a")
        app.screen.query_one("#paste").set_text(json.dumps(sandbox.issue("kiiex", UserName="typed")))
        await pilot.pause()
        env = app.screen.query_one("#env", Select)
        assert env.value == "prod"  # what the venue defaults to
        app.screen.query_one("#base-url", Input).focus()
        await pilot.pause()
        await pilot.press(*sandbox.base_url("kiiex"))
        await pilot.pause()
        assert env.value == CUSTOM
        env.value = "prod"  # the user picks prod again, the URL still typed
        await press(app, pilot, "ctrl+s")
        assert "Both the environment prod and a base URL" in str(app.screen.query_one("#capture-message").render())
        assert fresh(demo.service.file.path).data.find("typed") is None
        app.screen.query_one("#base-url", Input).value = ""
        env.value = CUSTOM
        await press(app, pilot, "ctrl+s")
        assert "needs its base URL" in str(app.screen.query_one("#capture-message").render())
        assert fresh(demo.service.file.path).data.find("typed") is None
        app.screen.query_one("#base-url", Input).value = sandbox.base_url("kiiex")
        await press(app, pilot, "ctrl+s")
        acct = fresh(demo.service.file.path).get("typed")
        assert acct.base_url == sandbox.base_url("kiiex")


async def test_keys_typed_right_behind_slash_go_to_the_filter(demo, clock, sandbox) -> None:
    """A burst ("/desk" pasted, or typed faster than a frame) reaches the table before the
    focus moves: it must filter, and its letters must not run as commands (d: delete)."""
    from textual import events

    from tui.screens.confirm_delete import ConfirmDeleteScreen

    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for key, char in (("slash", "/"), ("d", "d"), ("e", "e"), ("s", "s"), ("k", "k")):
            app.post_message(events.Key(key, char))
        await settle(app, pilot)
        assert not isinstance(app.screen, ConfirmDeleteScreen)
        assert app.screen.query_one("#filter", Input).value == "desk"
        assert app.screen.query_one(AccountsTable).visible_labels == ["pt-desk"]


async def test_export_enter_moves_from_field_to_field_and_writes(demo, clock, sandbox, tmp_path: Path) -> None:
    """Enter in the file box goes to the bundle passphrase, then to its repeat, then writes:
    a passphrase typed after an Enter never lands in the plain file box."""
    from vault.ops import bundle

    secret = "glacier mosaic tundra violet"
    target = tmp_path / "tr.kwb"
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "tr-agent")
        await press(app, pilot, "e")
        assert app.focused.id == "format"
        await pilot.press("tab")
        box = app.screen.query_one("#path", Input)
        assert app.focused is box
        box.value = str(target)
        await pilot.press("enter", *secret, "enter", *secret)
        await pilot.pause()
        assert box.value == str(target)
        await press(app, pilot, "enter")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert [a.label for a in bundle.open_bundle(target.read_bytes(), secret)] == ["tr-agent"]


async def test_forms_focus_their_first_field(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "hyper-solver")
        for key, first in (("a", "paste"), ("r", "paste"), ("e", "format"), ("s", "auto_lock_minutes")):
            await press(app, pilot, key)
            assert app.focused is not None and app.focused.id == first, key
            chain = app.screen.focus_chain
            assert not any(type(w).__name__ == "VerticalScroll" for w in chain), key
            await press(app, pilot, "escape")


ISSUE_KEYS = {"m", "c", "r", "e", "a", "d", "h", "H", "l", "/", "?", "^p"}


def footer_keys(app: KeywardApp) -> list:
    from textual.widgets._footer import FooterKey

    return list(app.screen.query(FooterKey))


@pytest.mark.parametrize("size", [(140, 40), (100, 30), (80, 24)])
async def test_every_key_is_in_the_footer_and_nothing_overlaps(demo, clock, sandbox, size) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        keys = footer_keys(app)
        shown = {k.key_display for k in keys}
        assert ISSUE_KEYS | {"C", "u", "s"} <= shown, shown
        regions = [k.region for k in keys]
        for region in regions:
            assert region.width > 0 and region.right <= size[0], region
        for i, a in enumerate(regions):
            for b in regions[i + 1:]:
                assert not a.overlaps(b), (a, b)
        table = app.screen.query_one(AccountsTable)
        assert table.virtual_size.width <= table.size.width, "columns run off the right edge"
        live = [key for key, _, _ in table.columns_shown]
        assert {"label", "env", "age", "token", "rate", "health"} <= set(live)


async def test_the_help_screen_says_what_each_key_does(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "question_mark")
        rows = dict(app.screen.rows)
        assert "refresh" in rows["m"] and "cleared" in rows["c"] and "typing its label" in rows["d"]
        assert "progress bar" in rows["H"] and "headers" in rows["C"]


async def test_a_notice_for_the_unlock_screen_is_shown(demo, clock, sandbox) -> None:
    """Why an unlock agent did not open the vault: on stderr it would hide behind the screen."""
    demo.service.lock()
    app = KeywardApp(demo.service.file.path, clock=clock, watch=False,
                     notice="this agent does not open the vault for the dashboard.")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, UnlockScreen)
        assert "does not open the vault" in str(app.screen.query_one("#unlock-message").render())


async def test_a_signal_clears_the_clipboard_drops_the_vault_and_quits(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    service = demo.service
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "kiiex-spot")
        await press(app, pilot, "c")
        assert app.clipboard
        app._signalled()
        await pilot.pause()
        assert app.clipboard == "" and app.session is None and service.locked
    assert app.return_code == 1


async def test_the_detail_pane_shows_notes_and_keeps_the_auth_scheme_readable(demo, clock, sandbox) -> None:
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "hyper-solver")
        await press(app, pilot, "enter")
        assert "back-dated by 120 days" in str(app.screen.query_one("#detail-title").render())
        await press(app, pilot, "escape")
        await select(app, pilot, "tr-agent")
        await press(app, pilot, "enter")
        headers = str(app.screen.query_one("#headers").render())
        token = fresh(demo.service.file.path).get("tr-agent").token.value
        assert "Authorization: Bearer " + token[:4] + "…" in headers
        assert token[4:12] not in headers


async def test_copy_respects_a_clipboard_turned_off(demo, clock, sandbox, monkeypatch) -> None:
    monkeypatch.setenv("KEYWARD_CLIPBOARD", "none")
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "kiiex-spot")
        await press(app, pilot, "c")
        assert app.clipboard == ""
        assert any("KEYWARD_CLIPBOARD=none" in n for n in notes(app))
        audit = fresh(demo.service.file.path).data.audit
        assert not [e for e in audit if e.action == "copy" and e.account == "kiiex-spot"]


async def test_a_dashboard_that_dies_after_a_copy_still_has_the_clipboard_cleared(demo, clock, sandbox, tmp_path,
                                                                                    monkeypatch) -> None:
    """The CLI's detached clearer serves the dashboard's copies too: killed (SIGKILL, a
    crash) before its own timer fires, it still leaves no token on the clipboard."""
    from .test_agent import wait_until
    store = system_clipboard(tmp_path, monkeypatch)
    demo.service.transact(lambda data: setattr(data.settings, "clipboard_clear_seconds", 1))
    app = make_app(demo, clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select(app, pilot, "kiiex-spot")
        await press(app, pilot, "c")
        token = fresh(demo.service.file.path).get("kiiex-spot").token.value
        assert store.read_text() == token
        # What a SIGKILL means: the dashboard itself never gets to clear.
        app.clipboard_deadline = None
        app._clipboard_tool = None
    assert wait_until(lambda: store.read_text() == "", timeout=20), "the token stayed on the clipboard"
