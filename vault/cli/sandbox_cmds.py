"""`keyward sandbox`: the local fake-venue server, in the foreground.

Everything it serves is fake (keys, balances, venues) and it listens on 127.0.0.1
only; point an account at it with `keyward add VENUE LABEL --base-url URL`.
"""

from __future__ import annotations

import argparse

from vault.cli.context import Context


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sandbox", help="run the local fake-venue server (loopback only) until Ctrl-C")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    p.set_defaults(func=cmd_sandbox)


def cmd_sandbox(ctx: Context) -> int:
    from vault.core.errors import InputError

    port = ctx.args.port
    if not 0 <= port <= 65535:
        raise InputError(f"port {port} is out of range", hint="use 1-65535, or 0 for any free port")
    from vault.sandbox import serve

    try:
        serve(port, out=ctx.stdout)  # prints each venue's base URL, then serves until Ctrl-C
    except OSError as exc:
        raise InputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}", hint="pick another --port") from None
    return 0
