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
    finds its socket dir; else the private temp directory recorded in the user's state
    directory (see private_tmp_dir)."""
    out = []
    uid = os.getuid()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    for base in (xdg, RUN_USER.format(uid=uid)):
        if base and os.path.isabs(base) and _usable_base(Path(base)):
            candidate = Path(base) / "keyward"
            if candidate not in out:
                out.append(candidate)
    recorded = recorded_tmp_dir()
    if recorded is not None:
        out.append(recorded)
    return out


def _usable_base(path: Path) -> bool:
    """A runtime dir must be ours and closed to others (the XDG spec says 0700); a
    misconfigured one is skipped, not trusted."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


# --- without a runtime directory: an unpredictable one, found through the user's home --------
#
# A fixed name in a shared temp directory (/tmp/keyward-UID) can be created first by
# another user, who then owns it: `keyward unlock` could only refuse it, and nobody but
# root can remove it from sticky /tmp.  So, as ssh-agent does with mkdtemp, the directory
# gets a random name, and its path is written to a file in the user's own state
# directory, which other users cannot write: clients read it there.

POINTER_NAME = "runtime-dir"


def state_dir() -> Path:
    """$XDG_STATE_HOME/keyward, else ~/.local/state/keyward (the XDG base directory rule)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    if not base.strip() or not os.path.isabs(base):
        base = os.path.expanduser("~/.local/state")
    return Path(base) / "keyward"


def recorded_tmp_dir() -> Path | None:
    """The private temp directory an earlier agent made, if it is still there and ours."""
    try:
        with open(state_dir() / POINTER_NAME, encoding="utf-8") as fh:
            text = fh.read(4097).strip()
    except (OSError, UnicodeDecodeError):
        return None
    path = Path(text)
    if not text or len(text) > 4096 or not path.is_absolute():
        return None
    try:
        check_private_dir(path)
    except (OSError, AgentError):
        return None
    return path


def private_tmp_dir() -> Path:
    """The recorded private temp directory, or a new one (mkdtemp: 0700, a random
    name) recorded for the clients to find."""
    found = recorded_tmp_dir()
    if found is not None:
        return found
    import tempfile

    tmp = os.environ.get("TMPDIR") or "/tmp"
    if not os.path.isabs(tmp):
        tmp = "/tmp"
    try:
        made = Path(tempfile.mkdtemp(prefix="keyward-", dir=tmp))
        home = state_dir()
        home.mkdir(parents=True, mode=0o700, exist_ok=True)
        pointer = home / POINTER_NAME
        part = pointer.with_name(f".{POINTER_NAME}.{os.getpid()}")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(str(made) + "\n")
        os.replace(part, pointer)
    except OSError as exc:
        raise AgentError(
            f"cannot make a private directory for the agent: {exc.strerror or exc}",
            hint="set XDG_RUNTIME_DIR to a private directory",
        ) from None
    return made


def socket_paths(vault_path: str | os.PathLike[str]) -> list[Path]:
    """Every place this vault's agent may listen, best first (only paths that fit in
    sun_path: pytest's and macOS's temp paths can be long).  A client tries them in
    turn; an empty list means no agent can be listening."""
    name = socket_name(vault_path)
    return [p for p in (d / name for d in _candidate_dirs()) if len(os.fsencode(p)) <= _SUN_PATH_MAX]


def socket_path(vault_path: str | os.PathLike[str]) -> Path:
    """Where an agent for this vault listens when started now (making the private temp
    directory when there is no runtime directory whose path fits)."""
    found = socket_paths(vault_path)
    if found:
        return found[0]
    path = private_tmp_dir() / socket_name(vault_path)
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise AgentError(
            "no directory for the agent's socket has a short enough path",
            hint="set XDG_RUNTIME_DIR or TMPDIR to a shorter private directory",
        )
    return path


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
