"""No secret leaves the dashboard unless the user revealed it.

Every screen is rendered (on the fixed fixture vault and on a demo vault whose keys the
sandbox made at random) and its SVG searched for every secret the vault holds; worker
reprs, notifications, the clipboard after a lock, the masked screenshot, Textual's log
file and the crash report are checked too.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import textual.constants
from textual.worker_manager import WorkerManager

from tests.conftest import PASSPHRASE, SMALL_KDF
from tui.app import KeywardApp
from tui.fixtures import SECRET_MARKER, T0, sample_vault
from .tui_helpers import select
from .tui_helpers import settle as steady
from vault.cli.app_cmds import build_demo
from vault.venues import get_provider, secret_names
from vault.sandbox import Sandbox, SandboxConfig
from vault.core.service import VaultService

SIZE = (140, 40)
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fixed_clock() -> float:
    return T0


def secrets_of(service: VaultService) -> dict[str, str]:
    """name -> value for every secret the vault holds: secret fields (current and
    retired), tokens."""
    found: dict[str, str] = {}
    for acct in service.accounts:
        names = secret_names(get_provider(acct.venue))
        for n, fields in enumerate([acct.fields, *(g.fields for g in acct.generations)]):
            for name in names & set(fields):
                found[f"{acct.label}.{name}.{n}"] = fields[name]
        if acct.token is not None:
            found[f"{acct.label}.token"] = acct.token.value
    return found


def fragments(value: str) -> Iterator[str]:
    """Pieces of a secret that masking never shows: everything after the 4-character
    prefix, in 8-character slices (a PEM: each body line)."""
    if value.startswith("-----"):
        yield from (line for line in value.splitlines() if line and not line.startswith("-----"))
        return
    rest = value[4:]
    for i in range(0, max(1, len(rest) - 7), 8):
        if len(rest[i:i + 8]) >= 6:
            yield rest[i:i + 8]


def screen_text(svg: str) -> str:
    """The SVG's text, in one string per element and joined, entities decoded."""
    parts = [html.unescape(t).replace("\xa0", " ") for t in re.findall(r">([^<]*)</text>", svg)]
    return "\n".join(parts) + "\n" + "".join(parts)


def assert_no_secret(text: str, secrets: dict[str, str], *, except_: set[str] = frozenset(), where: str = "") -> None:
    for name, value in secrets.items():
        if name in except_:
            continue
        for piece in fragments(value):
            assert piece not in text, f"{name} leaked into {where}"


class Recorder:
    """Every worker's repr and description, as Textual would log them."""

    def __init__(self) -> None:
        self.reprs: list[str] = []


