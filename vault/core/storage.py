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
import time
from contextlib import contextmanager
from pathlib import Path

from vault.core.errors import UnsafeVaultPath, VaultBusy, VaultError, VaultNotFound, VaultSaveFailed

TYPE_CHECKING = False  # (typing is not imported at run time: a cold command loads it later, see vault.core.kdf)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Iterator

VAULT_FILENAME = "vault.kw"
# Far above any real vault (1,000 accounts and 10,000 audit entries are a few MB), far
# below what would hurt: a larger file is refused before it is read into memory.
MAX_VAULT_BYTES = 256 * 1024 * 1024
TEMP_SUFFIX = ".tmp"  # a save's temporary file: `.NAME.<random>.tmp` beside NAME

# What a save can meet on a real file system, each with what to do about it.
_SAVE_ERRORS = {
    errno.ENOSPC: "free some space on that file system, then retry",
    errno.EDQUOT: "free some space within your disk quota, then retry",
    errno.EROFS: "the file system is mounted read-only: remount it read-write, or use a vault on a writable one",
    errno.EACCES: "check the owner and permissions of the vault's directory (ls -ld DIR)",
    errno.EPERM: "check the owner and permissions of the vault's directory (ls -ld DIR)",
}


def default_vault_path() -> Path:
    env = os.environ.get("KEYWARD_VAULT")
    if env:
        return Path(env).expanduser()
    from vault.core.dirs import user_data_dir

    return Path(user_data_dir()) / VAULT_FILENAME


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and parents) as 0700 if missing; leave an existing dir's mode alone."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)


def permission_warning(path: Path) -> str | None:
    """A warning (one line per problem) if the vault or its directory is open to others,
    with the fix that fits each: `chmod 600` for the file, `chmod 700` for a directory.
    Works before the vault exists (`init` checks the directory it will create it in)."""
    path = Path(os.path.realpath(Path(path).expanduser()))
    lines = []
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        directory: Path | None = path  # --vault DIR: the directory is what to fix
    else:
        directory = path.parent
        if st is not None and stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            lines.append(
                f"warning: {path} is readable by group or others (mode {stat.S_IMODE(st.st_mode):o}); "
                f"fix with: chmod 600 {path}"
            )
    try:
        dmode = os.stat(directory).st_mode
    except OSError:
        dmode = None
    if dmode is not None and dmode & 0o077:
        what = "writable" if dmode & 0o022 else "readable"
        lines.append(
            f"warning: the vault's directory {directory} is {what} by group or others "
            f"(mode {stat.S_IMODE(dmode):o}); fix with: chmod 700 {directory} "
            "(or keep the vault in a directory of its own)"
        )
    return "\n".join(lines) or None


def write_private(path: Path, data: bytes, *, before_replace=None, durable: bool = True) -> None:
    """Write a 0600 file atomically: temp file beside it, fsync, rename, fsync the dir.

    Used for the vault and for plaintext exports.  `before_replace` runs once the new
    bytes are durable and just before the rename (the vault keeps its `.bak` there).
    `durable=False`: atomic but neither fsync (for a record that may lag after a crash).
    """
    directory = path.parent
    fd, tmp = _create_temp_beside(path)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
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
    if durable:
        fsync_dir(directory)


