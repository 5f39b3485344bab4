"""The dashboard commands: `keyward` with no command, and `keyward demo`.

textual (and the sandbox, httpx, jwt) are imported inside the functions: building the
parser for any other command must not load them.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from vault.core.errors import InputError
from vault.cli.context import Context

if TYPE_CHECKING:  # pragma: no cover
    from vault.sandbox import Sandbox
    from vault.core.service import VaultService

DEMO_WORDS = ("amber", "basalt", "cedar", "delta", "ember", "fjord", "granite", "harbor", "indigo", "juniper",
              "kestrel", "lagoon", "meadow", "nimbus", "orchid", "pewter", "quartz", "raven", "sierra", "tundra")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="open the dashboard (also what `keyward` with no command does)")
    p.set_defaults(func=open_dashboard)
    p = sub.add_parser(
        "demo",
        help="try keyward: a throwaway vault with one account per venue on the local sandbox, dashboard open",
    )
    p.set_defaults(func=cmd_demo)


def _need_terminal(ctx: Context) -> None:
    if not (ctx.stdout.isatty() and ctx.stdin.isatty()):
        raise InputError("the dashboard needs a terminal", hint="run it in one, or use a command: see `keyward --help`")


def harden_dashboard() -> None:
    """Before any key or passphrase is in this process: no core files, not dumpable
    (another process of the user cannot read /proc/PID/mem or ptrace it), as the
    unlock agent does.  docs/dashboard.md says what this does and does not guarantee."""
    from vault.core.hardening import harden_process

    harden_process()


def open_dashboard(ctx: Context) -> int:
    """The unlock (or, on first run, create) screen for ctx.vault_path, then the dashboard.
    With --passphrase-file the vault is unlocked before the screen opens."""
    _need_terminal(ctx)
    harden_dashboard()
    from vault.core.storage import permission_warning

    warning = permission_warning(ctx.vault_path)
    if warning:
        ctx.warn(warning)
    service = None
    said: list[str] = []
    if ctx.vault_path.exists():
        service = ctx.unlock() if ctx.passphrase_file else service_from_agent(ctx, said)
    from tui.app import KeywardApp

    # Why the agent did not open the vault goes on the unlock screen too: the line on
    # stderr is hidden behind the dashboard until it closes.
    app = KeywardApp(ctx.vault_path, service=service, clock=ctx.clock, notice=" ".join(said))
    app.run()
    return app.return_code or 0


def service_from_agent(ctx: Context, said: list[str] | None = None) -> VaultService | None:
    """The vault opened from an agent started with `keyward unlock --dashboard`, or None
    (no agent, or one that does not share the vault: the unlock screen asks instead).
    Why an agent refused is warned on stderr and, with `said`, appended to it."""
    from vault.agent.client import connect
    from vault.core.errors import KeywardError

    client = connect(ctx.vault_path)
    if client is None:
        return None
    try:
        with client:
            key = client.open_vault()
    except KeywardError as err:
        ctx.warn(f"keyward: {err}")
        if said is not None:
            said.append(f"{err}.")
        return None
    except Exception:  # the agent died mid-answer: fall back to the passphrase
        return None
    from vault.agent.server import open_with_key

    return open_with_key(ctx.vault_path, key, ctx.clock)


# --- the demo ------------------------------------------------------------------------------


@dataclass
class Demo:
    service: VaultService
    passphrase: str
    labels: list[str]

    def __repr__(self) -> str:
        return f"Demo(labels={self.labels!r})"


def demo_passphrase() -> str:
    words = [secrets.choice(DEMO_WORDS) for _ in range(4)]
    return "-".join(words) + f"-{secrets.randbelow(100):02d}"


def _issue(client: Any, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(url, json=body)
    if response.status_code >= 300:
        raise InputError(f"the sandbox refused to issue demo credentials (HTTP {response.status_code})",
                         hint="this is a bug in the demo: please report it")
    return response.json()


def build_demo(
    path: Path,
    sandbox: Sandbox,
    *,
    clock: Callable[[], float],
    kdf: Any = None,
    passphrase: str | None = None,
    client_factory: Callable[[], Any] | None = None,
    live: bool = True,
) -> Demo:
    """A new vault at `path` with one account per venue, provisioned through the
    sandbox's one-time endpoints over HTTP (TradeReady through its real register call),
    captured as a user would paste them.  `live`: also check and mint each account, so
    the dashboard opens with health, rate limits and tokens."""
    from vault.ops.capture import parse
    from vault.core.fileformat import DEFAULT_KDF
    from vault.net.http import make_client
    from vault.core.model import Account
    from vault.ops.venue_ops import VenueOps
    from vault.core.service import VaultService

    passphrase = passphrase or demo_passphrase()
    # The dashboard's rate bars are part of what the demo shows: every venue of the demo
    # is rate-limited (the sandbox's switch for a rule only TradeReady publishes).
    sandbox.config.rate_limit_every_venue = True
    service = VaultService.create(path, passphrase, kdf or DEFAULT_KDF, clock=clock)
    factory = client_factory or make_client
    now = clock()
    issued: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    with factory() as client:
        issued.append(("powertrade", "pt-desk",
                       _issue(client, sandbox.base_url("powertrade") + "/_sandbox/api-keys", {}), {}))
        issued.append(("tradeready", "tr-agent",
                       _issue(client, sandbox.base_url("tradeready") + "/api/v1/auth/register",
                              {"display_name": "keyward demo"}), {"auto_refresh": True}))
        issued.append(("hypersolutions", "hyper-solver",
                       _issue(client, sandbox.base_url("hypersolutions") + "/_sandbox/api-keys", {}), {}))
        issued.append(("kiiex", "kiiex-spot",
                       _issue(client, sandbox.base_url("kiiex") + "/_sandbox/api-keys", {"UserName": "keyward-demo"}),
                       {"auto_refresh": True}))
    labels = []
    for venue, label, body, settings in issued:
        captured = parse(json.dumps(body), venue)
        acct = Account(label=label, venue=venue, base_url=sandbox.base_url(venue), env=None,
                       fields=captured.fields, created_at=now, settings=dict(settings))
        if venue == "hypersolutions":
            # Back-dated so the demo shows what a key past its maximum age looks like.
            acct.created_at = now - 120 * 86400
            acct.notes = "demo: created_at back-dated by 120 days to show the key-age warning"

        def change(data, acct=acct, captured=captured) -> None:
            data.accounts.append(acct)
            service.audit(data, "capture", acct.label, "ok", f"from {captured.source_format} (demo)")

        service.transact(change)
        labels.append(label)
    if live:
        ops = VenueOps(service, client_factory=client_factory, clock=clock, notify=lambda message: None)
        try:
            ops.check_many(labels)
            for label in labels:
                ops.token(label)
        finally:
            ops.close()
    return Demo(service, passphrase, labels)


def demo_banner(passphrase: str, vault_path: Path, sandbox_url: str) -> str:
    """The demo's lines above the table: what it is, its passphrase (to try lock and
    unlock), how to run the CLI beside it (the keyward this demo runs, where it is not on
    PATH), where new credentials come from, and the sandbox's fault switches."""
    return (f"DEMO: a throwaway vault on a local sandbox (fake venues, no money). "
            f"Passphrase: {passphrase} (l locks).\n"
            f"Try the CLI beside it: {keyward_command()} --vault {vault_path} list\n"
            f"New credentials: POST {sandbox_url}/VENUE/_sandbox/api-keys (TradeReady: keyward register)  ·  "
            f"faults: {sandbox_url}/_sandbox/config")


