"""The dashboard says when a monitor runs on this vault and when it last checked: read
from the status file `keyward monitor` keeps (vault.ops.monitor_status)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, SMALL_KDF
from tui.app import KeywardApp
from tui.widgets.status_line import StatusLine
from vault.cli.app_cmds import build_demo
from vault.ops.monitor_status import process_start, status_path, write_status
from vault.sandbox import Sandbox, SandboxConfig

from .tui_helpers import settle

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def status_text(app: KeywardApp) -> str:
    return app.screen.query_one(StatusLine).render().plain


async def test_the_status_line_names_a_running_monitor_and_then_a_stopped_one(vault_path: Path, clock, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with Sandbox(SandboxConfig(clock=clock)) as sb:
        demo = build_demo(vault_path, sb, clock=clock, kdf=SMALL_KDF, passphrase=PASSPHRASE)
        app = KeywardApp(demo.service.file.path, service=demo.service, clock=clock, kdf=SMALL_KDF, watch=False)
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(app, pilot)
            assert "monitor" not in status_text(app)  # none ever ran on this vault

            path = status_path(vault_path)
            write_status(path, {"pid": os.getpid(), "proc_start": process_start(os.getpid()),
                                "started_at": clock() - 100, "last_check_at": clock() - 12, "accounts": 4, "failing": 1})
            clock.advance(10)
            app.tick()
            await settle(app, pilot)
            assert "monitor: last check 22 s ago, 1 failing" in status_text(app)

            # It stopped (or died and its pid was reused): the dashboard says so, and when it last ran.
            write_status(path, {"pid": os.getpid(), "proc_start": "0", "started_at": clock() - 100,
                                "last_check_at": clock() - 30, "accounts": 4, "failing": 0})
            clock.advance(10)
            app.tick()
            await settle(app, pilot)
            assert "monitor stopped (last ran 40 s ago)" in status_text(app)
