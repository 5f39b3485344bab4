"""Where the vault lives on disk and how bytes get there without ever being half-written.

A save writes a temp file beside the vault, fsyncs it, hard-links the current vault to
`.bak`, renames the temp file over the vault and fsyncs the directory: at every instant
the vault path names either the old complete file or the new one.  Writers serialise
on an advisory `flock` of a separate `.lock` file (the vault's own inode is replaced by
every save, so it cannot carry the lock).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vault.core.errors import VaultBusy, VaultError, VaultNotFound

VAULT_FILENAME = "vault.kw"


def default_vault_path() -> Path:
    env = os.environ.get("KEYWARD_VAULT")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir  # only paid for when no path was given

    return Path(user_data_dir("keyward", appauthor=False)) / VAULT_FILENAME


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and parents) as 0700 if missing; leave an existing dir's mode alone."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)


def permission_warning(path: Path) -> str | None:
    """A one-line warning if the vault (or its directory) can be read by others."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & 0o077:
        return (
            f"warning: {path} is readable by group or others (mode {stat.S_IMODE(mode):o}); "
            f"fix with: chmod 600 {path}"
        )
    return None


def write_private(path: Path, data: bytes, *, before_replace=None) -> None:
    """Write a 0600 file atomically: temp file beside it, fsync, rename, fsync the dir.

    Used for the vault and for plaintext exports.  `before_replace` runs once the new
    bytes are durable and just before the rename (the vault keeps its `.bak` there).
    """
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VaultFile:
    """The vault's path with its lock and backup siblings."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.bak_path = self.path.with_name(self.path.name + ".bak")

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            raise VaultNotFound(f"no vault at {self.path}", hint="create one with `keyward init`") from None
        except IsADirectoryError:
            raise VaultError(f"{self.path} is a directory", hint="pass the vault file with --vault") from None
        except PermissionError:
            raise VaultError(f"cannot read {self.path}: permission denied", hint="check the file's owner") from None

    def read_head(self, n: int) -> bytes:
        try:
            with open(self.path, "rb") as fh:
                return fh.read(n)
        except FileNotFoundError:
            return b""

    @contextmanager
    def locked(self, timeout: float = 10.0) -> Iterator[None]:
        """Exclusive advisory lock for one read-modify-write."""
        ensure_private_dir(self.path.parent)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise VaultBusy(
                            f"the vault is busy: another keyward process has held {self.lock_path.name} for {timeout:.0f}s",
                            hint="wait for it to finish, then retry",
                        ) from None
                    time.sleep(0.01)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def write(self, data: bytes) -> None:
        """Atomic replace, keeping the previous generation as `.bak`.  Call under `locked()`."""
        ensure_private_dir(self.path.parent)
        self._remove_stale_temps()
        write_private(self.path, data, before_replace=self._keep_backup if self.path.exists() else None)

    def _remove_stale_temps(self) -> None:
        # Under the lock no other writer exists, so any temp file is from a killed save.
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass

    def _keep_backup(self) -> None:
        # A hard link costs no copy and is itself atomic: .bak is always a whole file.
        link_tmp = self.bak_path.with_name(self.bak_path.name + ".tmp")
        try:
            os.unlink(link_tmp)
        except FileNotFoundError:
            pass
        if self.bak_path.exists() and os.path.samefile(self.path, self.bak_path):
            # A save killed after linking .bak but before its rename left both names on
            # one file; rename(2) between two links of one file does nothing, so the
            # link below would be left behind.  .bak already holds the previous vault.
            return
        try:
            os.link(self.path, link_tmp)
        except OSError:
            write_private(link_tmp, self.path.read_bytes())
        os.replace(link_tmp, self.bak_path)


def warn(message: str) -> None:
    print(message, file=sys.stderr)