def _create_temp_beside(path: Path) -> tuple[int, str]:
    """A new, empty 0600 file `.NAME.<random>.tmp` beside `path`, as tempfile.mkstemp makes
    it (O_EXCL and O_NOFOLLOW: a name that exists, or a symlink planted there, is never
    opened), without importing tempfile, random and shutil on every save (~3 ms)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        tmp = os.path.join(path.parent, f".{path.name}.{os.urandom(6).hex()}{TEMP_SUFFIX}")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path.parent))


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular(path: Path, *, limit: int = MAX_VAULT_BYTES, what: str = "the vault") -> bytes:
    """A regular file's bytes, refusing FIFOs (which would hang), devices (/dev/zero would
    fill memory), directories, symbolic links (the path was resolved once, up front) and
    anything over `limit`, all before reading a byte."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeVaultPath(f"{path} became a symbolic link", hint="check who changed it; keyward follows no link there") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise VaultError(f"cannot read {path}: permission denied", hint="check the file's owner") from None
        if exc.errno == errno.ENXIO:  # a socket or a FIFO opened without a writer on some systems
            raise UnsafeVaultPath(f"{path} is not a regular file", hint=f"pass {what}'s file path") from None
        raise VaultError(f"cannot read {path}: {exc.strerror}", hint="check the path") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeVaultPath(f"{path} is {_kind(st.st_mode)}, not a vault file",
                                  hint=f"pass {what}'s file path (for example .../vault.kw)")
        if st.st_size > limit:
            raise UnsafeVaultPath(f"{path} is {st.st_size // (1024 * 1024)} MiB, far larger than any vault",
                                  hint="check the path; nothing was read")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise UnsafeVaultPath(f"{path} grew past {limit // (1024 * 1024)} MiB while being read", hint="check the path")
        return b"".join(chunks)
    except IsADirectoryError:
        raise UnsafeVaultPath(f"{path} is a directory, not a vault file", hint="pass the vault file with --vault") from None
    finally:
        os.close(fd)


def save_failed(exc: OSError, path: Path, what: str = "the vault") -> VaultSaveFailed | None:
    """The typed error for an OSError a save met, or None for one that is a bug."""
    hint = _SAVE_ERRORS.get(exc.errno or 0)
    if hint is None:
        return None
    return VaultSaveFailed(
        f"could not save {path} ({exc.strerror or os.strerror(exc.errno or 0)}): nothing of this change was stored, "
        f"{what} on disk is unchanged",
        hint=hint.replace("DIR", str(path.parent)),
    )


class VaultFile:
    """The vault's path with its lock and backup siblings.

    A vault path that is a symbolic link is followed, once, here: every sibling (the
    lock, the .bak, temp and rescue files), every save (which replaces the target and
    leaves the link alone) and the agent's socket name (vault.agent.resolved_vault) use
    the same resolved path, so one vault never answers under two names."""

    def __init__(self, path: Path) -> None:
        self.given = Path(path).expanduser()
        self.path = Path(os.path.realpath(self.given))
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.bak_path = self.path.with_name(self.path.name + ".bak")

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> bytes:
        try:
            return read_regular(self.path)
        except FileNotFoundError:
            raise VaultNotFound(f"no vault at {self.path}", hint="create one with `keyward init`") from None

    def read_head(self, n: int) -> bytes:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return b""  # missing or unusable: read() says which, when it comes to that
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return b""
            return os.read(fd, n)
        finally:
            os.close(fd)

    @contextmanager
    def locked(self, timeout: float = 10.0) -> Iterator[None]:
        """Exclusive advisory lock for one read-modify-write."""
        try:
            ensure_private_dir(self.path.parent)
            # O_NOFOLLOW: a link planted at vault.kw.lock must not make a save create or
            # open a file somewhere else.
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafeVaultPath(
                    f"{self.lock_path} is a symbolic link; keyward does not follow links for its lock file",
                    hint=f"nothing was changed; remove it (rm {self.lock_path}) if you did not make it",
                ) from None
            if exc.errno in (errno.EISDIR, errno.ENXIO, errno.ENOTDIR):
                raise UnsafeVaultPath(f"{self.lock_path} is not a regular file",
                                      hint=f"nothing was changed; move it out of the way ({self.lock_path})") from None
            failed = save_failed(exc, self.path)
            if failed is not None:
                raise failed from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnsafeVaultPath(f"{self.lock_path} is not a regular file", hint=f"remove it: rm {self.lock_path}")
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
        try:
            ensure_private_dir(self.path.parent)
            self._remove_stale_temps()
            write_private(self.path, data, before_replace=self._keep_backup if self.path.exists() else None)
        except OSError as exc:
            failed = save_failed(exc, self.path)
            if failed is None:
                raise
            raise failed from None

    def _remove_stale_temps(self) -> None:
        # Under the lock no other writer exists, so any temp file is from a killed save.
        # (a scan, not Path.glob, which compiles a regular expression for every save)
        prefix = f".{self.path.name}."
        with os.scandir(self.path.parent) as entries:
            leftovers = [e.path for e in entries if e.name.startswith(prefix) and e.name.endswith(TEMP_SUFFIX)
                         and len(e.name) >= len(prefix) + len(TEMP_SUFFIX)]
        for leftover in leftovers:
            try:
                os.unlink(leftover)
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


