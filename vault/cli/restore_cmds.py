"""`keyward restore FILE`: make an older vault file (the .bak, a rescue file, a copy)
the vault again, on purpose.

keyward refuses to open a vault file older than one it has already seen at that path
(vault.core.service, rollback detection).  This is the deliberate way past that refusal:
it says what will be lost, asks (or takes --yes), writes FILE's content as a new
generation above everything seen, and records a "restore" entry in the audit trail.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vault.cli.context import Context
from vault.core.errors import KeywardError, NotConfirmed, WrongPassphrase


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "restore", help="make FILE the vault again, on purpose (says what will be lost first)",
        description="Restore FILE (vault.kw.bak, a vault.kw.rescue-* file, an older copy, or the vault file itself "
                    "after keyward refused it as older) as the vault's newest generation. Shows what is lost, asks "
                    "for confirmation, and records the restore in the audit trail.",
    )
    p.add_argument("file", metavar="FILE", help="the file to make the vault again (vault.kw.bak, a rescue file, a copy)")
    p.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    p.set_defaults(func=cmd_restore)


def cmd_restore(ctx: Context) -> int:
    from vault.core.service import RestoreLoss, apply_restore, open_for_restore
    from vault.core.storage import VaultFile

    a = ctx.args
    vault = VaultFile(ctx.vault_path)
    source_path = VaultFile(Path(a.file)).path
    source_file = VaultFile(source_path)
    source_file.read()  # "no such file", a FIFO, a directory: before any passphrase
    passphrase = ctx.passphrase()
    current = None
    unreadable = ""
    if source_path != vault.path and vault.exists():
        try:
            current = open_for_restore(vault.path, passphrase)
        except WrongPassphrase:
            raise
        except KeywardError as err:  # damaged, say: a reason to restore, not to stop
            unreadable = err.message
    try:
        source = open_for_restore(source_path, passphrase)
    except WrongPassphrase:
        if current is None or not ctx.interactive:
            raise WrongPassphrase(f"{source_path} does not open with that passphrase",
                                  hint="nothing was restored; pass the passphrase it was sealed with") from None
        source = open_for_restore(source_path, ctx.ask(f"Passphrase of {source_path.name}: ", secret=True))
    del passphrase

    loss = RestoreLoss.between(vault.path, source, current)
    for line in describe(vault.path, source, current, loss, unreadable):
        ctx.out(line)
    if not a.yes:
        if not ctx.interactive:
            raise NotConfirmed("restore replaces the vault and loses what is listed above; no terminal to confirm on",
                               hint="nothing was restored; confirm in a terminal, or pass --yes")
        if not ctx.confirm("Restore it?"):
            raise NotConfirmed("not confirmed", hint="nothing was restored")
    generation = apply_restore(vault.path, source, current, loss, clock=ctx.clock)
    ctx.out(f"restored {source_path} as generation {generation} of {vault.path}; recorded in the audit trail")
    return 0


def describe(vault_path: Path, source, current, loss, unreadable: str) -> list[str]:
    labels = [acct.label for acct in source.data.accounts]
    lines = [f"{source.path} holds generation {source.generation}: {len(labels)} account"
             f"{'' if len(labels) == 1 else 's'} ({', '.join(labels) or 'none'})"]
    if current is not None:
        lines.append(f"{vault_path} now holds generation {current.generation}; restoring replaces it, and is lost:")
        lines.append("  accounts only in the vault now: " + (", ".join(loss.lost_accounts) or "none"))
        lines.append("  accounts whose credentials go back to FILE's: " + (", ".join(loss.changed_accounts) or "none"))
        lines.append(f"  audit entries recorded since: {loss.lost_audit_entries}")
        if loss.returning_accounts:
            lines.append("  (accounts that come back: " + ", ".join(loss.returning_accounts) + ")")
    else:
        why = f"cannot be read ({unreadable})" if unreadable else (
            "is this file" if source.path == vault_path else "does not exist")
        lines.append(f"{vault_path} {why}; keyward cannot list what it held.")
    if loss.seen_generation is not None and loss.seen_generation > source.generation:
        lines.append(f"keyward last saw generation {loss.seen_generation} at {vault_path}: whatever changed after "
                     f"generation {source.generation} is lost")
    return lines
