"""The unlock agent: one passphrase per work session, millisecond tokens for scripts.
A layer above vault.ops (which its server calls) and below the faces; never imports them.

`keyward unlock` starts a detached process (vault.agent.server) that holds one unlocked
vault and answers requests on a Unix socket; `keyward lock` ends it.  See docs/agent.md.

This module only knows *where* an agent for a vault listens.  It is imported on every
CLI call that looks for an agent, so it must stay stdlib-only and cheap: no textual,
httpx, jwt or cryptography, here or in vault.agent.protocol / vault.agent.client.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vault.core.errors import AgentError

# SHA-256 from CPython's built-in module when there is one: `hashlib` loads OpenSSL,
# about 2 ms of the hot path's budget.  Same function, same digest.
try:
    from _sha2 import sha256 as _sha256  # 3.12+
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # 3.11
    except ImportError:  # pragma: no cover - a build without them
        from hashlib import sha256 as _sha256

SOCKET_PREFIX = "agent-"
SOCKET_SUFFIX = ".sock"
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes with the terminating NUL
RUN_USER = "/run/user/{uid}"  # systemd-logind's per-user runtime dir, the usual $XDG_RUNTIME_DIR


def resolved_vault(vault_path: str | os.PathLike[str]) -> str:
    """The one spelling of a vault path that names its agent (symlinks, `..` and
    relative paths all lead to the same agent)."""
    return os.path.realpath(os.path.expanduser(os.fspath(vault_path)))


def socket_name(vault_path: str | os.PathLike[str]) -> str:
    digest = _sha256(resolved_vault(vault_path).encode("utf-8", "surrogateescape")).hexdigest()
    return f"{SOCKET_PREFIX}{digest[:16]}{SOCKET_SUFFIX}"


def _candidate_dirs() -> list[Path]:
    """Where agents live, best first: $XDG_RUNTIME_DIR/keyward (a per-login tmpfs the
    system already made private); /run/user/UID/keyward, the same place, for callers
    whose environment lacks XDG_RUNTIME_DIR (cron, sudo -u, some IDEs), as gpg-agent
    finds its socket dir; else a per-uid directory in the temp dir."""
    out = []
    uid = os.getuid()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    for base in (xdg, RUN_USER.format(uid=uid)):
        if base and os.path.isabs(base) and _usable_base(Path(base)):
            candidate = Path(base) / "keyward"
            if candidate not in out:
                out.append(candidate)
    tmp = os.environ.get("TMPDIR") or "/tmp"
    if not os.path.isabs(tmp):
        tmp = "/tmp"
    out.append(Path(tmp) / f"keyward-{uid}")
    return out


def _usable_base(path: Path) -> bool:
    """A runtime dir must be ours and closed to others (the XDG spec says 0700); a
    misconfigured one is skipped, not trusted."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def socket_paths(vault_path: str | os.PathLike[str]) -> list[Path]:
    """Every place this vault's agent may listen, best first (only paths that fit in
    sun_path: pytest's and macOS's temp paths can be long).  An agent binds the first;
    a client tries them in turn."""
    name = socket_name(vault_path)
    paths = [d / name for d in _candidate_dirs()]
    fitting = [p for p in paths if len(os.fsencode(p)) <= _SUN_PATH_MAX]
    if not fitting:
        raise AgentError(
            "no directory for the agent's socket has a short enough path",
            hint="set XDG_RUNTIME_DIR or TMPDIR to a shorter private directory",
        )
    return fitting


def socket_path(vault_path: str | os.PathLike[str]) -> Path:
    """Where an agent for this vault listens when started now."""
    return socket_paths(vault_path)[0]


def check_private_dir(path: Path) -> None:
    """Refuse a directory another user could have planted or can write into: it must be a
    real directory (not a symlink), owned by us, mode 0700, in a parent that others
    cannot rename entries of (not group/other-writable, or sticky like /tmp)."""
    st = os.lstat(path)
    uid = os.getuid()
    if not stat.S_ISDIR(st.st_mode):
        raise AgentError(f"{path} is not a directory", hint="remove it so keyward can create its agent directory")
    if st.st_uid != uid:
        raise AgentError(
            f"{path} belongs to uid {st.st_uid}, not you", hint="remove it (someone else created it) and retry"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise AgentError(
            f"{path} is open to other users (mode {stat.S_IMODE(st.st_mode):o})", hint=f"fix with: chmod 700 {path}"
        )
    parent = os.stat(path.parent)
    if parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX:
        raise AgentError(
            f"{path.parent} is writable by others without the sticky bit",
            hint="set XDG_RUNTIME_DIR or TMPDIR to a private directory",
        )


def ensure_private_dir(path: Path) -> Path:
    """Create the agent directory 0700 (or accept an existing one that passes the checks)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise AgentError(f"cannot create {path}: {exc.strerror}", hint="set XDG_RUNTIME_DIR to a writable directory") from None
    check_private_dir(path)
    return path
