"""`keyward`: argument parsing and the one place where errors become exit codes.

Each command group lives in its own module exposing `register(subparsers)`; modules are
imported only to build the parser, so they must keep heavy imports (textual, httpx,
jwt) inside the functions that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module

from vault.core.errors import KeywardError

COMMAND_MODULES = (
    "vault.cli.vault_cmds",
    "vault.cli.token_cmds",
    "vault.cli.lifecycle_cmds",
    "vault.cli.agent_cmds",
    "vault.cli.app_cmds",
    "vault.cli.sandbox_cmds",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keyward",
        description="An encrypted vault and dashboard for exchange API credentials.",
        epilog="With no command, opens the dashboard.",
    )
    parser.add_argument("--vault", metavar="PATH", help="vault file (default: $KEYWARD_VAULT or the user data dir)")
    parser.add_argument(
        "--passphrase-file",
        metavar="PATH",
        help="read the passphrase from the first line of PATH (or $KEYWARD_PASSPHRASE_FILE)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # `token`/`headers` with an unlock agent running: answered before the CLI loads
    # (vault.agent.fast), so a script's call costs little more than interpreter start-up.
    from vault.agent.fast import AGENT_COMMANDS, plan, run_via_agent

    argv = sys.argv[1:] if argv is None else list(argv)
    code = run_via_agent(argv)
    if code is not None:
        return code
    from vault.cli.context import Context, fail

    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = Context(args)
    command = getattr(args, "command", None)  # (`exec` reuses the name for its argv)
    if isinstance(command, str) and command in AGENT_COMMANDS and plan(argv) is None:
        # The fast path could not read the arguments (an abbreviated --vau, say): the
        # parser has the vault now, so the agent still gets its chance.
        code = run_via_agent(argv, str(ctx.vault_path))
        if code is not None:
            return code
    func = getattr(args, "func", None)
    if func is None:
        func = _default_command(parser)
    try:
        return int(func(ctx) or 0)
    except KeywardError as err:
        return fail(err, ctx.stderr)
    except KeyboardInterrupt:
        print("keyward: interrupted; nothing was changed", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug, not a user error: no traceback that might carry a value
        if os.environ.get("KEYWARD_DEBUG"):
            raise
        print(
            f"keyward: internal error ({type(exc).__name__}); please report it. "
            "Rerun with KEYWARD_DEBUG=1 to see the traceback.",
            file=sys.stderr,
        )
        return 70


def _default_command(parser: argparse.ArgumentParser):
    from vault.cli.app_cmds import open_dashboard

    return open_dashboard
