"""Credential lifecycle commands: register, capture, rotate, export, pubkey, audit, key-age;
and `import_bundle`, which `keyward import` calls for an encrypted bundle.

Secrets arrive from the venue's API, a no-echo paste, a file or stdin; they leave only
through `export` (plaintext on request, or an encrypted bundle) and the clipboard.
Nothing here prints a credential value, puts one in an error or writes one to a file
other than the vault, a bundle or an explicit plaintext export.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path

from vault.core.errors import (AccountExists, Cancelled, CorruptVault, EmptyInput, FileUnusable, InputError,
                               NoTerminal, NotConfirmed, UsageError, VenueError)
from vault.cli.context import Context
from vault.core.passphrase_file import read_passphrase_file
from vault.cli.vault_cmds import add_location_options
from vault.core.model import check_label

PASTE_TRIES = 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("register", help="open a TradeReady account through its API; its keys go straight into the vault")
    p.add_argument("venue", help="tradeready (the one venue with a registration API)")
    p.add_argument("label")
    p.add_argument("--display-name", required=True, metavar="NAME", help="the account's display name at the venue")
    p.add_argument("--email", metavar="ADDRESS", help="the e-mail address to register with (optional)")
    p.add_argument("--starting-balance", metavar="AMOUNT", help="virtual USDT to start with (venue default 10000)")
    add_location_options(p)
    p.set_defaults(func=cmd_register)

    p = sub.add_parser(
        "capture",
        help="store what a venue's one-time screen shows: pasted without echo, or from --file / stdin",
    )
    p.add_argument("venue")
    p.add_argument("label")
    add_location_options(p)
    add_source_options(p)
    p.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    p.add_argument("--notes", default="")
    p.set_defaults(func=cmd_capture)

    p = sub.add_parser(
        "rotate",
        help="replace an account's credential: store, verify, retire the old one (rolls back if it fails)",
    )
    p.add_argument("label")
    add_source_options(p)
    p.add_argument("--rollback", action="store_true", help="switch back to the previous credential")
    p.add_argument("--no-verify", action="store_true", help="store the new credential without checking it (offline)")
    p.set_defaults(func=cmd_rotate)

    p = sub.add_parser("export", help="export accounts: plaintext (env, json, native) or an encrypted bundle")
    p.add_argument("labels", nargs="*", metavar="LABEL")
    p.add_argument("--format", choices=("env", "json", "native"), help="plaintext export of one account")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE (created 0600) instead of stdout")
    p.add_argument("--yes", action="store_true", help="do not ask before writing plaintext secrets")
    p.add_argument("--allow-terminal", action="store_true", help="print plaintext secrets even when stdout is a terminal")
    p.add_argument("--encrypted", metavar="FILE", help="write an encrypted bundle (all accounts unless LABELs are given)")
    p.add_argument("--bundle-passphrase-file", metavar="PATH", help="the bundle's passphrase (else prompted twice)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("pubkey", help="PowerTrade: the public key (PEM and JWK) of an account's private key")
    p.add_argument("label")
    p.add_argument("--format", choices=("both", "pem", "jwk"), default="both", help="what to print (default: both)")
    p.set_defaults(func=cmd_pubkey)

    p = sub.add_parser("audit", help="the audit trail (verified against its hash chain)")
    p.add_argument("label", nargs="?")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, metavar="N", help="only the last N entries")
    p.add_argument("--expect-head", metavar="DIGEST", help="check that the trail still holds an entry with this digest "
                   "(one noted from an earlier `keyward audit`): proves nothing before it was rewritten")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("key-age", help="key ages against their maximum; set the maximum")
    p.add_argument("label", nargs="?")
    p.add_argument("--max-days", type=int, metavar="N", help="set the maximum (for LABEL, or the vault default); 0 resets LABEL to the default")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_key_age)


def add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", metavar="FILE|-", help="read the credentials from FILE (- for stdin) instead of a no-echo paste")
    p.add_argument("--shred-source", action="store_true",
                   help="overwrite FILE with random bytes and delete it once the vault is saved")


# --- reading one-time material -------------------------------------------------------------


def check_shreddable(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise FileUnusable(f"{path} does not exist", hint="check the path") from None
    if stat.S_ISLNK(st.st_mode):
        raise FileUnusable(f"{path} is a symbolic link", hint="pass the file it points to, so that one is shredded")
    if not stat.S_ISREG(st.st_mode):
        raise FileUnusable(f"{path} is not a regular file", hint="--shred-source shreds plain files only")
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        raise FileUnusable(f"cannot shred {path}: no write permission", hint="fix the permissions or drop --shred-source")


def shred(path: Path) -> None:
    """Overwrite the file's bytes with random data, fsync, unlink, fsync the directory.

    On copy-on-write filesystems (btrfs, ZFS), with snapshots, and on SSDs (wear levelling)
    the old blocks may survive: like shred(1), this is a best effort, documented as such."""
    from vault.core.storage import fsync_dir

    size = os.lstat(path).st_size
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        done = 0
        while done < size:
            done += os.pwrite(fd, os.urandom(min(1 << 16, size - done)), done)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.unlink(path)
    fsync_dir(path.parent)


PASTE_GRACE_S = 0.3  # a paste arrives in one burst; a person's next key takes longer


def read_hidden_paste(ctx: Context, prompt: str, venue: str | None = None) -> str:
    """Lines from the terminal with echo off, until an empty line after some text, or Ctrl-D.

    An empty line ends the input only when nothing else is already on its way (a paste
    arrives in one burst, so an empty line inside it is followed at once by the rest)
    and no PEM block or JSON object is left open (`capture.unfinished`): one-time screens
    copied off a web page hold empty lines of their own.  The terminal stays in canonical
    (line) mode, so a single pasted line longer than the kernel's line buffer (4095 bytes
    on Linux) would be cut: one-time screens are far shorter, and a longer input belongs
    in --file."""
    import select
    import termios

    from vault.core.inputs import MAX_INPUT_BYTES, decode, too_large
    from vault.ops.capture import unfinished

    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        raise NoTerminal("no terminal to paste on", hint="pass --file FILE, or pipe JSON to stdin") from None

    def say(text: str) -> None:
        os.write(fd, text.encode("utf-8", "replace"))

    def pending() -> bool:
        return bool(select.select([fd], [], [], PASTE_GRACE_S)[0])

    chunks: list[bytes] = []
    try:
        old = termios.tcgetattr(fd)
        new = termios.tcgetattr(fd)
        new[3] &= ~(termios.ECHO | termios.ECHONL)
        told = False
        try:
            # Echo off before the prompt shows, so nothing pasted after it can be echoed.
            termios.tcsetattr(fd, termios.TCSAFLUSH, new)
            say(prompt)
            pasted = 0
            while True:
                chunk = os.read(fd, 65536)  # canonical mode: one line per read
                pasted += len(chunk)
                if pasted > MAX_INPUT_BYTES:
                    raise too_large("the paste")
                if not chunk:  # Ctrl-D on an empty line
                    break
                chunk = chunk.replace(b"\x1b[200~", b"").replace(b"\x1b[201~", b"")  # bracketed paste
                if not chunk.strip() and any(c.strip() for c in chunks):
                    if pending():
                        chunks.append(chunk)  # an empty line inside a paste
                        continue
                    so_far = b"".join(chunks).decode("utf-8", "replace")
                    reason = unfinished(so_far) if venue else None
                    if reason is None:
                        break
                    chunks.append(chunk)
                    if not told:
                        say(f"({reason}: paste the rest, or press Ctrl-D to stop)\n")
                        told = True
                    continue
                chunks.append(chunk)
        except KeyboardInterrupt:
            raise Cancelled("cancelled", hint="nothing was changed") from None
        finally:
            # TCSAFLUSH: whatever was typed past the end is dropped, not left for the shell
            # to run or echo.
            termios.tcsetattr(fd, termios.TCSAFLUSH, old)
        data = b"".join(chunks)
        del chunks
        try:
            text = decode(data, "the paste")  # strict UTF-8, the bad byte's offset named
        finally:
            del data
        count = sum(1 for x in text.splitlines() if x.strip())
        say(f"(read {count} line{'s' if count != 1 else ''}, not shown)\n")
    finally:
        os.close(fd)
    return text


def read_file_text(source: str) -> str:
    from vault.core.inputs import read_file

    return read_file(source)  # bounded, strict UTF-8


class Source:
    """Where the material comes from; `paste` means the terminal (can be asked again)."""

    def __init__(self, ctx: Context, venue: str, what: str) -> None:
        a = ctx.args
        self.ctx, self.venue, self.what = ctx, venue, what
        self.file: str | None = a.file
        self.shred = a.shred_source
        if self.shred:
            if not self.file or self.file == "-":
                raise UsageError("--shred-source needs --file FILE", hint="name the file to read and shred")
            check_shreddable(Path(self.file).expanduser())
        if self.file:
            self.kind = "stdin" if self.file == "-" else "file"
        elif not ctx.stdin.isatty():
            self.kind = "stdin"
        elif ctx.interactive:
            self.kind = "paste"
        else:
            raise NoTerminal("no terminal to paste on", hint="pass --file FILE, or pipe JSON to stdin")

    def read(self) -> str:
        if self.kind == "file":
            return read_file_text(self.file)  # type: ignore[arg-type]
        if self.kind == "stdin":
            from vault.core.inputs import read_stream

            text = read_stream(self.ctx.stdin, "stdin")  # bounded, strict UTF-8
            if not text.strip():
                raise EmptyInput(
                    "nothing to capture on stdin",
                    hint="pipe the credentials as JSON with the venue's field names, or pass --file FILE",
                )
            return text
        from vault.venues import get_provider

        title = get_provider(self.venue).title
        return read_hidden_paste(
            self.ctx, f"Paste {self.what} {title} showed, then press Enter on an empty line (input is hidden):\n",
            self.venue,
        )

    def capture(self):
        """Read and parse, asking again (up to PASTE_TRIES) when the paste was wrong."""
        from vault.ops.capture import parse

        tries = PASTE_TRIES if self.kind == "paste" else 1
        for attempt in range(1, tries + 1):
            text = self.read()
            try:
                return parse(text, self.venue, {"paste": "the paste", "stdin": "stdin"}.get(self.kind, str(self.file)))
            except InputError as err:
                if attempt == tries:
                    raise
                self.ctx.warn(f"keyward: {err} (try {attempt} of {tries}; paste again)")
            finally:
                del text
        raise AssertionError("unreachable")

    def after_save(self) -> None:
        if not self.shred:
            return
        path = Path(self.file).expanduser()  # type: ignore[arg-type]
        try:
            shred(path)
        except OSError as exc:
            raise FileUnusable(
                f"the credentials are saved, but {path} could not be shredded ({exc.strerror})",
                hint=f"delete it yourself: shred -u {path}",
            ) from None
        self.ctx.out(f"shredded {path}")


def report_repairs(ctx: Context, captured) -> None:
    for item in captured.repairs:
        ctx.out(f"  repaired: {item}")


# --- register ------------------------------------------------------------------------------


def cmd_register(ctx: Context) -> int:
    from vault.venues import resolve_base_url
    from vault.net.http import Sender, json_body, make_client
    from vault.core.model import Account
    from vault.venues import get_provider

    a = ctx.args
    provider = get_provider(a.venue)
    if provider.venue != "tradeready":
        raise InputError(
            f"{provider.title} has no registration API",
            hint=f"create the key in its web UI, then `keyward capture {provider.venue} {a.label}`",
        )
    check_label(a.label)
    base_url, env = resolve_base_url(provider.venue, a.env, a.base_url)
    ops = ctx.ops()  # before the venue creates anything: the vault opens, the label is free
    if a.label in ops.labels():
        raise AccountExists(f"an account labelled {a.label!r} already exists", hint="choose another label")
    body: dict[str, object] = {"display_name": a.display_name}
    if a.email:
        body["email"] = a.email
    if a.starting_balance is not None:
        body["starting_balance"] = a.starting_balance
    shell = Account(label=a.label, venue=provider.venue, base_url=base_url, env=env, fields={})
    sender = Sender(clock=ctx.clock)
    with make_client() as client:
        response = sender.send(client, "POST", base_url + "/api/v1/auth/register", json=body, idempotent=False,
                               venue=provider.title)
        provider.raise_for_error(shell, response)
        status = response.status_code
        try:
            answer = json_body(response, provider.title)
        except VenueError:
            answer = None
    del response
    # The venue said yes: an account exists there now, and its secret is shown only once.
    lost = (f"TradeReady answered HTTP {status} (account created) but its answer", "the account exists without "
            "its keys reaching keyward: ask TradeReady support to close it, then register again")
    if not isinstance(answer, dict):
        ops.record_failure("register", [a.label], f"HTTP {status}: the answer is not a JSON object")
        raise VenueError(f"{lost[0]} is not a JSON object", hint=lost[1])
    from vault.ops.formats import recognise

    try:
        venue, fields, _extras = recognise(answer)
    except InputError:
        venue, fields = "", {}
    if venue != "tradeready":
        ops.record_failure("register", [a.label], f"HTTP {status}: no API key and secret in the answer")
        raise VenueError(f"{lost[0]} holds no API key and secret", hint=lost[1])
    del answer
    acct = Account(label=a.label, venue=provider.venue, base_url=base_url, env=env, fields=provider.normalize(fields),
                   created_at=ctx.clock())
    what = ", ".join(n for n in ("api_key", "api_secret", "agent_api_key") if n in acct.fields)

    stored = ops.store_account(acct, action="register", detail=f"registered through the API; stored {what}", keep_both=True)
    ids = ", ".join(f"{n} {acct.fields[n]}" for n in ("account_id", "agent_id") if n in acct.fields)
    ctx.out(f"registered {stored} ({provider.title}, {env or base_url}{'; ' + ids if ids else ''})")
    ctx.out(f"  stored {what} in the vault; they were not shown, and TradeReady will not show the secret again")
    if stored != a.label:
        ctx.warn(f"warning: {a.label!r} was taken meanwhile; saved as {stored!r}")
    return 0


# --- capture -------------------------------------------------------------------------------


def cmd_capture(ctx: Context) -> int:
    from vault.venues import resolve_base_url
    from vault.core.model import Account
    from vault.venues import get_provider

    a = ctx.args
    provider = get_provider(a.venue)
    check_label(a.label)
    base_url, env = resolve_base_url(provider.venue, a.env, a.base_url)
    source = Source(ctx, provider.venue, "the credentials")
    ops = ctx.ops()  # before the paste: a wrong passphrase must not cost a one-time secret
    if a.label in ops.labels():
        raise AccountExists(f"an account labelled {a.label!r} already exists", hint="choose another label, or `keyward rotate` it")
    captured = source.capture()
    acct = Account(label=a.label, venue=provider.venue, base_url=base_url, env=env, fields=captured.fields,
                   created_at=ctx.clock(), tags=list(a.tag), notes=a.notes)
    detail = f"from {captured.source_format}" + (f"; {len(captured.repairs)} repair(s)" if captured.repairs else "")
    # keep_both: a label taken meanwhile by another process must not cost the secret.
    stored = ops.store_account(acct, action="capture", detail=detail, keep_both=True)
    if stored != a.label:
        ctx.warn(f"warning: {a.label!r} was taken meanwhile; saved as {stored!r}")
    ctx.out(f"captured {stored} ({provider.title}, {env or base_url}) from {captured.source_format}")
    report_repairs(ctx, captured)
    source.after_save()
    return 0


# --- rotate --------------------------------------------------------------------------------


def cmd_rotate(ctx: Context) -> int:
    a = ctx.args
    ops = ctx.ops()
    mode = ops.rotation_mode(a.label)  # the account exists (and the vault opens) before any paste
    verify = not a.no_verify
    if a.rollback:
        if a.file or a.shred_source:
            raise UsageError("--rollback reads no new credentials", hint="drop --file/--shred-source")
        result = ops.rotate(a.label, rollback=True, verify=verify)
    elif mode == "regenerate" and not a.file:
        if a.no_verify:
            raise UsageError("TradeReady revokes the old agent key at once, so its rotation is always verified",
                             hint="drop --no-verify")
        result = ops.rotate(a.label)
    else:
        venue = ops.summary(a.label)["venue"]
        source = Source(ctx, venue, "the NEW credentials")
        captured = source.capture()
        report_repairs(ctx, captured)
        result = ops.rotate(a.label, captured.fields, verify=verify, source=f" from {captured.source_format}")
        source.after_save()
    for warning in result.get("warnings", ()):
        ctx.warn(warning)
    if result["ok"]:
        ctx.out(result["message"])
        return 0
    ctx.warn(f"keyward: {result['message']}")
    return VenueError.exit_code


# --- export --------------------------------------------------------------------------------


def _confirm_plaintext(ctx: Context, question: str) -> None:
    if ctx.args.yes:
        return
    if not ctx.interactive:
        raise NoTerminal("a plaintext export needs confirmation and there is no terminal to ask on",
                         hint="add --yes if you mean it")
    if not ctx.confirm(question):
        raise NotConfirmed("not exported", hint="nothing was written")


def _writable_target(ctx: Context, path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise FileUnusable(f"cannot use {path}: {exc.strerror}", hint="choose another path") from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            # --force replaces by rename: a directory, a device (/dev/tty) or a symbolic
            # link would be swapped for a file of secrets, not written through.
            kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            raise FileUnusable(f"{path} is {kind}", hint="name a new file (exports are written 0600 by keyward itself)")
        if not ctx.args.force:
            raise FileUnusable(f"{path} already exists", hint="choose another path, or add --force to overwrite it")
    if not path.parent.is_dir():
        raise FileUnusable(f"{path.parent} is not a directory", hint="create it first")


def cmd_export(ctx: Context) -> int:
    a = ctx.args
    if a.encrypted:
        if a.format or a.output or a.allow_terminal:
            raise UsageError("--encrypted writes a bundle; --format/--output/--allow-terminal are for plaintext",
                             hint="drop one or the other")
        return export_bundle(ctx)
    if not a.format:
        raise UsageError("say how to export", hint="--format env|json|native for plaintext, or --encrypted FILE")
    if len(a.labels) != 1:
        raise UsageError("a plaintext export takes exactly one LABEL", hint="use --encrypted FILE to move several")
    from vault.ops.export import render
    from vault.core.storage import write_private

    label = a.labels[0]
    target = Path(a.output).expanduser() if a.output else None
    if target is not None:
        _writable_target(ctx, target)
    elif ctx.stdout.isatty() and not a.allow_terminal:
        raise InputError("refusing to print plaintext secrets to the terminal",
                         hint="pass --output FILE, pipe it, or add --allow-terminal")
    ops = ctx.ops(venues=False)
    ops.summary(label)  # the usual "no account labelled ..." error, before the question
    where = str(target) if target is not None else "stdout"
    _confirm_plaintext(ctx, f"Export {label}'s secrets IN PLAINTEXT ({a.format}) to {where}?")
    # Recorded as it is handed over: an export that happened must never be missing from the trail.
    (acct,) = ops.export_accounts([label], f"plaintext {a.format} to {where}")
    text = render(acct, a.format, ctx.clock())
    del acct
    if target is not None:
        try:
            write_private(target, text.encode("utf-8"))
        except OSError as exc:
            ops.record_failure("export", [label], f"could not write {where}")
            raise FileUnusable(f"cannot write {target}: {exc.strerror}", hint="check the path and permissions") from None
        ctx.warn(f"exported {label} ({a.format}) to {target} (mode 0600): plaintext secrets, delete it when done")
    else:
        ctx.stdout.write(text)
        ctx.stdout.flush()
    return 0


def export_bundle(ctx: Context) -> int:
    from vault.ops import bundle
    from vault.core.storage import write_private

    a = ctx.args
    target = Path(a.encrypted).expanduser()
    _writable_target(ctx, target)
    ops = ctx.ops()
    labels = list(dict.fromkeys(a.labels)) if a.labels else ops.labels()
    if not labels:
        raise InputError("the vault has no accounts to export", hint="add one first")
    for label in labels:
        ops.summary(label)  # the usual "no account labelled ..." error, before any question
    # The vault's policy: the bundle may travel where anyone can try passphrases on it.
    passphrase = ctx.new_passphrase(a.bundle_passphrase_file, "Passphrase for the bundle", noun="bundle passphrase")
    kdf = bundle.bundle_kdf(ops.vault_kdf())
    # Recorded as they are handed over, as for plaintext: an export that happened is never missing.
    accounts = ops.export_accounts(labels, f"encrypted bundle to {target}")
    blob = bundle.seal(accounts, passphrase, kdf, ctx.clock())
    del passphrase, accounts
    try:
        write_private(target, blob)
    except OSError as exc:
        ops.record_failure("export", labels, f"could not write {target}")
        raise FileUnusable(f"cannot write {target}: {exc.strerror}", hint="check the path and permissions") from None
    ctx.out(f"exported {len(labels)} account{'s' if len(labels) != 1 else ''} to {target} "
            f"(encrypted, {kdf.describe()}); import it with `keyward import {target}`")
    return 0


# --- import of a bundle (called by `keyward import`) --------------------------------------


_ANSWERS = {"k": "keep-both", "keep": "keep-both", "keep-both": "keep-both", "both": "keep-both",
            "s": "skip", "skip": "skip", "r": "replace", "replace": "replace"}


def _ask_conflict(ctx: Context, incoming, existing: dict) -> str:
    """`existing` is vault.ops.account_ops' description of the clash (no credential values)."""
    question = (f"{incoming.label!r} exists ({existing['venue']}, {existing['where']}, created {existing['created_at'] or '?'}); "
                f"the bundle's is {incoming.venue}, {incoming.env or incoming.base_url} "
                f"(different {' and '.join(existing['differs'])}). [k]eep both, [s]kip, [r]eplace? ")
    for _ in range(3):
        choice = _ANSWERS.get(ctx.ask(question).strip().lower())
        if choice:
            return choice
    raise NotConfirmed("no valid answer", hint="nothing was imported")