def keyward_command() -> str:
    """How to call this keyward from another terminal: `keyward` when that is it on PATH,
    else the script beside this interpreter (.venv/bin/keyward after `make demo`)."""
    import shutil

    beside = Path(sys.executable).parent / "keyward"
    on_path = shutil.which("keyward")
    if on_path and (not beside.exists() or Path(on_path).resolve() == beside.resolve()):
        return "keyward"
    if beside.exists():
        return str(beside) if not beside.is_relative_to(Path.cwd()) else str(beside.relative_to(Path.cwd()))
    return f"{sys.executable} -m vault"


def cmd_demo(ctx: Context) -> int:
    """Start the sandbox in-process, build a throwaway vault, open the dashboard unlocked."""
    _need_terminal(ctx)
    harden_dashboard()
    import tempfile

    from vault.sandbox import Sandbox, SandboxConfig

    import shutil

    from tui.app import EXIT, KeywardApp

    # SIGHUP/SIGTERM end the demo the normal way from here on, clean-up included
    # (tui.app.ExitSignals), even while it is still building its vault.
    EXIT.install()
    print("keyward demo: starting the local sandbox and provisioning four accounts…", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="keyward-demo-") as tmp, Sandbox(SandboxConfig()) as sandbox:
        EXIT.emergency.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
        demo = build_demo(Path(tmp) / "demo.kw", sandbox, clock=ctx.clock)
        path = Path(tmp) / "demo.kw"
        banner = demo_banner(demo.passphrase, path, sandbox.url)
        app = KeywardApp(path, service=demo.service, clock=ctx.clock, banner=banner)
        app.run()
        return app.return_code or 0
