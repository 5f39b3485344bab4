"""Where the monitor's ops come from: the unlock agent of the vault when one runs (a
`--tokens-only` agent is enough), else the vault unlocked here with a passphrase read
from `--passphrase-file` or the systemd credential `$CREDENTIALS_DIRECTORY/keyward-passphrase`
(`LoadCredential=`).  An agent that stops later is replaced by the local vault on the
next call (vault.agent.client's fallback), if a passphrase source exists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from vault.core.errors import InputError

CREDENTIAL_NAME = "keyward-passphrase"


def passphrase_source(passphrase_file: str | None) -> str | None:
    """The file to read the passphrase from: the flag's, else the systemd credential."""
    if passphrase_file:
        return passphrase_file
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and os.path.isabs(creds):
        candidate = Path(creds) / CREDENTIAL_NAME
        if candidate.is_file():
            return str(candidate)
    return None


def open_ops(vault_path: Path, passphrase_file: str | None, *, notify: Callable[[str], None],
             prompt: Callable[[], str] | None = None) -> tuple[Any, str]:
    """(ops, how: "agent" or "local").  Raises the vault's own errors (wrong passphrase,
    no vault) and InputError when there is neither an agent nor a passphrase."""
    from vault.agent.client import connect

    asking = [prompt]  # only while starting: never a prompt from a running monitor's thread

    def local() -> Any:
        from vault.core.passphrase_file import read_passphrase_file
        from vault.core.service import VaultService
        from vault.core.storage import VaultFile
        from vault.ops.venue_ops import VenueOps

        VaultFile(vault_path).read()  # "no vault here" before anything else
        source = passphrase_source(passphrase_file)
        if source is not None:
            passphrase = read_passphrase_file(source)
        elif asking[0] is not None:
            passphrase = asking[0]()
        else:
            raise InputError(
                "no unlock agent runs on this vault and there is no passphrase to unlock it with",
                hint="run `keyward unlock --tokens-only`, pass --passphrase-file, or set LoadCredential="
                f"{CREDENTIAL_NAME}:PATH in the unit",
            )
        return VenueOps(VaultService.unlock(vault_path, passphrase), notify=notify)

    try:
        agent = connect(vault_path, fallback=local, notify=notify)
        if agent is not None:
            return agent, "agent"
        return local(), "local"
    finally:
        asking[0] = None
