"""How token and headers output is written: one place for the normal commands
(vault.cli.token_cmds) and the agent fast path (vault.cli.fast), so the two cannot
drift.  Stdlib json and shlex only: the fast path imports this."""

from __future__ import annotations

import json
import shlex

from vault.core.errors import InputError, KeywardError


def headers_text(headers: dict[str, str], fmt: str) -> str:
    """`lines` (Name: value), `json` (an object) or `curl` (-H arguments)."""
    if fmt == "json":
        return json.dumps(headers, indent=2)
    if fmt == "curl":
        return " ".join(f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items())
    return "\n".join(f"{name}: {value}" for name, value in headers.items())


def no_token(label: str) -> InputError:
    return InputError(
        f"{label!r} has no token: its requests carry only its API key",
        hint=f"use `keyward headers {label}`",
    )


def error_line(err: KeywardError) -> str:
    return f"keyward: {err}"
