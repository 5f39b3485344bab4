"""Agent commands: unlock, lock, status (see docs/agent.md).

`keyward unlock` asks for the passphrase once and leaves a background agent holding
the unlocked vault; until it locks, `keyward token` and friends need no passphrase and
no KDF run.  Imported on every CLI call to build the parser: stdlib only at the top.
"""

from __future__ import annotations

import argparse
import os
import re
import time

from vault.core.errors import InputError, KeywardError, UsageError
from vault.cli.context import Context

DEFAULT_TTL = "15m"
MIN_TTL_S = 1.0
MAX_TTL_S = 7 * 86400.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "unlock",
        help="start an agent that keeps this vault unlocked for a while (one passphrase per session)",
        description="Ask for the passphrase once and start a background agent; until it locks, "
        "commands for this vault use it instead of asking.",
    )
    p.add_argument(
        "--ttl", default=DEFAULT_TTL, metavar="DURATION",
        help=f"lock after this long without use, e.g. 90s, 15m, 8h, 1h30m (default {DEFAULT_TTL})",
    )
    p.add_argument("--absolute", action="store_true", help="lock after --ttl from now, used or not")
    p.add_argument(
        "--dashboard", action="store_true",
        help="also let `keyward` (the dashboard) open the vault from this agent without the passphrase: "
        "it receives the data key, so only use it where every process running as you is trusted",
    )
    p.add_argument(
        "--tokens-only", action="store_true",
        help="serve tokens, headers and changes, but never a stored secret: `show --reveal`, "
        "`show --copy` and `export` ask for the passphrase as if no agent ran",
    )
    p.add_argument("--json", action="store_true", help="print the agent's status as JSON")
    p.set_defaults(func=cmd_unlock)

    p = sub.add_parser("lock", help="stop this vault's agent: its secrets leave memory")
    p.set_defaults(func=cmd_lock)

    p = sub.add_parser("status", help="whether an agent holds this vault unlocked, and for how long (exit 1 if not)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)


# --- durations -------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """'90s', '15m', '8h', '1d', '1h30m', or plain seconds, within 1s..7d."""
    t = text.strip().lower().replace(" ", "")
    if not re.fullmatch(r"(?:\d+(?:\.\d+)?[smhd])+|\d+(?:\.\d+)?", t):
        raise InputError(f"cannot read the duration {text!r}", hint="write it like 90s, 15m, 8h or 1h30m")
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd]?)", t)
    seconds = sum(float(n) * _UNITS.get(u or "s", 1) for n, u in parts)
    if not MIN_TTL_S <= seconds <= MAX_TTL_S:
        raise InputError(f"a TTL of {text!r} is out of range", hint="choose between 1s and 7d")
    return seconds


