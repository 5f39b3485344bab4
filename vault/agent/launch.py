"""Starting an agent: a fresh, detached interpreter that receives the data key on a socket.

Why a new interpreter (``python -m vault.agent``) rather than fork(): a forked child
would inherit a copy of everything the parent ever held, the passphrase included, and
whatever threads or OpenSSL state the parent had.  A fresh process holds only what it is
sent: the 32-byte data key, never the passphrase (which stays in `keyward unlock` and
dies with it).  Not in argv (visible in ps), not in the environment (/proc/PID/environ):
through an inherited socket pair that only the two processes hold, and only after the
agent has made itself non-dumpable (a pipe can be reopened through /proc/PID/fd; a
socket cannot).

The agent is fully detached: stdin, stdout and stderr on /dev/null, its own session
(no controlling terminal, so closing the terminal does not kill it, and it never holds
a caller's pipe open: `keyward unlock | cat` returns at once), cwd "/".  It reports
readiness (or a typed error) on a second pipe once its socket is listening.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vault.core.errors import AgentError
from vault.agent import resolved_vault
from vault.agent.protocol import error_from_wire

READY_TIMEOUT_S = 30.0


def _package_root() -> str:
    """The directory holding the `vault` package this code was loaded from."""
    return str(Path(__file__).resolve().parents[2])


def agent_env() -> dict[str, str]:
    """The caller's environment (proxies and CA settings apply to logins and checks)
    minus where the passphrase came from, with this keyward's code first on the path so
    the agent runs exactly the code that launched it."""
    env = {k: v for k, v in os.environ.items() if k != "KEYWARD_PASSPHRASE_FILE"}
    root = _package_root()
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def start_agent(
    vault_path: str | os.PathLike[str], data_key: bytes, *, ttl: float, absolute: bool = False, dashboard: bool = False,
    tokens_only: bool = False,
) -> dict[str, Any]:
    """Spawn the agent for this vault with `data_key`; return its hello (pid, ttl, ...)
    once it listens, or raise the typed error it reported."""
    if len(data_key) != 32:
        raise AgentError("internal: a data key is 32 bytes", hint="report this")
    vault = resolved_vault(vault_path)
    # The key travels over a socket pair, only once the agent reports that it is hardened
    # (vault.agent.server.read_key): a pipe could be reopened through /proc/PID/fd.
    key_chan, agent_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ready_r, ready_w = os.pipe()
    debug = bool(os.environ.get("KEYWARD_DEBUG"))
    cmd = [
        sys.executable, "-P", "-m", "vault.agent",
        "--vault", vault, "--ttl", repr(float(ttl)),
        "--key-fd", str(agent_end.fileno()), "--ready-fd", str(ready_w),
    ] + (["--absolute"] if absolute else []) + (["--dashboard"] if dashboard else []) + (
        ["--tokens-only"] if tokens_only else [])
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if debug else subprocess.DEVNULL,  # KEYWARD_DEBUG: see its traceback
            pass_fds=(agent_end.fileno(), ready_w),
            start_new_session=True,
            cwd="/",
            env=agent_env(),
        )
    except OSError as exc:
        key_chan.close()
        os.close(ready_r)
        raise AgentError(f"cannot start the agent: {exc.strerror}", hint="check that keyward's python runs") from None
    finally:
        agent_end.close()
        os.close(ready_w)
    try:
        key_chan.settimeout(READY_TIMEOUT_S)
        if key_chan.recv(1) == b"H":
            key_chan.sendall(data_key)
    except OSError:
        pass  # it died or hung before hardening; the ready pipe says which
    finally:
        key_chan.close()
    try:
        line = _read_line(ready_r, READY_TIMEOUT_S)
    finally:
        os.close(ready_r)
    if line is None:
        proc.kill()
        raise AgentError(f"the agent did not get ready within {READY_TIMEOUT_S:.0f}s", hint="retry; KEYWARD_DEBUG=1 shows why")
    if not line:
        code = proc.poll()
        raise AgentError(
            "the agent exited before it was ready" + (f" (exit code {code})" if code is not None else ""),
            hint="rerun with KEYWARD_DEBUG=1 to see why",
        )
    try:
        reply = json.loads(line)
    except ValueError:
        reply = {}
    if reply.get("ok") is True and isinstance(reply.get("result"), dict):
        return reply["result"]
    raise error_from_wire(reply.get("error"))


def _read_line(fd: int, timeout: float) -> bytes | None:
    """Bytes up to the first newline or EOF (b"" = EOF at once), None on timeout."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0]
