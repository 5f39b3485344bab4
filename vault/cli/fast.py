"""The scripted hot path: `keyward token|headers LABEL` answered by a running agent
before the rest of the CLI is even loaded.

A bot that runs `keyward token desk` every minute pays interpreter start-up plus
whatever keyward imports.  The normal path (argparse with every command group,
dataclasses, the model, the storage layer: tens of milliseconds) is only needed when
keyward does the work itself.  When an agent holds the vault, this module, imported
first by `vault.cli.main.main`, reads the few argument forms it knows, asks the agent
for the typed `token` or `headers` operation, and prints the result with the very
functions the normal commands print with (vault.cli.render), so output cannot drift.

Anything this module is not sure about returns None and the normal CLI runs (and still
uses the agent, through `Context.ops()`): another command or option, a global option it
does not know (including argparse's abbreviations), -h, no agent, an agent that refuses
or dies, a platform where the default vault path cannot be computed without
platformdirs.  Stdlib sockets and JSON only (see tests/test_agent.py: no textual,
httpx, jwt, cryptography, argon2, not even dataclasses here).
"""

from __future__ import annotations

import os
import sys

# The commands this module answers, with the options each accepts here (anything else:
# the normal CLI).  `token --json` needs ISO dates (datetime): the normal path.
FAST_COMMANDS = {"token": frozenset({"--force"}), "headers": frozenset({"--json", "--curl"})}
_GLOBAL_WITH_VALUE = ("--vault", "--passphrase-file")


def plan(argv: list[str]) -> tuple[str, str, str, frozenset[str]] | None:
    """(vault path, command, label, options) for a form this module answers, else None."""
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
    command, rest = argv[i], argv[i + 1:]
    allowed = FAST_COMMANDS.get(command)
    if allowed is None:
        return None
    labels = [a for a in rest if not a.startswith("-")]
    options = frozenset(a for a in rest if a.startswith("-"))
    if len(labels) != 1 or not options <= allowed or len(options) < len(rest) - 1 or {"--json", "--curl"} <= options:
        return None
    if vault is None:
        vault = os.environ.get("KEYWARD_VAULT") or default_vault_path()
        if vault is None:
            return None
    if not vault:
        return None
    return os.path.expanduser(vault), command, labels[0], options


def default_vault_path() -> str | None:
    """vault.core.storage.default_vault_path() where it needs no import (Linux: the XDG
    rule, vault.core.dirs), else None (take the normal path)."""
    from vault.core.dirs import linux_data_dir

    base = linux_data_dir()
    return None if base is None else os.path.join(base, "vault.kw")


def run_via_agent(argv: list[str]) -> int | None:
    """The command's exit code if the agent answered it, else None (run the normal CLI)."""
    planned = plan(argv)
    if planned is None:
        return None
    vault, command, label, options = planned
    from vault.agent.client import connect
    from vault.core.errors import KeywardError

    client = connect(vault)
    if client is None:
        return None
    from vault.cli import render

    with client:
        try:
            if command == "token":
                creds = client.call_raw("token", label=label, force="--force" in options)
                token = creds.get("token") if isinstance(creds, dict) else None
                if token is None:
                    raise render.no_token(label)
                if not isinstance(token, dict) or not isinstance(token.get("value"), str):
                    return None
                text = token["value"] + "\n"
            else:
                creds = client.call_raw("headers", label=label)
                headers = creds.get("headers") if isinstance(creds, dict) else None
                if not isinstance(headers, dict):
                    return None
                fmt = "json" if "--json" in options else "curl" if "--curl" in options else "lines"
                text = render.headers_text(headers, fmt) + "\n"
        except KeywardError as err:  # the agent's typed error: one line and its exit code
            sys.stderr.write(render.error_line(err) + "\n")
            return err.exit_code
        except Exception:  # anything unexpected: let the normal CLI do it properly
            return None
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return 0


def _silence_stdout() -> None:
    # Like the normal CLI on a closed pipe: exit quietly, without a flush error at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
