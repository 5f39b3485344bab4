"""The scripted hot path: `keyward token|headers LABEL` answered by a running agent
before the CLI is even loaded.

A bot that runs `keyward token desk` every minute pays interpreter start-up plus
whatever keyward imports.  The normal path (argparse with every command group,
dataclasses, the model, the storage layer: tens of milliseconds) is only needed when
keyward does the work itself.  When an agent holds the vault, this module, imported
first by `vault.cli.main.main`, forwards the arguments to the agent, which runs the
very same command function (vault.cli.token_cmds) against its VenueOps and returns
the command's exit code, stdout and stderr.  Output cannot drift from the normal
path: it is the normal path's code, run in the agent.

Anything this module is not sure about returns None and the normal CLI runs: another
command, a global option it does not know (including argparse's abbreviations), -h, no
agent, an agent that refuses or dies, a platform where the default vault path cannot
be computed without platformdirs.  Stdlib sockets and JSON only (see
tests/test_agent.py: no textual, httpx, jwt, cryptography, argon2 here).
"""

from __future__ import annotations

import os
import sys

# The commands the agent runs in full (CLI code in the agent process).  Only commands
# whose behaviour depends on nothing but their arguments and VenueOps: no prompt, no
# file, no environment variable, no cwd, no exec.
FAST_COMMANDS = frozenset({"token", "headers"})
# Commands that read or change the vault itself, without a prompt, a file or a terminal
# of their own: the agent runs them on its unlocked vault, through the same locked,
# atomic saves.  (`remove` only with --yes, and `show --copy` takes the normal path: the
# question and the clipboard are the caller's.  Every other command also works with an
# agent, in the caller's process, through `ctx.ops()`: vault.ops.account_ops.)
VAULT_COMMANDS = frozenset({"list", "show", "audit", "key-age", "setting", "pubkey", "remove"})
AGENT_COMMANDS = FAST_COMMANDS | VAULT_COMMANDS
_GLOBAL_WITH_VALUE = ("--vault", "--passphrase-file")


def plan(argv: list[str]) -> tuple[str, str] | None:
    """(the vault path the normal CLI would use, the command) or None when unsure."""
    vault: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in _GLOBAL_WITH_VALUE:
            if not eq:
                if i + 1 >= len(argv):
                    return None
                value = argv[i + 1]
                i += 1
            if name == "--vault":
                vault = value  # the last one wins, as with argparse
            i += 1
            continue
        break
    else:
        return None
    command = argv[i]
    if command not in AGENT_COMMANDS or any(a in ("-h", "--help") for a in argv[i:]):
        return None
    if vault is None:
        vault = os.environ.get("KEYWARD_VAULT") or default_vault_path()
        if vault is None:
            return None
    if not vault:
        return None
    return os.path.expanduser(vault), command


def default_vault_path() -> str | None:
    """vault.core.storage.default_vault_path() without importing platformdirs (12 ms): its
    Linux rule, $XDG_DATA_HOME (if not blank) or ~/.local/share, then keyward/vault.kw.
    Pinned to the real function by a test; elsewhere, None (take the normal path)."""
    if not sys.platform.startswith("linux"):
        return None
    base = os.environ.get("XDG_DATA_HOME", "")
    if not base.strip():
        base = os.path.expanduser("~/.local/share")
    return os.path.join(base, "keyward", "vault.kw")


def run_via_agent(argv: list[str], vault: str | None = None) -> int | None:
    """The command's exit code if an agent ran it, else None (run the normal CLI).
    `vault`: the path the full parser settled on, when `plan` could not tell."""
    if vault is None:
        planned = plan(argv)
        if planned is None:
            return None
        vault, _command = planned
    from vault.core.errors import KeywardError
    from vault.agent.client import connect

    client = connect(vault)
    if client is None:
        return None
    with client:
        try:
            result = client.run_cli(argv)
        except KeywardError as err:  # e.g. the agent timed out: a typed one-line error
            print(f"keyward: {err}", file=sys.stderr)
            return err.exit_code
    if result is None:
        return None
    try:
        sys.stdout.write(result["stdout"])
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return 0
    sys.stderr.write(result["stderr"])
    sys.stderr.flush()
    return result["code"]


def _silence_stdout() -> None:
    # Like the normal CLI on a closed pipe: exit quietly, without a flush error at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
