"""Every error a user can cause, in one small hierarchy.

Each error carries a one-line message that says what happened *and what to do*, and
its own process exit code.  Messages are built only from non-secret values (labels,
venue names, paths, status codes): an error object may be logged, printed, shown in a
notification or pickled to another process, so it must never hold a secret.
"""

from __future__ import annotations


class KeywardError(Exception):
    """Base of all user-facing errors.  ``str(err)`` is the one line the user sees."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}: {self.hint}"
        return self.message


# --- the vault file ------------------------------------------------------------------


class VaultError(KeywardError):
    exit_code = 10


class VaultNotFound(VaultError):
    exit_code = 11


class VaultExists(VaultError):
    exit_code = 12


class WrongPassphrase(VaultError):
    exit_code = 13


class CorruptVault(VaultError):
    """The file is truncated, tampered with, or not a keyward vault."""

    exit_code = 14


class UnsupportedVersion(VaultError):
    exit_code = 15


class UnsafeKdfParameters(CorruptVault):
    """KDF parameters outside the accepted range: refused before any memory is spent."""


class VaultBusy(VaultError):
    exit_code = 16


class VaultChanged(VaultError):
    """Another process re-keyed the vault while this one held it open."""

    exit_code = 17


class VaultLocked(VaultError):
    exit_code = 18


class VaultRolledBack(VaultError):
    """The file is older than one keyward has already opened or written at this path
    (a lower generation, or the same generation with another audit head): refused
    unless the user restores it on purpose with `keyward restore FILE`."""

    exit_code = 19


class KdfCostRefused(UnsafeKdfParameters):
    """A file asks for more Argon2id memory, or memory x iterations, than the budget
    allows: refused before the derivation runs.  The message names the cost.  Unlike its
    parent (a file no keyward ever writes) it may be the user's own choice: its own code."""

    exit_code = 50


class VaultSaveFailed(VaultError):
    """The file system refused a save (full, read-only, no permission): the vault on
    disk is unchanged, and the message says what was not stored."""

    exit_code = 51


class UnsafeVaultPath(VaultError):
    """The vault path (or its lock file) is not a regular file keyward may use: a
    FIFO, a device, a directory, a symbolic link where none may be."""

    exit_code = 52


# --- input and accounts --------------------------------------------------------------


class UsageError(KeywardError):
    """A command line that does not make sense: flags that exclude each other, a flag
    missing its companion.  Exit 2, as argparse's own usage errors: 2 means nothing else."""

    exit_code = 2


class NotConfirmed(KeywardError):
    """The user declined or mistyped a confirmation (remove's label, the second
    passphrase, a plaintext export): nothing was changed.  Not 130, which is Ctrl-C."""

    exit_code = 3


class InputError(KeywardError):
    """A value keyward cannot use: a label, a URL, a duration, a setting, a PEM.  The
    subclasses below say more precisely what was wrong with the input."""

    exit_code = 24


class InvalidCredential(InputError):
    exit_code = 20


class UnknownVenue(InputError):
    exit_code = 21


class AccountNotFound(KeywardError):
    exit_code = 22


class AccountExists(InputError):
    exit_code = 23


class MalformedInput(InputError):
    """Text that does not parse: invalid JSON, not UTF-8, a format keyward does not know."""

    exit_code = 25


class EmptyInput(InputError):
    """Nothing to read: empty stdin, an empty paste, an empty passphrase file."""

    exit_code = 26


class FileUnusable(InputError):
    """A file named on the command line cannot be read or written (missing, a
    directory, no permission, already there)."""

    exit_code = 27


class NoTerminal(InputError):
    """Something must be asked and there is no terminal to ask on."""

    exit_code = 28


class WeakPassphrase(InputError):
    """A new passphrase refused by the strength policy (vault.core.passphrase_policy)."""

    exit_code = 29


class InputTooLarge(InputError):
    """stdin, a paste or a credential file past the input cap: refused before parsing."""

    exit_code = 4


class Cancelled(KeywardError):
    """Interrupted: Ctrl-C, or Ctrl-D at a prompt (the shell's 128 + SIGINT)."""

    exit_code = 130


class OutputFailed(KeywardError):
    """Standard output refused what the command printed (a full disk, a device that
    refuses writes).  Whatever the command changed in the vault is saved; only the
    output is lost, so the command must not end as if it had succeeded."""

    exit_code = 5


def output_failed(exc: OSError) -> OutputFailed:
    return OutputFailed(f"cannot write the output ({exc.strerror or type(exc).__name__})",
                        hint="free space where it goes, or send it elsewhere; what was printed is incomplete")


# --- talking to a venue --------------------------------------------------------------


class VenueError(KeywardError):
    """The venue (or the network in between) refused or failed a request."""

    exit_code = 30

    def __init__(
        self, message: str, *, hint: str | None = None, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


class NetworkError(VenueError):
    exit_code = 31


class AuthRejected(VenueError):
    """401/403, a refused signature, a failed AuthenticateUser.  Never retried."""

    exit_code = 32


class RateLimited(VenueError):
    exit_code = 33

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(VenueError):
    exit_code = 34


class AccountLockedOut(AuthRejected):
    """The venue locked the user (Kiiex after repeated failed logins)."""

    exit_code = 35


class SecondFactorRequired(AuthRejected):
    """The venue wants a 2FA code (Kiiex's Requires2FA): an API key alone cannot log in."""

    exit_code = 37


class InsecureTransport(InputError):
    exit_code = 36


class ResponseTooLarge(VenueError):
    """The answer passed max_response_bytes on the wire, or max_decoded_bytes once
    decompressed (a gzip bomb): reading stopped there and nothing of it was kept."""

    exit_code = 38


class DeadlineExceeded(NetworkError):
    """One call (connecting, every byte of the answer, every retry) passed its
    request_deadline_s: a venue dripping bytes or stalling mid-answer."""

    exit_code = 39


# --- the agent -----------------------------------------------------------------------


class AgentError(KeywardError):
    exit_code = 40


class AgentDeclined(AgentError):
    """The agent's mode does not allow this operation: the command unlocks the vault
    itself instead, after the passphrase (it is never shown to the user as such)."""


class SecretsWithheld(AgentDeclined):
    """An agent started with --tokens-only declined a reveal, copy or export: the
    command unlocks the vault itself instead (it is never shown to the user as such)."""
