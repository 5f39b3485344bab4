"""What every command gets: the vault path, terminal I/O, passphrase sources, the clock.

Prompts go to the controlling terminal, not stdin, so that `... --from-json -` can read
JSON from a pipe and still ask for a passphrase.  Secrets come from a no-echo prompt or
from a file: never from argv or an environment variable's value.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from importlib import import_module
from pathlib import Path

from vault.core.errors import Cancelled, KeywardError, NoTerminal, NotConfirmed, WeakPassphrase, WrongPassphrase
from vault.core.passphrase_file import read_passphrase_file
from vault.core.storage import default_vault_path, permission_warning

TYPE_CHECKING = False  # (typing is not imported at run time: it loads with the rest while the KDF runs)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, TextIO, TypeVar

    from vault.core.service import VaultService

    T = TypeVar("T")
PASSPHRASE_TRIES = 3  # a mistyped passphrase is asked again, as ssh-add and gpg do


def _tries_left(left: int) -> str:
    return f"{left} {'tries' if left > 1 else 'try'} left"


class Context:
    """One command's parsed arguments, its streams and clock, and (once asked for) its
    unlocked vault and operations.  A plain class, not a dataclass: it is built before
    the KDF starts, and importing `dataclasses` (which imports `inspect`) there cost a
    cold `show` about 8 ms that nothing overlapped."""

    def __init__(self, args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None,
                 stderr: TextIO | None = None, clock: Callable[[], float] = time.time) -> None:
        self.args = args
        self.stdin = sys.stdin if stdin is None else stdin
        self.stdout = sys.stdout if stdout is None else stdout
        self.stderr = sys.stderr if stderr is None else stderr
        self.clock = clock
        self._service: VaultService | None = None
        self._ops: Any = None
        self._ops_venues = False  # whether self._ops has the venue operations

    @property
    def vault_path(self) -> Path:
        given = getattr(self.args, "vault", None)
        return Path(given).expanduser() if given else default_vault_path()

    @property
    def passphrase_file(self) -> str | None:
        return getattr(self.args, "passphrase_file", None) or os.environ.get("KEYWARD_PASSPHRASE_FILE")

    # --- terminal --------------------------------------------------------------------

    def out(self, text: str = "") -> None:
        # Text from outside (audit details, notes, venue answers) is data: shown, never
        # obeyed by the terminal (vault.core.text).
        from vault.core.text import printable

        self._write(printable(text, newlines=True) + "\n")

    def out_json(self, obj: object) -> None:
        """`--json` output: indented, stable keys, written at once.  (json.dump writes
        each token on its own: 68,000 writes for 1,000 accounts, each a system call when
        stdout is unbuffered, as under PYTHONUNBUFFERED.)  The text is json.dumps(obj,
        indent=2)'s, made mostly by json's C encoder (vault.core.json_text).  JSON escapes
        every control character itself, so it needs no `printable`."""
        from vault.core.json_text import dumps_indented

        self._write(dumps_indented(obj) + "\n")

    def _write(self, text: str) -> None:
        """Standard output, which may refuse (a full disk): a typed error, not a bug.  A
        reader that went away (`| head`) raises BrokenPipeError, which ends quietly."""
        if self.stdout is None:  # started with it closed (`>&-`)
            from vault.core.errors import OutputFailed

            raise OutputFailed("cannot write the output (standard output is closed)",
                               hint="run it with standard output open, or send it to a file")
        try:
            self.stdout.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            from vault.core.errors import output_failed

            raise output_failed(exc) from None

    def warn(self, text: str) -> None:
        from vault.core.text import printable

        print(printable(text, newlines=True), file=self.stderr)

    @property
    def interactive(self) -> bool:
        try:
            with open("/dev/tty"):
                return True
        except OSError:
            return False

    def _tty_input(self, prompt: str) -> str:
        from vault.core.terminal import ask_line

        if self.stdin.isatty():  # (the prompt goes where the person looks, not into a redirected stdout)
            return ask_line(prompt, self.stdin, self.stdout if self.stdout.isatty() else self.stderr)
        try:
            # Two handles: a text file opened "r+" on a terminal fails (not seekable).
            with open("/dev/tty", "w") as out, open("/dev/tty") as inp:
                return ask_line(prompt, inp, out)
        except OSError:
            raise NoTerminal("no terminal to ask on", hint="give the value in a file or with a flag") from None

    def ask(self, prompt: str, *, secret: bool = False) -> str:
        try:
            if secret:
                if not self.interactive:
                    raise NoTerminal("no terminal to ask for a secret on", hint="give it in a file instead")
                from vault.core.terminal import ask_secret

                try:
                    return ask_secret(prompt)
                except OSError:
                    raise NoTerminal("no terminal to ask for a secret on", hint="give it in a file instead") from None
            return self._tty_input(prompt)
        except (EOFError, KeyboardInterrupt):
            raise Cancelled("cancelled", hint="nothing was changed") from None

    def confirm(self, question: str) -> bool:
        return self.ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    # --- passphrases -----------------------------------------------------------------

    def passphrase(self, prompt: str = "Vault passphrase: ") -> str:
        if self.passphrase_file:
            return read_passphrase_file(self.passphrase_file)
        if not self.interactive:
            raise NoTerminal(
                "no passphrase: there is no terminal to ask on",
                hint="pass --passphrase-file PATH or set KEYWARD_PASSPHRASE_FILE",
            )
        return self.ask(prompt, secret=True)

    def with_passphrase(self, attempt: Callable[[str], T], prompt: str = "Vault passphrase: ") -> T:
        """`attempt(passphrase)`, asking again after a wrong passphrase, PASSPHRASE_TRIES
        times in all, as ssh-add and sudo do.  A passphrase file gets one try (it cannot
        change between tries); any other error ends at once."""
        return self._with_retries(
            1 if self.passphrase_file else PASSPHRASE_TRIES, lambda: self.passphrase(prompt), attempt,
            WrongPassphrase, lambda err, left: f"wrong passphrase, try again ({_tries_left(left)})",
        )

    def _with_retries(self, tries: int, ask: Callable[[], str], attempt: Callable[[str], T],
                      retry_on: type[KeywardError] | tuple[type[KeywardError], ...],
                      say: Callable[[KeywardError, int], str]) -> T:
        """`attempt(ask())` up to `tries` times: a `retry_on` error is said and asked again,
        until the last try, which raises it; the asked value is dropped after each try."""
        for left in range(tries - 1, -1, -1):
            value = ask()
            try:
                return attempt(value)
            except retry_on as err:
                if not left:
                    raise
                self.warn(say(err, left))
            finally:
                del value
        raise AssertionError("unreachable")  # pragma: no cover

    def new_passphrase(self, file_flag: str | None = None, what: str = "New passphrase",
                       noun: str = "passphrase") -> str:
        """A passphrase being set, held to the one policy (vault.core.passphrase_policy):
        from `file_flag`'s file (one try), else prompted twice, with PASSPHRASE_TRIES
        tries for a refused or mistyped one."""
        from vault.core.passphrase_policy import check_new_passphrase

        if file_flag:
            chosen = read_passphrase_file(file_flag)
            check_new_passphrase(chosen, noun)
            return chosen

        def confirmed(first: str) -> str:
            check_new_passphrase(first, noun)
            if self.ask(f"{what} (again): ", secret=True) != first:
                raise NotConfirmed("the two passphrases differ", hint="nothing was changed; type the same one twice")
            return first

        return self._with_retries(PASSPHRASE_TRIES, lambda: self.ask(f"{what}: ", secret=True), confirmed,
                                  (WeakPassphrase, NotConfirmed), lambda err, left: f"keyward: {err} ({_tries_left(left)})")

    # --- the vault -------------------------------------------------------------------

    def unlock(self, *, load: tuple[str, ...] = ()) -> VaultService:
        """The unlocked vault for this command (one KDF run per process at most).  The
        KDF starts on a thread of its own as soon as the passphrase is known; the modules
        that will use the vault (the service, and `load`) are imported while it runs."""
        if self._service is None:
            from vault.core import fileformat as ff
            from vault.core.storage import VaultFile

            warning = permission_warning(self.vault_path)
            if warning:
                self.warn(warning)
            blob = VaultFile(self.vault_path).read()  # "no vault here" before asking for a passphrase

            def attempt(passphrase: str) -> VaultService:
                ff.unlock_ahead(blob, passphrase)
                for name in ("vault.core.service", *load):
                    import_module(name)
                from vault.core.service import VaultService

                service = VaultService.unlock(self.vault_path, passphrase, clock=self.clock)
                self._offer_kdf_upgrade(service, passphrase)
                return service

            self._service = self.with_passphrase(attempt)
        return self._service

    def ops(self, *, venues: bool = True):
        """The vault and venue operations for this command (vault.ops.venue_ops.VenueOps: tokens,
        headers, logins, checks, and the account changes of vault.ops.account_ops).  Served
        by the unlock agent when one holds this vault (no passphrase, no KDF run, no
        heavy imports); else, or if the agent dies mid-call, done locally after the
        usual prompt.  One per command: one connection, one unlock at most.

        `venues=False`: a command that talks to no venue (list, show, remove, audit...)
        gets the vault-only operations (vault.ops.vault_ops.VaultOps) when it runs them
        locally, without loading the HTTP layer and the signing code."""
        if self._ops is None or (venues and not self._ops_venues):
            local = self._local_ops if venues else self._local_vault_ops
            self._ops = None
            if self._service is None and self._agent_socket_exists():
                from vault.agent.client import connect

                self._ops = connect(self.vault_path, fallback=local)
            if self._ops is None:
                self._ops = local()
            self._ops_venues = venues  # (the agent serves either; its fallback is `local`)
        return self._ops

    def _agent_socket_exists(self) -> bool:
        """Whether any place an agent for this vault would listen has a socket: the
        client (and its imports) is loaded only then.  connect() checks everything else."""
        from vault.agent import socket_paths
        from vault.core.errors import AgentError

        try:
            return any(os.path.exists(path) for path in socket_paths(self.vault_path))
        except AgentError:
            return False

    def _local_ops(self):
        service = self.unlock(load=("vault.ops.venue_ops",))
        from vault.ops.venue_ops import VenueOps

        return VenueOps(service)

    def _local_vault_ops(self):
        # (what these commands show is made by views, from what every venue module
        # shares, and printed through text: loaded while the KDF runs too)
        service = self.unlock(load=("vault.ops.vault_ops", "vault.ops.views", "vault.venues.base",
                                    "vault.net.answers", "vault.core.text"))
        from vault.ops.vault_ops import VaultOps

        return VaultOps(service)

    def _offer_kdf_upgrade(self, service: VaultService, passphrase: str) -> None:
        from vault.core.fileformat import DEFAULT_KDF

        if self.passphrase_file or not service.kdf.weaker_than(DEFAULT_KDF) or not self.interactive:
            return
        if self.confirm(f"This vault uses {service.kdf.describe()}, weaker than today's {DEFAULT_KDF.describe()}. Upgrade?"):
            service.change_passphrase(passphrase, DEFAULT_KDF)
            self.warn(f"upgraded to {DEFAULT_KDF.describe()}")


def fail(err: KeywardError, stderr: TextIO) -> int:
    from vault.core.text import printable

    print(f"keyward: {printable(str(err))}", file=stderr)  # one line, whatever it quotes
    return err.exit_code
