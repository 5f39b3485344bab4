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


# --- input and accounts --------------------------------------------------------------


class InputError(KeywardError):
    """Bad input: a flag, a JSON file, a PEM, a label."""

    exit_code = 2


class InvalidCredential(InputError):
    exit_code = 20


class UnknownVenue(InputError):
    exit_code = 21


class AccountNotFound(KeywardError):
    exit_code = 22


class AccountExists(InputError):
    exit_code = 23


class Cancelled(KeywardError):
    exit_code = 130


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


# --- the agent -----------------------------------------------------------------------


class AgentError(KeywardError):
    exit_code = 40


class SecretsWithheld(AgentError):
    """An agent started with --tokens-only declined a reveal, copy or export: the
    command unlocks the vault itself instead (it is never shown to the user as such)."""
