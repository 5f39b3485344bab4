"""Make the README's screenshots from the demo: `python -m screenshots.make`.

The demo's accounts are provisioned through the in-process sandbox exactly as `keyward
demo` does, on a fixed clock (so the countdowns in the pictures are stable), in a
throwaway vault.  Every picture is checked for the vault's secrets before it is written:
none may appear, since nothing is revealed in them.
"""

from __future__ import annotations

import asyncio
import html
import re
import shutil
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent
SIZE = (140, 40)
T0 = 1_800_000_000.0
PASSPHRASE = "demo-screenshots-passphrase"
PORT = 48350


def clock() -> float:
    return T0


def _text(svg: str) -> str:
    parts = [html.unescape(t).replace("\xa0", " ") for t in re.findall(r">([^<]*)</text>", svg)]
    return "\n".join(parts) + "".join(parts)


def _secrets(service) -> list[str]:
    from vault.venues import get_provider, secret_names

    found = []
    for acct in service.accounts:
        names = secret_names(get_provider(acct.venue))
        found += [acct.fields[n] for n in names if n in acct.fields]
        if acct.token is not None:
            found.append(acct.token.value)
    return found


def _check(name: str, svg: str, secrets: list[str]) -> None:
    text = _text(svg)
    for value in secrets:
        pieces = [ln for ln in value.splitlines() if ln and not ln.startswith("-----")] if value.startswith("-----") \
            else [value[4:12]] if len(value) >= 12 else []
        for piece in pieces:
            if piece in text:
                raise SystemExit(f"screenshots: {name} would show a secret; not written")


async def _shoot(path: Path, sandbox) -> dict[str, str]:
    from tui.app import KeywardApp
    from tui.fixtures import settle
    from tui.widgets.accounts_table import AccountsTable
    from vault.cli.app_cmds import build_demo, demo_banner
    from vault.core.fileformat import KdfParams

    demo = build_demo(path, sandbox, clock=clock, kdf=KdfParams(1, 8 * 1024, 1), passphrase=PASSPHRASE)
    banner = demo_banner(PASSPHRASE, path, sandbox.url)
    app = KeywardApp(path, service=demo.service, clock=clock, banner=banner, watch=False)
    shots: dict[str, str] = {}
    async with app.run_test(size=SIZE) as pilot:
        async def shot(name: str) -> None:
            await settle(pilot, still_cursors=True)
            shots[name] = app.export_screenshot(title=f"keyward: {name}")

        await shot("dashboard")
        table = app.screen.query_one(AccountsTable)
        table.move_cursor(row=table.visible_labels.index("tr-agent"))
        await pilot.press("enter")
        await shot("detail")
        await pilot.press("escape")
        await pilot.press("a")
        await shot("capture")
        await pilot.press("escape")
        await pilot.press("question_mark")
        await shot("help")
        await pilot.press("escape")
        await pilot.press("l")
        await shot("unlock")
    return shots


def _sandbox():
    """The sandbox on a fixed port when it is free, so that the URLs in the pictures do
    not change from one run to the next."""
    from vault.sandbox import Sandbox, SandboxConfig

    try:
        return Sandbox(SandboxConfig(clock=clock), port=PORT).__enter__()
    except OSError:
        return Sandbox(SandboxConfig(clock=clock)).__enter__()


def main() -> int:
    from vault.core.service import VaultService

    # A fixed directory (not mkdtemp's random name): the vault's path is in the pictures.
    tmp = Path(tempfile.gettempdir()) / "keyward-demo-screenshots"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700)
    sandbox = _sandbox()
    try:
        path = tmp / "demo.kw"
        shots = asyncio.run(_shoot(path, sandbox))
        secrets = _secrets(VaultService.unlock(path, PASSPHRASE))
        for name, svg in shots.items():
            _check(name, svg, secrets)
        for name, svg in shots.items():
            (OUT / f"{name}.svg").write_text(svg, encoding="utf-8")
            print(f"wrote screenshots/{name}.svg", file=sys.stderr)
    finally:
        sandbox.__exit__(None, None, None)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
