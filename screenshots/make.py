"""Make the README's screenshots from the demo: `python -m screenshots.make`.

The demo's accounts are provisioned through the in-process sandbox exactly as `keyward
demo` does, on a fixed clock (so the countdowns in the pictures are stable), in a
throwaway vault, then put in the states the dashboard is for (`showcase`): a failing
account with a skewed clock, a nearly spent rate limit draining in the sparkline, a
session about to expire.  Every picture is checked for the vault's secrets before it is
written: none may appear, since nothing is revealed in them.

Each picture is an SVG whose fonts are the reader's own monospace ones (Textual's export
fetches Fira Code from a CDN, and an offline renderer then drops the spacing) and a PNG
beside it (cairosvg, `pip install cairosvg`: the `screenshots` extra) for viewers that
cannot show SVG.
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


# What the reader's machine has, in order: no download.  Widths match Fira Code's closely
# enough for a terminal grid (every cell is placed by its own x anyway).
MONOSPACE = '"DejaVu Sans Mono", "Fira Code", Menlo, Consolas, "Liberation Mono", monospace'


def offline_fonts(svg: str) -> str:
    """Textual's SVG with its CDN font sources removed (local() ones kept) and a stack of
    local monospace fonts behind Fira Code."""
    svg = re.sub(r",?\s*url\([^)]*\)\s*format\([^)]*\)", "", svg)
    svg = re.sub(r"font-family:\s*Fira Code,\s*monospace", f"font-family: {MONOSPACE}", svg)
    if re.search(r"url\(\s*[\"']?https?:", svg) or "@import" in svg:
        raise SystemExit("screenshots: a font would still be fetched from the network")
    return svg


def showcase(service, now: float) -> None:
    """The demo's accounts in the states a trader opens the dashboard for.  Only times,
    counts and health change: no credential is touched."""
    from vault.core.model import Health, RateLimit, Token

    def change(data) -> None:
        accts = {a.label: a for a in data.accounts}
        hs = accts["hyper-solver"]
        hs.health = Health(ok=False, checked_at=now - 40, latency_ms=None, status=401, skew_s=-47.0,
                           message="Hyper Solutions refused the signature: the venue's clock is 47 s behind "
                                   "yours; sync it (keyward doctor hyper-solver)")
        tr = accts["tr-agent"]
        tr.health = Health(ok=True, checked_at=now - 12, latency_ms=212.0, message="ok", status=200, skew_s=-0.2)
        kx = accts["kiiex-spot"]
        if kx.token is not None:  # a session in the last minutes of its hour: yellow
            kx.token = Token(kx.token.value, now - 3600 + 170, now + 170, kx.token.kind)
        kx.health = Health(ok=True, checked_at=now - 30, latency_ms=65.0, message="ok", status=200, skew_s=1.1)
        pt = accts["pt-desk"]
        pt.rate_limit = RateLimit(limit=600, remaining=512, reset_at=now + 17, observed_at=now - 3)
        pt.health = Health(ok=True, checked_at=now - 3, latency_ms=84.0, message="ok", status=200, skew_s=0.4)

    service.transact(change)


# tr-agent's rate limit, as the session saw it drain (what the detail screen's sparkline shows).
DRAIN = (600, 588, 561, 540, 502, 466, 431, 390, 344, 301, 262, 215, 170, 128, 96, 64, 31)


def drain(app, now: float) -> None:
    """Feed the open session one reading per request, as a busy bot would leave them."""
    from vault.core.model import RateLimit

    for i, remaining in enumerate(DRAIN):
        observed = now - 2 * (len(DRAIN) - i)

        def change(data, remaining=remaining, observed=observed) -> None:
            data.find("tr-agent").rate_limit = RateLimit(limit=600, remaining=remaining, reset_at=now + 42,
                                                         observed_at=observed)

        app.session.service.transact(change)
        app.session.observe()
    app.screen.sync()  # the dashboard redraws from the vault, as after any change


def write_png(svg_path: Path, png_path: Path) -> None:
    try:
        import cairosvg
    except ImportError:
        raise SystemExit("screenshots: the PNGs need cairosvg: pip install -e '.[screenshots]'") from None
    cairosvg.svg2png(url=str(svg_path), write_to=str(png_path), output_width=1400)


async def _shoot(path: Path, sandbox) -> dict[str, str]:
    from tui.app import KeywardApp
    from tui.fixtures import settle
    from tui.widgets.accounts_table import AccountsTable
    from vault.cli.app_cmds import build_demo, demo_banner
    from vault.core.fileformat import KdfParams

    demo = build_demo(path, sandbox, clock=clock, kdf=KdfParams(1, 8 * 1024, 1), passphrase=PASSPHRASE)
    showcase(demo.service, clock())
    banner = demo_banner(PASSPHRASE, path, sandbox.url)
    app = KeywardApp(path, service=demo.service, clock=clock, banner=banner, watch=False)
    shots: dict[str, str] = {}
    async with app.run_test(size=SIZE) as pilot:
        async def shot(name: str) -> None:
            await settle(pilot, still_cursors=True)
            shots[name] = offline_fonts(app.export_screenshot(title=f"keyward: {name}"))

        drain(app, clock())
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
            write_png(OUT / f"{name}.svg", OUT / f"{name}.png")
            print(f"wrote screenshots/{name}.svg and .png", file=sys.stderr)
    finally:
        sandbox.__exit__(None, None, None)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
