"""Reading a passphrase from a file: the one rule every face shares (the CLI's
--passphrase-file and KEYWARD_PASSPHRASE_FILE, the Python API, the monitor).

The passphrase is the file's first line with its line ending ("\\n" or "\\r\\n") removed;
nothing else is stripped, so a passphrase may begin or end with spaces."""

from __future__ import annotations

from pathlib import Path

from vault.core.errors import InputError


def read_passphrase_file(path: str) -> str:
    try:
        with open(Path(path).expanduser(), encoding="utf-8") as fh:
            line = fh.readline()
    except OSError as exc:
        raise InputError(f"cannot read passphrase file {path}: {exc.strerror}", hint="check the path") from None
    passphrase = line.rstrip("\r\n")
    if not passphrase:
        raise InputError(f"passphrase file {path} is empty", hint="put the passphrase on its first line")
    return passphrase