# --- what keyward has seen of each vault (rollback detection) ---------------------------


def state_dir() -> Path:
    """keyward's state directory ($XDG_STATE_HOME/keyward, ~/.local/state/keyward): kept
    outside the vault's directory, so whoever can swap the vault file cannot also
    rewind what keyward remembers of it."""
    from vault.core.dirs import user_state_dir

    return Path(user_state_dir())


class SeenStore:
    """The highest generation (and the audit head at it) keyward has opened or written for
    one vault path, in `state_dir()/seen/SHA256(path).json`.  A file older than that is a
    rollback.  Also remembers a KDF cost the user accepted past the budget for this vault.

    Writes take a lock and never lower the generation (unless `force`, for `init` and
    `restore`), so two processes recording at once cannot rewind it."""

    def __init__(self, vault_path: Path) -> None:
        self.vault = os.path.realpath(Path(vault_path).expanduser())
        from vault.core.digest import sha256

        digest = sha256(self.vault.encode("utf-8", "surrogateescape")).hex()[:32]
        self.path = state_dir() / "seen" / f"{digest}.json"

    def get(self) -> dict[str, Any] | None:
        import json  # (loaded while the KDF runs: a cold command reads this after starting it)

        try:
            raw = json.loads(read_regular(self.path, limit=64 * 1024, what="keyward's state"))
        except (OSError, VaultError, ValueError):
            return None
        if not isinstance(raw, dict) or raw.get("vault") != self.vault:
            return None
        gen, head = raw.get("generation"), raw.get("audit_head")
        if isinstance(gen, bool) or not isinstance(gen, int) or not isinstance(head, str):
            return None
        return raw

    def put(self, generation: int, audit_head: str, *, force: bool = False, kdf: tuple[int, int, int] | None = None,
            now: float | None = None) -> bool:
        """Record a generation opened or written.  Returns False if the state directory
        cannot be written (a read-only home): the check then rests on what this process
        saw, and the caller may say so."""
        try:
            self.path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = self.get()
            record = dict(current or {})
            if current is not None and not force:
                if generation < current["generation"]:
                    return True  # someone recorded a newer one meanwhile
                if generation == current["generation"] and kdf is None and current.get("audit_head") == audit_head:
                    return True  # nothing new: no write
            if force or current is None or generation >= current["generation"]:
                record.update(vault=self.vault, generation=generation, audit_head=audit_head,
                              at=round(now if now is not None else time.time(), 3))
            if kdf is not None:
                record["accepted_kdf"] = list(kdf)
            import json

            _replace_quickly(self.path, json.dumps(record, sort_keys=True).encode("utf-8"))
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def accepted_kdf(self) -> tuple[int, int, int] | None:
        raw = self.get()
        kdf = raw.get("accepted_kdf") if raw else None
        if isinstance(kdf, list) and len(kdf) == 3 and all(isinstance(x, int) for x in kdf):
            return (kdf[0], kdf[1], kdf[2])
        return None


def _replace_quickly(path: Path, data: bytes) -> None:
    """Atomic (temp file, rename) but not fsynced: every save records its generation,
    and two more fsyncs per save would cost more than the record is worth.  After a power
    cut the record may be one save behind (or unreadable, and then rebuilt from the next
    open): rollback detection then starts from that generation."""
    write_private(path, data, durable=False)


def warn(message: str) -> None:
    print(message, file=sys.stderr)