# A bundle of 10,000 accounts is a few MiB; far past that is not a bundle keyward wrote.
MAX_BUNDLE_BYTES = 64 << 20


def import_bundle(ctx: Context) -> int:
    from vault.core.inputs import read_bytes
    from vault.ops import bundle

    a = ctx.args
    if getattr(a, "env", None) or getattr(a, "base_url", None):
        raise UsageError("a bundle carries each account's base URL", hint="drop --env/--base-url")
    path = Path(a.file).expanduser()
    blob = read_bytes(path, str(path), MAX_BUNDLE_BYTES)
    if a.bundle_passphrase_file:
        passphrase = read_passphrase_file(a.bundle_passphrase_file)
    elif ctx.interactive:
        passphrase = ctx.ask("Bundle passphrase: ", secret=True)
    else:
        raise NoTerminal("no terminal to ask for the bundle passphrase on", hint="pass --bundle-passphrase-file PATH")
    incoming = bundle.open_bundle(blob, passphrase, allow_kdf_cost=bool(getattr(a, "allow_kdf_cost", False)))
    del passphrase, blob
    if a.label:
        if len(incoming) != 1:
            raise UsageError(f"--label renames one account, and the bundle holds {len(incoming)}", hint="drop --label")
        check_label(a.label)
        incoming[0].label = a.label
    ops = ctx.ops()
    policy = getattr(a, "on_conflict", None) or "ask"
    decisions: dict[str, str] = {}
    clashing = ops.bundle_conflicts(incoming)
    if clashing and policy == "ask":
        if not ctx.interactive:
            raise NoTerminal(
                f"label{'s' if len(clashing) > 1 else ''} "
                f"{', '.join(x['label'] + ' (different ' + ' and '.join(x['differs']) + ')' for x in clashing)} "
                "already in the vault; "
                "no terminal to ask on",
                hint="pass --on-conflict keep-both|skip|replace; nothing was imported",
            )
        by_label = {acct.label: acct for acct in incoming}
        for clash in clashing:
            decisions[clash["label"]] = _ask_conflict(ctx, by_label[clash["label"]], clash)
    items = ops.import_accounts(incoming, policy, decisions)
    for item in items:
        ctx.out(item["text"])
    added = sum(1 for i in items if i["action"] in ("add", "keep-both", "replace"))
    ctx.out(f"imported {added} of {len(items)} account{'s' if len(items) != 1 else ''} from {path}")
    return 0


