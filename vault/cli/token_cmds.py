"""Token commands: token, headers, login, exec, check, doctor.

They go through `ctx.ops()` (vault.ops.venue_ops.VenueOps, or the unlock agent's client with the
same methods) and format only what comes back: Credentials, Health and plain dicts.  The
only secret any of them prints is the token or headers asked for; messages name labels,
statuses and venue codes, never a stored value.
"""

from __future__ import annotations

import argparse
import os
import shutil
from typing import Any

from vault.core.errors import AccountNotFound, InputError, KeywardError, UsageError
from vault.core.model import Credentials, Health, iso
from vault.cli import render
from vault.cli.context import Context
from vault.cli.parser import RawDescriptionHelpFormatter

EXEC_EPILOG = """\
CMD gets these variables (and nothing is left in keyward's memory: it is replaced by CMD):
  KEYWARD_ACCOUNT, KEYWARD_VENUE, KEYWARD_BASE_URL
  KEYWARD_TOKEN             the token (empty for a key-only account)
  KEYWARD_TOKEN_EXPIRES_AT  ISO 8601 UTC (empty when there is no token)
  KEYWARD_HEADERS           the request headers as a JSON object
  KEYWARD_API_KEY           the key the requests carry (all venues)
  powertrade:     (KEYWARD_TOKEN is the X-Power-Trade JWT; one request's worth of life)
  tradeready:     KEYWARD_BEARER, KEYWARD_AGENT_ID (when the account has one)
  hypersolutions: KEYWARD_SIGNATURE, or KEYWARD_APP_KEY + KEYWARD_APP_SIGNATURE
  kiiex:          KEYWARD_APTOKEN, KEYWARD_USER_ID
Exit status: CMD's, 127 when CMD is not found, 126 when it cannot be run."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="print the account's live token (minting or logging in as needed)")
    p.add_argument("label")
    p.add_argument("--json", action="store_true", help="account, venue, token, issued_at, expires_at, headers")
    p.add_argument("--force", action="store_true", help="log in again even if the cached session is still good")
    p.add_argument("--copy", action="store_true", help="copy the token to the clipboard instead of printing it")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("headers", help="print the headers a request of this account needs now")
    p.add_argument("label")
    p.add_argument(
        "--path", metavar="PATH",
        help="the headers a request to PATH carries (e.g. /api/v1/agents); without it, the common case",
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument(
        "--curl", action="store_true",
        help="as curl -H arguments (they end up in curl's argv, which other users can see: prefer --curl-config)",
    )
    fmt.add_argument(
        "--curl-config", action="store_true",
        help="as a curl config for `curl -K -`: `keyward headers LABEL --curl-config | curl -K - URL` keeps them out of argv",
    )
    p.add_argument("--copy", action="store_true", help="copy them to the clipboard instead of printing them")
    p.set_defaults(func=cmd_headers)

    p = sub.add_parser("login", help="log in now (TradeReady, Kiiex) and cache the session")
    p.add_argument("label")
    p.set_defaults(func=cmd_login)

    p = sub.add_parser(
        "exec",
        help="run a command with the account's token and headers in its environment",
        epilog=EXEC_EPILOG,
        formatter_class=RawDescriptionHelpFormatter,
        usage="keyward exec LABEL -- CMD [ARGS...]",
    )
    p.add_argument("label")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the command to run and its arguments")
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("check", help="health-check accounts against their venues (exit 0 only if all are healthy)")
    p.add_argument("labels", nargs="*", metavar="LABEL")
    p.add_argument("--all", action="store_true", help="every account (the default when no LABEL is given)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("doctor", help="explain why an account fails: environment, clock, key format, session, lock-out")
    p.add_argument("label")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "setting",
        help="show or change an account's settings (token lifetime, health-check path, ...)",
        usage="keyward setting LABEL [NAME [VALUE] | --unset NAME] [--json]",
    )
    p.add_argument("label")
    p.add_argument("name", nargs="?", help="a setting (without NAME: list them all, with their defaults)")
    p.add_argument("value", nargs="?", help="its new value")
    p.add_argument("--unset", nargs="?", const=True, default=False, metavar="NAME",
                   help="put NAME back to the venue's default (`--unset NAME`, or `NAME --unset`)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_setting)


# --- token / headers / login ---------------------------------------------------------


def credentials_json(creds: Credentials) -> dict[str, Any]:
    tok = creds.token
    return {
        "account": creds.account,
        "venue": creds.venue,
        "token": tok.value if tok else None,
        "issued_at": iso(tok.issued_at) if tok else None,
        "expires_at": iso(tok.expires_at) if tok else None,
        "headers": creds.headers,
    }


def cmd_token(ctx: Context) -> int:
    a = ctx.args
    if a.copy:
        from vault.ops.clipboard import require_backend

        require_backend()
    creds = ctx.ops().token(a.label, force=a.force)
    if a.copy and creds.token is not None:
        from vault.ops.clipboard import copy_secret

        copy_secret(creds.token.value, ctx, label=a.label, what="token")
        return 0
    if a.json and not a.copy:
        ctx.out_json(credentials_json(creds))
        return 0
    if creds.token is None:
        raise render.no_token(a.label)
    ctx.out(creds.token.value)
    return 0


def cmd_headers(ctx: Context) -> int:
    a = ctx.args
    if a.copy:
        from vault.ops.clipboard import require_backend

        require_backend()
    ops = ctx.ops()
    creds = ops.headers(a.label) if a.path is None else ops.headers(a.label, a.path)
    if a.curl_config:
        text = curl_config(a.label, creds.headers)
    else:
        text = render.headers_text(creds.headers, "json" if a.json else "curl" if a.curl else "lines")
    if a.copy:
        from vault.ops.clipboard import copy_secret

        copy_secret(text, ctx, label=a.label, what="headers")
        return 0
    ctx.out(text)
    return 0


def curl_config(label: str, headers: dict[str, str]) -> str:
    """The headers as a curl config file (`curl -K -` reads it from stdin), so that no
    secret appears in curl's argv, where any local user's `ps` can read it."""
    lines = [f"# keyward headers for {label}: pipe into `curl -K - URL`"]
    for name, value in headers.items():
        text = f"{name}: {value}"
        if any(ord(c) < 32 or ord(c) == 127 for c in text):  # a header cannot hold them; never emit a broken line
            raise InputError(f"a header of {label!r} holds a control character", hint="re-add the account's credentials")
        lines.append('header = "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "\n".join(lines)


def cmd_login(ctx: Context) -> int:
    a = ctx.args
    creds = ctx.ops().login(a.label)
    tok = creds.token
    if tok is None or tok.expires_at is None:
        ctx.out(f"logged in {a.label} ({creds.venue})")
    else:
        minutes = (tok.expires_at - ctx.clock()) / 60
        ctx.out(f"logged in {a.label} ({creds.venue}): {tok.kind} valid until {iso(tok.expires_at)} ({minutes:.0f} min)")
    return 0


# --- exec ----------------------------------------------------------------------------


def cmd_exec(ctx: Context) -> int:
    a = ctx.args
    command = list(a.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("no command to run", hint=f"keyward exec {a.label} -- CMD [ARGS...]")
    # CMD gets what docs/python-api.md lists and nothing of keyward's own: not where the
    # passphrase is (KEYWARD_PASSPHRASE_FILE would let it open the whole vault), not the
    # vault's path, nothing else keyward reads from its environment.
    env = {name: value for name, value in os.environ.items() if not name.startswith("KEYWARD_")}
    env.update(ctx.ops().exec_env(a.label))
    path = shutil.which(command[0], path=env.get("PATH"))
    if path is None:
        ctx.warn(f"keyward: {command[0]}: command not found")
        return 127
    ctx.stdout.flush()
    ctx.stderr.flush()
    try:
        # Replace this process: CMD's exit status and signals become ours, and the
        # unlocked vault does not stay in memory while CMD runs.
        os.execve(path, command, env)
    except OSError as exc:
        ctx.warn(f"keyward: cannot run {command[0]}: {exc.strerror}")
        return 126
    return 0  # pragma: no cover - execve does not return


# --- check / doctor ------------------------------------------------------------------


def check_row(label: str, health: Health, info: dict[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "label": label,
        "ok": health.ok,
        "status": health.status,
        "checked_at": iso(health.checked_at),
        "latency_ms": health.latency_ms,
        "skew_s": health.skew_s,
        "message": health.message,
    }
    if info is not None:
        row |= {
            "venue": info.get("venue"),
            "rate_limit": info.get("rate_limit"),
            "token": info.get("token"),
            "signed_per_request": info.get("signed_per_request"),
            "signature_window_s": info.get("signature_window_s"),
            "key_age_days": info.get("key_age_days"),
            "key_max_age_days": info.get("key_max_age_days"),
            "key_overdue": info.get("key_overdue"),
        }
    return row


def _line(row: dict[str, Any]) -> str:
    parts = [f"{row['label']:<20}", "ok     " if row["ok"] else "FAILING"]
    if row["latency_ms"] is not None:
        parts.append(f"{row['latency_ms']:.0f} ms")
    rl = row.get("rate_limit")
    if rl and rl.get("remaining") is not None:
        parts.append(f"rate {rl['remaining']}/{rl['limit'] if rl.get('limit') is not None else '?'}")
    if row["skew_s"] is not None:
        parts.append(f"skew {row['skew_s']:+.1f} s")
    tok = row.get("token")
    if row.get("signed_per_request"):  # nothing to expire: each request is signed afresh
        parts.append(f"signed per request ({row.get('signature_window_s')} s window)")
    elif tok and tok.get("expires_at"):
        parts.append(f"{tok['kind']} until {tok['expires_at']}")
    if row.get("key_age_days") is not None:
        parts.append(f"key {row['key_age_days']:.0f}d" + (" (rotate!)" if row.get("key_overdue") else ""))
    return "  ".join(parts)


def cmd_check(ctx: Context) -> int:
    a = ctx.args
    ops = ctx.ops()
    labels = list(a.labels)
    if a.all or not labels:
        if labels:
            raise UsageError("give LABELs or --all, not both", hint="drop one of them")
        labels = _all_labels(ctx, ops)
    else:  # a mistyped label is an error of its own (as for show, token, exec), not a FAILING row
        known = set(_all_labels(ctx, ops))
        unknown = [label for label in dict.fromkeys(labels) if label not in known]
        if unknown:
            raise AccountNotFound(
                f"no account labelled {', '.join(repr(x) for x in unknown)}", hint="see `keyward list`; nothing was checked"
            )
    results = ops.check_many(labels)
    summary = getattr(ops, "summary", None)  # rate limit, token, key age (see _all_labels)
    rows = []
    for label, health in results:
        try:
            info = summary(label) if callable(summary) else None
        except KeywardError:  # an unknown label: its Health already says so
            info = None
        rows.append(check_row(label, health, info))
    if a.json:
        ctx.out_json(rows)
    elif not rows:
        ctx.out("no accounts to check: add one with `keyward add VENUE LABEL`")
    else:
        for row in rows:
            ctx.out(_line(row))
            detail = row["message"]
            if not detail or detail == "ok":
                continue
            if row["ok"]:  # "ok; note; note": one note a line
                for part in detail.removeprefix("ok; ").split("; "):
                    ctx.out(f"    {part}")
            else:  # one error: one line, what happened and what to do
                ctx.out(f"    {detail}")
    return 0 if all(row["ok"] for row in rows) else 1


def _all_labels(ctx: Context, ops: Any) -> list[str]:
    # VenueOps lists labels itself; an ops object without `labels` (an older unlock agent)
    # means reading them from the vault here.
    lister = getattr(ops, "labels", None)
    if callable(lister):
        return list(lister())
    return [acct.label for acct in ctx.unlock().accounts]


def cmd_doctor(ctx: Context) -> int:
    lines = ctx.ops().doctor(ctx.args.label)
    for line in lines:
        ctx.out(line)
    return 1 if any(line.startswith("problem:") for line in lines) else 0


# --- setting -------------------------------------------------------------------------


def _setting_request(a: argparse.Namespace) -> tuple[str | None, bool]:
    """(NAME, unset?) from either form: `--unset NAME` (as --help shows) or `NAME --unset`."""
    name, unset = a.name, a.unset
    if isinstance(unset, str):  # --unset NAME
        if name is not None and name != unset:
            raise UsageError(f"--unset names {unset!r}, and {name!r} is given too", hint="give one NAME")
        if a.value is not None:
            raise UsageError("--unset takes no VALUE", hint=f"keyward setting {a.label} --unset {unset}")
        return unset, True
    if unset and name is None:
        raise UsageError("--unset needs a NAME", hint=f"keyward setting {a.label} --unset NAME")
    if name is not None and unset and a.value is not None:
        raise UsageError("--unset takes no VALUE", hint=f"keyward setting {a.label} --unset {name}")
    if name is not None and not unset and a.value is None:
        raise UsageError(
            "give NAME and a VALUE, or --unset NAME",
            hint=f"`keyward setting {a.label}` lists the settings and their defaults",
        )
    return name, bool(unset)


def cmd_setting(ctx: Context) -> int:
    a = ctx.args
    # Through the agent when one runs; a --tokens-only agent refuses the change and the
    # command falls back to the passphrase (a longer token lifetime widens exposure).
    ops = ctx.ops()
    name, unset = _setting_request(a)
    if name is not None:
        for warning in ops.set_setting(a.label, name, None if unset else a.value):
            ctx.warn(f"keyward: {warning}")
    rows = [row for row in ops.setting_rows(a.label) if name is None or row["name"] == name]
    if a.json:
        ctx.out_json(rows)
        return 0
    for row in rows:
        shown = f"{row['value']}" if row["value"] is not None else f"{row['default']} (default)"
        ctx.out(f"{row['name']:<18} {shown:<28} {row['help']}")
    return 0