@pytest.fixture
def workers_seen(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    original = WorkerManager.add_worker

    def add_worker(self, worker, start=True, exclusive=True):
        recorder.reprs.append(f"{worker!r} {worker.description} {worker.name}")
        return original(self, worker, start, exclusive)

    monkeypatch.setattr(WorkerManager, "add_worker", add_worker)
    return recorder


async def tour(app: KeywardApp, pilot, labels: list[str]) -> list[tuple[str, str]]:
    """Visit every screen; return (where, svg) for each."""
    shots = []

    async def shot(where: str) -> None:
        await steady(app, pilot)
        shots.append((where, app.export_screenshot()))

    await shot("dashboard")
    for label in labels:
        await select(app, pilot, label)
        await pilot.press("enter")
        await shot(f"detail {label}")
        for key, name in (("r", "rotate"), ("e", "export"), ("d", "delete")):
            await pilot.press(key)
            await shot(f"{name} {label}")
            await pilot.press("escape")
            await steady(app, pilot)
        await pilot.press("escape")
        await steady(app, pilot)
    for key, name in (("a", "capture"), ("u", "audit"), ("s", "settings"), ("question_mark", "help")):
        await pilot.press(key)
        await shot(name)
        await pilot.press("escape")
        await steady(app, pilot)
    await pilot.press("ctrl+p")
    await pilot.press(*"Copy")
    await shot("palette")
    await pilot.press("escape")
    await pilot.press("l")
    await shot("unlock")
    return shots


async def test_no_secret_in_any_screen_of_the_fixture_vault(tmp_path: Path, workers_seen: Recorder) -> None:
    path = tmp_path / "vault.kw"
    service = sample_vault(path, PASSPHRASE, SMALL_KDF, fixed_clock)
    secrets = secrets_of(service)
    assert len(secrets) >= 12
    app = KeywardApp(path, service=service, clock=fixed_clock, kdf=SMALL_KDF, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        shots = await tour(app, pilot, ["pt-desk", "tr-agent", "hyper-solver", "kiiex-spot"])
        notes = [n.message for n in app._notifications]
    assert len(shots) >= 20
    for where, svg in shots:
        text = screen_text(svg)
        assert SECRET_MARKER not in text, where
        assert_no_secret(text, secrets, where=where)
    assert_no_secret("\n".join(notes), secrets, where="notifications")
    assert_no_secret("\n".join(workers_seen.reprs), secrets, where="worker reprs")


async def test_no_secret_in_any_screen_of_a_live_demo(tmp_path: Path, workers_seen: Recorder) -> None:
    """Keys the sandbox made at random, after minting, copying and checking each one."""
    with Sandbox(SandboxConfig(clock=fixed_clock)) as sandbox:
        demo = build_demo(tmp_path / "vault.kw", sandbox, clock=fixed_clock, kdf=SMALL_KDF, passphrase=PASSPHRASE)
        app = KeywardApp(demo.service.file.path, service=demo.service, clock=fixed_clock, kdf=SMALL_KDF, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await steady(app, pilot)
            for label in demo.labels:
                await select(app, pilot, label)
                for key in ("m", "c", "C", "h"):
                    await pilot.press(key)
                    await steady(app, pilot)
            secrets = secrets_of(VaultService.unlock(demo.service.file.path, PASSPHRASE))
            shots = await tour(app, pilot, demo.labels)
            notes = [n.message for n in app._notifications]
    for where, svg in shots:
        assert_no_secret(screen_text(svg), secrets, where=where)
    assert_no_secret("\n".join(notes), secrets, where="notifications")
    assert_no_secret("\n".join(workers_seen.reprs), secrets, where="worker reprs")
    assert PASSPHRASE not in "\n".join(workers_seen.reprs)


async def test_a_revealed_field_shows_alone_and_the_screenshot_command_masks_it(tmp_path: Path) -> None:
    path = tmp_path / "vault.kw"
    service = sample_vault(path, PASSPHRASE, SMALL_KDF, fixed_clock)
    secrets = secrets_of(service)
    app = KeywardApp(path, service=service, clock=fixed_clock, kdf=SMALL_KDF, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await steady(app, pilot)
        await select(app, pilot, "kiiex-spot")
        await pilot.press("enter")
        await steady(app, pilot)
        await pilot.press("down", "v")
        await steady(app, pilot)
        text = screen_text(app.export_screenshot())
        assert secrets["kiiex-spot.api_secret.0"] in text  # the one revealed field...
        assert_no_secret(text, secrets, except_={"kiiex-spot.api_secret.0"}, where="revealed detail")  # ...alone
        app.deliver_screenshot(filename="shot.svg", path=str(tmp_path))
        for _ in range(10):
            await pilot.pause(0.05)
            if (tmp_path / "shot.svg").exists():
                break
        saved = (tmp_path / "shot.svg").read_text()
    assert_no_secret(screen_text(saved), secrets, where="the saved screenshot")


async def test_secret_entries_block_copy_and_keep_no_length(tmp_path: Path) -> None:
    path = tmp_path / "vault.kw"
    sample_vault(path, PASSPHRASE, SMALL_KDF, fixed_clock).lock()
    app = KeywardApp(path, clock=fixed_clock, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await steady(app, pilot)
        await pilot.press(*"abc")
        short = screen_text(app.export_screenshot())
        await pilot.press(*"defghijklmnop")
        entry = app.screen.query_one("#passphrase")
        assert entry.value == "abcdefghijklmnop"
        assert short.count("•") == screen_text(app.export_screenshot()).count("•")  # the length does not show
        await pilot.press("ctrl+c", "ctrl+x")
        assert app.clipboard == ""
        assert "abcdefghijklmnop" not in repr(entry)


async def test_textual_log_file_devtools_and_screenshot_timer_are_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "textual.log"
    monkeypatch.setattr(textual.constants, "LOG_FILE", str(log))
    monkeypatch.setattr(textual.constants, "SCREENSHOT_DELAY", 1)
    monkeypatch.setenv("TEXTUAL", "devtools,debug")
    path = tmp_path / "vault.kw"
    sample_vault(path, PASSPHRASE, SMALL_KDF, fixed_clock).lock()
    app = KeywardApp(path, clock=fixed_clock, kdf=SMALL_KDF, watch=False)
    assert textual.constants.LOG_FILE is None and textual.constants.SCREENSHOT_DELAY == -1
    assert "devtools" not in app.features and app.devtools is None
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*PASSPHRASE, "enter")
        await steady(app, pilot)
    assert not log.exists() or PASSPHRASE not in log.read_text()


async def test_lock_and_quit_clear_the_clipboard(tmp_path: Path) -> None:
    path = tmp_path / "vault.kw"
    service = sample_vault(path, PASSPHRASE, SMALL_KDF, fixed_clock)
    app = KeywardApp(path, service=service, clock=fixed_clock, kdf=SMALL_KDF, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await steady(app, pilot)
        app.copy_secret("pretend-token", "a test value")
        assert app.clipboard == "pretend-token"
        await pilot.press("l")
        await steady(app, pilot)
        assert app.clipboard == ""
        await pilot.press(*PASSPHRASE, "enter")
        await steady(app, pilot)
        app.copy_secret("pretend-token", "a test value")
        await app.action_quit()
        assert app.clipboard == ""


def test_a_crash_report_shows_no_local_variables(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import asyncio

    path = tmp_path / "vault.kw"
    service = sample_vault(path, PASSPHRASE, SMALL_KDF, fixed_clock)

    class Crashing(KeywardApp):
        BINDINGS = [("x", "crash", "Crash")]

        def action_crash(self) -> None:
            api_secret = service.get("tr-agent").fields["api_secret"]  # a local a traceback would show
            raise RuntimeError("bug" + api_secret[:0])

    async def run() -> None:
        app = Crashing(path, service=service, clock=fixed_clock, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("x")
            await pilot.pause()

    with pytest.raises(RuntimeError):
        asyncio.run(run())
    out = capsys.readouterr()
    assert "internal error (RuntimeError)" in out.err + out.out
    assert SECRET_MARKER not in out.err + out.out
    assert json.dumps(out.err)  # readable, not a binary dump


async def test_no_passphrase_in_any_worker_description(tmp_path: Path, workers_seen: Recorder) -> None:
    """Every passphrase the dashboard takes (a new vault's, the unlock's, an export
    bundle's) runs through a worker: none may show in a worker's repr, name or
    description, where Textual's logs and devtools would print it."""
    vault_pass = "lantern granite mosaic velvet"
    bundle_pass = "orchard basalt nimbus quartz"
    path = tmp_path / "new" / "vault.kw"
    app = KeywardApp(path, clock=fixed_clock, kdf=SMALL_KDF, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await steady(app, pilot)
        await pilot.press(*vault_pass, "enter", *vault_pass, "enter")
        await steady(app, pilot)
        assert app.session is not None
        app.session.service.transact(lambda data: data.accounts.extend(sample_vault_accounts()))
        app.vault_changed()
        await pilot.press("l")
        await steady(app, pilot)
        await pilot.press(*vault_pass, "enter")
        await steady(app, pilot)
        assert app.session is not None
        await select(app, pilot, "tr-agent")
        await pilot.press("e")
        await steady(app, pilot)
        app.screen.query_one("#path").value = str(tmp_path / "out.kwb")
        app.screen.query_one("#bundle-passphrase").focus()
        await pilot.pause()
        await pilot.press(*bundle_pass, "enter", *bundle_pass, "enter")
        await steady(app, pilot)
        assert (tmp_path / "out.kwb").exists()
    seen = "\n".join(workers_seen.reprs)
    assert len(workers_seen.reprs) >= 3
    for secret in (vault_pass, bundle_pass):
        for piece in (secret, *secret.split()):
            assert piece not in seen


def sample_vault_accounts():
    from tui.fixtures import sample_accounts

    return sample_accounts(T0)


def test_no_plain_password_inputs_in_the_dashboard() -> None:
    """Secrets are typed into SecretInput (fixed mask, no copy); Textual's
    Input(password=True) shows the length and lets ctrl+c copy a selection."""
    import ast

    from tests.conftest import REPO

    offenders = []
    for path in (REPO / "tui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and any(
                    k.arg == "password" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                    for k in node.keywords):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