def format_duration(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d{h}h" if h else f"{d}d"
    if h:
        return f"{h}h{m:02d}m" if m else f"{h}h"
    if m:
        return f"{m}m{s:02d}s" if s else f"{m}m"
    return f"{s}s"


def describe(info: dict) -> str:
    mode = "from its start" if info.get("mode") == "absolute" else "without use"
    return (
        f"agent pid {info.get('pid')}, {format_duration(float(info.get('remaining_s', 0)))} left "
        f"(locks {format_duration(float(info.get('ttl_s', 0)))} {mode})"
        + ("; tokens only: changes, reveal and export ask for the passphrase" if info.get("tokens_only") else "")
        + ("; opens the dashboard" if info.get("dashboard") else "")
    )


def status_json(info: dict | None, vault: str) -> dict:
    if info is None:
        return {"running": False, "vault": vault}
    return {
        "running": True,
        "vault": info.get("vault"),
        "pid": info.get("pid"),
        "mode": info.get("mode"),
        "ttl_s": info.get("ttl_s"),
        "remaining_s": info.get("remaining_s"),
        "dashboard": bool(info.get("dashboard")),
        "tokens_only": bool(info.get("tokens_only")),
    }


# --- commands ---------------------------------------------------------------------------------


def cmd_unlock(ctx: Context) -> int:
    from vault.agent import resolved_vault
    from vault.agent.client import connect

    a = ctx.args
    ttl = parse_duration(a.ttl)
    if a.dashboard and a.tokens_only:
        raise UsageError("--dashboard hands the dashboard the data key; --tokens-only withholds every secret",
                         hint="choose one")
    vault = resolved_vault(ctx.vault_path)
    running = connect(ctx.vault_path)
    if running is not None:
        with running:
            info = running.status()
        if a.json:
            _dump(ctx, status_json(info, vault))
        else:
            ctx.out(f"already unlocked: {describe(info)}; `keyward lock` first to start one with another TTL")
        return 0

    from vault.agent.launch import start_agent
    from vault.core.service import VaultService
    from vault.core.storage import VaultFile, permission_warning

    warning = permission_warning(ctx.vault_path)
    if warning:
        ctx.warn(warning)
    VaultFile(ctx.vault_path).read()  # "no vault here" before asking for a passphrase
    # Opened here, in the foreground, as every command opens it (the KDF budget, the
    # rollback check, a v1 file rewritten as v2 once), so a wrong passphrase is reported
    # at once; the agent then receives the data key, never the passphrase.
    service = ctx.with_passphrase(
        lambda passphrase: VaultService.unlock(ctx.vault_path, passphrase, clock=ctx.clock, notify=ctx.warn))
    try:
        if service.upgrading_from is not None:
            service.transact(lambda data: None)  # the agent holds no passphrase to do it later
        info = start_agent(vault, service._key, ttl=ttl, absolute=a.absolute, dashboard=a.dashboard,
                           tokens_only=a.tokens_only)
    finally:
        service.lock()
    if a.json:
        _dump(ctx, status_json(info, vault))
    else:
        ctx.out(f"unlocked {vault}: {describe(info)}; `keyward lock` locks it now")
    return 0


def cmd_lock(ctx: Context) -> int:
    from vault.agent import resolved_vault
    from vault.agent.client import connect

    vault = resolved_vault(ctx.vault_path)
    client = connect(ctx.vault_path)
    if client is None:
        removed = _remove_stale_socket(ctx)
        ctx.out(f"no agent holds {vault} unlocked" + ("; removed the socket a killed agent left" if removed else ""))
        return 0
    pid = client.pid
    client.lock()
    # "Locked" only once the process holding the key is gone: an operation in flight
    # gets DROP_WAIT_S to finish, then the agent drops the key and exits regardless.
    deadline = time.monotonic() + LOCK_WAIT_S
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if _running(pid):
        ctx.out(f"asked agent pid {pid} to stop: it is finishing an operation and drops {vault} within seconds")
        return 0
    ctx.out(f"locked {vault}: agent pid {pid} stopped and dropped the vault")
    return 0


LOCK_WAIT_S = 5.0  # the agent's own DROP_WAIT_S (2 s) plus its exit


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an exited agent waits to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def cmd_status(ctx: Context) -> int:
    from vault.agent import resolved_vault
    from vault.agent.client import connect

    vault = resolved_vault(ctx.vault_path)
    client = connect(ctx.vault_path)
    info = None
    if client is not None:
        with client:
            try:
                info = client.status()
            except KeywardError:  # it died between hello and status: it is not running
                info = None
    if ctx.args.json:
        _dump(ctx, status_json(info, vault))
    elif info is None:
        ctx.out(f"locked: no agent holds {vault} unlocked (`keyward unlock` starts one)")
    else:
        ctx.out(f"unlocked {vault}: {describe(info)}")
    return 0 if info is not None else 1


def _remove_stale_socket(ctx: Context) -> bool:
    """A SIGKILLed agent leaves its socket behind.  Remove one only if nothing listens on
    it (connect refused) and it is still the same file we probed."""
    import socket

    from vault.agent import check_private_dir, socket_paths

    removed = False
    for path in socket_paths(ctx.vault_path):
        try:
            check_private_dir(path.parent)
            before = os.lstat(path)
        except (OSError, KeywardError):
            continue
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
            continue  # something answers: not ours to remove
        except ConnectionRefusedError:
            pass
        except OSError:
            continue
        finally:
            probe.close()
        try:
            after = os.lstat(path)
            if (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino):
                os.unlink(path)
                removed = True
        except OSError:
            pass
    return removed


def _dump(ctx: Context, obj: dict) -> None:
    ctx.out_json(obj)
