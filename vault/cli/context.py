"""What every command gets: the vault path, terminal I/O, passphrase sources, the clock.

Prompts go to the controlling terminal, not stdin, so that `... --from-json -` can read
JSON from a pipe and still ask for a passphrase.  Secrets come from a no-echo prompt or
from a file: never from argv or an environment variable's value.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TextIO

from vault.core.errors import Cancelled, InputError, KeywardError
from vault.core.passphrase_file import read_passphrase_file
from vault.core.storage import default_vault_path, permission_warning

if TYPE_CHECKING:  # pragma: no cover
    from vault.core.service import VaultService


@dataclass
class Context:
    args: argparse.Namespace
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], float] = time.time
    _service: VaultService | None = None
    _ops: Any = None

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

        print(printable(text, newlines=True), file=self.stdout)

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
        if self.stdin.isatty():
            return input(prompt)
        try:
            # Two handles: a text file opened "r+" on a terminal fails (not seekable).
            with open("/dev/tty", "w") as out, open("/dev/tty") as inp:
                out.write(prompt)
                out.flush()
                return inp.readline().rstrip("\n")
        except OSError:
            raise InputError("no terminal to ask on", hint="give the value in a file or with a flag") from None

    def ask(self, prompt: str, *, secret: bool = False) -> str:
        try:
            if secret:
                if not self.interactive:
                    raise InputError("no terminal to ask for a secret on", hint="give it in a file instead")
                return getpass.getpass(prompt)
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
            raise InputError(
                "no passphrase: there is no terminal to ask on",
                hint="pass --passphrase-file PATH or set KEYWARD_PASSPHRASE_FILE",
            )
        return self.ask(prompt, secret=True)

    def new_passphrase(self, file_flag: str | None = None, what: str = "New passphrase") -> str:
        """A passphrase being set: from `file_flag`'s file, else prompted twice."""
        if file_flag:
            return read_passphrase_file(file_flag)
        first = self.ask(f"{what}: ", secret=True)
        if len(first) < 8:
            raise InputError("that passphrase is shorter than 8 characters", hint="choose a longer one")
        if self.ask(f"{what} (again): ", secret=True) != first:
            raise InputError("the two passphrases differ", hint="nothing was changed; try again")
        return first

    # --- the vault -------------------------------------------------------------------

    def unlock(self) -> VaultService:
        """The unlocked vault for this command (one KDF run per process at most)."""
        if self._service is None:
            from vault.core.service import VaultService

            warning = permission_warning(self.vault_path)
            if warning:
                self.warn(warning)
            from vault.core.storage import VaultFile

            VaultFile(self.vault_path).read()  # "no vault here" before asking for a passphrase
            passphrase = self.passphrase()
            self._service = VaultService.unlock(self.vault_path, passphrase, clock=self.clock)
            self._offer_kdf_upgrade(self._service, passphrase)
        return self._service

    def ops(self):
        """The vault and venue operations for this command (vault.ops.venue_ops.VenueOps: tokens,
        headers, logins, checks, and the account changes of vault.ops.account_ops).  Served
        by the unlock agent when one holds this vault (no passphrase, no KDF run, no
        heavy imports); else, or if the agent dies mid-call, done locally after the
        usual prompt.  One per command: one connection, one unlock at most."""
        if self._ops is None:
            if self._service is None:
                from vault.agent.client import connect

                self._ops = connect(self.vault_path, fallback=self._local_ops)
            if self._ops is None:
                self._ops = self._local_ops()
        return self._ops

    def _local_ops(self):
        from vault.ops.venue_ops import VenueOps

        return VenueOps(self.unlock())

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
