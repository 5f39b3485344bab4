"""Reading a passphrase from a file: the one rule every face shares (the CLI's
--passphrase-file and KEYWARD_PASSPHRASE_FILE, the Python API, the monitor).

The passphrase is the file's first line with its line ending ("\\n" or "\\r\\n") removed;
nothing else is stripped, so a passphrase may begin or end with spaces."""

from __future__ import annotations

from pathlib import Path

from vault.core.errors import InputError

MAX_PASSPHRASE_CHARS = 4096


def read_passphrase_file(path: str) -> str:
    try:
        with open(Path(path).expanduser(), encoding="utf-8") as fh:
            line = fh.readline(MAX_PASSPHRASE_CHARS + 2)  # bounded: the file may be anything
    except OSError as exc:
        raise InputError(f"cannot read passphrase file {path}: {exc.strerror}", hint="check the path") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"passphrase file {path} is not UTF-8 text (offset {exc.start})",
                         hint="save it as UTF-8") from None
    if len(line.rstrip("\r\n")) > MAX_PASSPHRASE_CHARS:
        raise InputError(f"the first line of passphrase file {path} is longer than {MAX_PASSPHRASE_CHARS} characters",
                         hint="put the passphrase alone on its first line")
    passphrase = line.rstrip("\r\n")
    if not passphrase:
        raise InputError(f"passphrase file {path} is empty", hint="put the passphrase on its first line")
    return passphrase