# --- pubkey --------------------------------------------------------------------------------


def cmd_pubkey(ctx: Context) -> int:
    a = ctx.args
    got = ctx.ops(venues=False).public_key(a.label)
    if a.format in ("both", "pem"):
        ctx.stdout.write(got["pem"])
    if a.format in ("both", "jwk"):
        ctx.out(json.dumps(got["jwk"], indent=2))
    return 0


# --- audit ---------------------------------------------------------------------------------


def cmd_audit(ctx: Context) -> int:
    from vault.core.text import printable

    a = ctx.args
    log = ctx.ops(venues=False).audit_log(a.label, a.limit, a.expect_head)
    if a.json:
        ctx.out_json({k: log[k] for k in ("intact", "broken_at", "entries_total", "head", "expect_head_found", "entries")})
    else:
        for e in log["entries"]:
            # One entry, one line: a newline in a detail (a path may hold one) is escaped
            # too, so it cannot print as a second, forged entry.
            ctx.out(f"{e['at']}  {e['action']:<9} {e['account'] or '-':<20} {e['outcome']:<10} {printable(e['detail'])}")
        if log["intact"]:
            ctx.out(f"audit trail intact: {log['entries_total']} entries; head {log['head']}")
    if not log["intact"]:
        broken, e = log["broken_at"], log["broken_entry"]
        raise CorruptVault(
            f"the audit trail is broken at entry {broken + 1} of {log['entries_total']} ({e['action']}, {e['at']}): "
            "an entry was edited, inserted or deleted",
            hint="compare with a backup of the vault (the .bak file or an older copy)",
        )
    if log["expect_head_found"] is False:
        raise CorruptVault("the audit trail no longer holds the entry with that digest: its history was rewritten",
                           hint="compare with a backup of the vault")
    return 0


# --- key age -------------------------------------------------------------------------------


def cmd_key_age(ctx: Context) -> int:
    a = ctx.args
    ops = ctx.ops(venues=False)
    if a.max_days is not None:
        ops.set_key_max_age(a.label, a.max_days)
    rows = ops.key_ages(a.label)
    if a.json:
        ctx.out_json(rows)
        return 0
    if not rows:
        ctx.out("no accounts yet")
        return 0
    ctx.out(f"{'LABEL':<20} {'VENUE':<15} {'AGE':>7} {'MAX':>5}  STATUS")
    for r in rows:
        status = (f"PAST DUE by {-r['due_in_days']:.0f}d: rotate it" if r["key_overdue"]
                  else f"due in {r['due_in_days']:.0f}d")
        ctx.out(f"{r['label']:<20} {r['venue']:<15} {r['key_age_days']:>6.0f}d {r['key_max_age_days']:>4}d  {status}")
    return 0
