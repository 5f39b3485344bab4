"""Vault commands: init, add, import, list, show, remove, passwd, rekey."""

from __future__ import annotations

import argparse
from pathlib import Path

from vault.core.errors import AccountExists, InputError, InvalidCredential, NotConfirmed
from vault.cli.context import Context


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init", help="create a new vault",
        description="Create a new vault, asking for its passphrase twice (no echo). The passphrase must be at "
                    "least 12 characters and hard to guess (zxcvbn's estimate: 10^14 guesses or more); "
                    "four or more random words work well. There is no recovery without it.",
    )
    p.add_argument("--kdf-memory-mib", type=int, default=64, metavar="MIB", help="Argon2id memory (default 64, floor 8)")
    p.add_argument("--kdf-iterations", type=int, default=3, metavar="N", help="Argon2id passes (default 3, floor 1)")
    p.add_argument("--kdf-parallelism", type=int, default=4, metavar="N", help="Argon2id lanes (default 4, floor 1)")
    p.add_argument("--allow-kdf-cost", action="store_true",
                   help="accept an Argon2id cost over the vault budget (2 GiB of memory, 16 GiB x passes)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("add", help="add an account (secrets are prompted without echo)")
    p.add_argument("venue")
    p.add_argument("label")
    add_location_options(p)
    p.add_argument("--from-json", metavar="FILE|-", help="credential fields as JSON (canonical names), - for stdin")
    p.add_argument("--private-key-file", metavar="PEM", help="PowerTrade: the EC private key PEM file")
    p.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    p.add_argument("--notes", default="")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("import", help="import a venue's one-time JSON (TradeReady, Kiiex) or a keyward bundle")
    p.add_argument("file", metavar="FILE|-", help="the JSON the venue gave you, a keyward export or bundle; - for stdin")
    p.add_argument("--label")
    add_location_options(p)
    p.add_argument("--bundle-passphrase-file", metavar="PATH", help="passphrase of an encrypted bundle")
    p.add_argument("--on-conflict", choices=("ask", "keep-both", "skip", "replace"), default="ask", help="bundle: when a label exists")
    p.add_argument("--allow-kdf-cost", action="store_true",
                   help="bundle: open it even if its Argon2id cost is over the bundle budget (1 GiB, 4 GiB-passes)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("list", help="list accounts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="show one account, secrets masked")
    p.add_argument("label")
    p.add_argument("--reveal", action="store_true", help="show secrets in full (recorded in the audit trail)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--copy", action="store_true", help="copy the secret fields (JSON) to the clipboard")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("remove", help="remove an account (asks you to type its label)")
    p.add_argument("label")
    p.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("passwd", help="change the passphrase (and draw a new data key)")
    p.add_argument("--new-passphrase-file", metavar="PATH", help="read the new passphrase from PATH's first line "
                   "instead of asking twice (the same policy applies)")
    p.add_argument("--upgrade-kdf", action="store_true", help="also move to the default Argon2id parameters")
    p.set_defaults(func=cmd_passwd)

    p = sub.add_parser("rekey", help="new data key and full re-encryption")
    p.set_defaults(func=cmd_rekey)


def add_location_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", metavar="NAME", help="named environment (prod, test, staging, ...)")
    p.add_argument("--base-url", metavar="URL", help="the venue's API root, e.g. http://127.0.0.1:PORT/... for the sandbox")


# --- init ------------------------------------------------------------------------------


def cmd_init(ctx: Context) -> int:
    from vault.core.errors import UnsafeKdfParameters, VaultExists
    from vault.core.fileformat import DEFAULT_KDF, VAULT_BUDGET, KdfParams
    from vault.core.service import VaultService
    from vault.core.storage import permission_warning

    a = ctx.args
    kdf = KdfParams(a.kdf_iterations, a.kdf_memory_mib * 1024, a.kdf_parallelism)
    try:
        kdf.check()
    except UnsafeKdfParameters as err:  # typed by the user, not read from a damaged file
        raise InputError(err.message, hint=err.hint) from None
    if not a.allow_kdf_cost:  # before the passphrase is typed twice, not after
        VAULT_BUDGET.check(kdf, override="choose a lower cost, or pass --allow-kdf-cost if you mean it; nothing was created")
    if kdf.weaker_than(DEFAULT_KDF):
        ctx.warn(f"warning: {kdf.describe()} is weaker than the default {DEFAULT_KDF.describe()}")
    path = ctx.vault_path
    if path.exists():
        raise VaultExists(f"a vault already exists at {path}", hint="use it, or pass another --vault path")
    warning = permission_warning(path)  # the directory it goes into, when that exists already
    if warning:
        ctx.warn(warning)
    passphrase = ctx.new_passphrase(ctx.passphrase_file, "Passphrase for the new vault")
    VaultService.create(path, passphrase, kdf, clock=ctx.clock, allow_kdf_cost=a.allow_kdf_cost)
    ctx.out(f"created {path} ({kdf.describe()})")
    return 0


# --- add / import ------------------------------------------------------------------------


def read_text(ctx: Context, source: str) -> str:
    """stdin ("-") or a credential file: bounded, strict UTF-8 (vault.core.inputs)."""
    from vault.core.inputs import read_file, read_stream

    if source == "-":
        return read_stream(ctx.stdin, "stdin")
    return read_file(source)


def prompt_missing(ctx: Context, venue: str, fields: dict[str, str]) -> dict[str, str]:
    """Ask for the fields a file did not give; secrets without echo."""
    from vault.venues import get_provider

    provider = get_provider(venue)
    out = dict(fields)
    for spec in provider.fields:
        if spec.name in out:
            continue
        if not spec.required and not ctx.interactive:
            continue
        if not ctx.interactive:
            raise InvalidCredential(
                f"{venue} needs {spec.name} and there is no terminal to ask on",
                hint="include it in the JSON file",
            )
        if spec.multiline:
            raise InvalidCredential(f"{spec.name} is a multi-line PEM", hint="pass it with --private-key-file")
        suffix = "" if spec.required else " (optional, Enter to skip)"
        value = ctx.ask(f"{spec.label}{suffix}: ", secret=spec.secret)
        if value.strip():
            out[spec.name] = value
    return out


def build_account(ctx: Context, venue: str, label: str, fields: dict[str, str], env: str | None, base_url: str | None):
    from vault.venues import resolve_base_url
    from vault.core.model import Account, check_label
    from vault.venues import get_provider

    provider = get_provider(venue)
    url, env_name = resolve_base_url(provider.venue, env, base_url)
    check_label(label)
    return Account(label=label, venue=provider.venue, base_url=url, env=env_name, fields=provider.normalize(fields))


def cmd_add(ctx: Context) -> int:
    from vault.core.model import check_label
    from vault.ops.formats import canonical_fields, parse_json
    from vault.venues import get_provider

    a = ctx.args
    provider = get_provider(a.venue)
    check_label(a.label)
    fields: dict[str, str] = {}
    if a.from_json:
        source = "stdin" if a.from_json == "-" else a.from_json
        fields = canonical_fields(parse_json(read_text(ctx, a.from_json), source), provider.venue)
    if a.private_key_file:
        if not any(f.name == "private_key" for f in provider.fields):
            raise InputError(f"{provider.venue} takes no private key", hint="drop --private-key-file")
        fields["private_key"] = read_text(ctx, a.private_key_file)
    ops = ctx.ops(venues=False)  # before prompting, so a wrong passphrase wastes no typing
    if a.label in ops.labels():
        raise AccountExists(f"an account labelled {a.label!r} already exists", hint="choose another label")
    fields = prompt_missing(ctx, provider.venue, fields)
    acct = build_account(ctx, provider.venue, a.label, fields, a.env, a.base_url)
    acct.tags, acct.notes = list(a.tag), a.notes
    ops.store_account(acct, action="add")
    ctx.out(f"added {acct.label} ({provider.title}, {acct.env or acct.base_url})")
    return 0


def _head(path: Path) -> bytes:
    """The magic bytes of a regular file (a bundle, a vault), without opening a FIFO for
    reading (that would hang) or reading more than the magic; b"" for anything else (the
    reader below then says what is wrong with it)."""
    import os
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return b""
    try:
        return os.read(fd, 8) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    finally:
        os.close(fd)


def cmd_import(ctx: Context) -> int:
    from vault.ops.formats import parse_json, recognise

    a = ctx.args
    if a.file != "-":
        head = _head(Path(a.file).expanduser())
        from vault.core.fileformat import MAGIC_BUNDLE, MAGIC_VAULT

        if head == MAGIC_BUNDLE:
            from vault.cli.lifecycle_cmds import import_bundle

            return import_bundle(ctx)
        if head == MAGIC_VAULT:
            raise InputError(
                f"{a.file} is a keyward vault, not something to import",
                hint="open it with --vault, or move accounts with `keyward export --encrypted` and import the bundle",
            )
    source = "stdin" if a.file == "-" else a.file
    venue, fields, extras = recognise(parse_json(read_text(ctx, a.file), source))
    label = a.label or extras.get("label")
    if not a.label:
        suggestion = str(label or venue)
        answer = ctx.ask(f"Label [{suggestion}]: ") if ctx.interactive else ""
        label = answer.strip() or suggestion
    base_url = a.base_url or (extras.get("base_url") if not a.env else None)
    env = a.env or (extras.get("env") if not base_url else None)
    ops = ctx.ops(venues=False)
    fields = prompt_missing(ctx, venue, fields)
    acct = build_account(ctx, venue, str(label), fields, env, base_url)
    ops.store_account(acct, action="add", detail="imported")
    ctx.out(f"imported {acct.label} ({venue})")
    return 0


# --- reading -----------------------------------------------------------------------------


def cmd_list(ctx: Context) -> int:
    items = ctx.ops(venues=False).list_rows()
    rows = [item["summary"] for item in items]
    if ctx.args.json:
        ctx.out_json(rows)
        return 0
    if not rows:
        ctx.out("no accounts yet: add one with `keyward add VENUE LABEL`")
        return 0
    ctx.out(f"{'LABEL':<20} {'VENUE':<15} {'ENV':<10} {'KEY':<18} {'AGE':>6}  {'TOKEN':<22} HEALTH")
    for item, row in zip(items, rows):
        age = f"{row['key_age_days']:.0f}d" + ("!" if row["key_overdue"] else "")
        token = (f"signed/request ({row['signature_window_s']}s)" if row.get("signed_per_request") else
                 (row["token"]["expires_at"] or "no expiry") if row["token"] else "-")
        health = "-" if row["health"] is None else ("ok" if row["health"]["ok"] else "FAILING")
        ctx.out(f"{row['label']:<20} {row['venue']:<15} {item['env']:<10} {item['key'][:18]:<18} {age:>6}  {token:<22} {health}")
    return 0


def cmd_show(ctx: Context) -> int:
    a = ctx.args
    if a.copy:
        from vault.ops.clipboard import copy_secret, require_backend

        # The clipboard first: a copy that cannot happen must not be audited as done.
        require_backend()
        fields = ctx.ops(venues=False).fields_for_copy(a.label)  # recorded by whoever holds the vault
        copy_secret(fields["text"], ctx, clear_after=fields["clear_after"])
        del fields
    info = ctx.ops(venues=False).account_detail(a.label, reveal=a.reveal)
    if a.json:
        ctx.out_json(info)
        return 0
    from vault.ops.views import env_label

    ctx.out(f"{info['label']}  ({info['venue']}, {env_label(info['env'], info['base_url'])})  {info['base_url']}")
    for name, value in info["fields"].items():
        if "\n" in value:
            ctx.out(f"  {name}:")
            for line in value.rstrip("\n").splitlines():
                ctx.out(f"    {line}")
        else:
            ctx.out(f"  {name}: {value}")
    ctx.out(f"  created: {info['created_at']}   key age: {info['key_age_days']}d" + (" (past due: rotate)" if info["key_overdue"] else ""))
    if info.get("signed_per_request"):
        ctx.out(f"  token: signed per request ({info['signature_window_s']} s window), no session to expire")
    elif info["token"]:
        ctx.out(f"  token: {info['token']['kind']} expires {info['token']['expires_at']}")
    if info["rate_limit"]:
        rl = info["rate_limit"]
        ctx.out(f"  rate limit: {rl['remaining']}/{rl['limit']} (resets {rl['reset_at']})")
    if info["health"]:
        h = info["health"]
        ctx.out(f"  health: {'ok' if h['ok'] else 'FAILING'} at {h['checked_at']} {h['message']}")
    if info["generations"]:
        ctx.out(f"  retired generations: {info['generations']}")
    return 0


# --- changing ----------------------------------------------------------------------------


def cmd_remove(ctx: Context) -> int:
    a = ctx.args
    ops = ctx.ops(venues=False)
    ops.summary(a.label)  # it exists, before the question
    if not a.yes:
        typed = ctx.ask(f"Type the label ({a.label}) to remove it for good: ")
        if typed.strip() != a.label:
            raise NotConfirmed("the label did not match", hint="nothing was removed; type the label exactly, or pass --yes")
    ops.remove_account(a.label)
    ctx.out(f"removed {a.label}")
    return 0


def cmd_passwd(ctx: Context) -> int:
    from vault.core.fileformat import DEFAULT_KDF

    a = ctx.args
    service = ctx.unlock()
    new = ctx.new_passphrase(a.new_passphrase_file)
    report = service.change_passphrase(new, DEFAULT_KDF if a.upgrade_kdf else None)
    del new
    ctx.out(f"passphrase changed ({service.kdf.describe()}); new data key, every byte re-encrypted")
    _say_what_was_resealed(ctx, report)
    _stop_agent_holding_old_key(ctx)
    return 0


def cmd_rekey(ctx: Context) -> int:
    from vault.core.passphrase_file import read_passphrase_file

    service = ctx.unlock()
    # The passphrase is re-read rather than kept around since the unlock.
    passphrase = read_passphrase_file(ctx.passphrase_file) if ctx.passphrase_file else ctx.passphrase("Passphrase again: ")
    from vault.core.service import VaultService

    VaultService.unlock(ctx.vault_path, passphrase)  # proves it before re-encrypting
    report = service.rekey(passphrase)
    del passphrase
    ctx.out("new data key; every byte re-encrypted")
    _say_what_was_resealed(ctx, report)
    _stop_agent_holding_old_key(ctx)
    return 0


def _say_what_was_resealed(ctx: Context, report) -> None:
    """After passwd/rekey: which leftovers now open only with the new passphrase and key,
    and which keyward could not re-seal (they open with an older key, not the one just
    replaced): the user decides about those."""
    if report.resealed:
        ctx.out(f"re-sealed under the new passphrase and key: {', '.join(p.name for p in report.resealed)}")
    else:
        ctx.out("no .bak or rescue file needed re-sealing")
    for path in report.left:
        ctx.warn(f"warning: {path} is sealed under an older key or passphrase, not the one just replaced; "
                 f"keyward left it alone: restore it (`keyward restore {path}`) or delete it")


def _stop_agent_holding_old_key(ctx: Context) -> None:
    from vault.agent.client import connect

    agent = connect(ctx.vault_path)
    if agent is not None:  # it holds the old key, which no longer opens the vault
        agent.lock()
        ctx.warn("the unlock agent held the old key and has been stopped: `keyward unlock` starts a new one")
