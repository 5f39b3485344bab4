"""Plaintext exports of one account, and reading them back.

Three shapes, all of which `keyward import` (and `keyward capture`) read back:

- ``env``: ``KEYWARD_*='value'`` lines, single-quoted for POSIX shells (``set -a; . FILE``)
  and dotenv loaders alike; a PEM stays one multi-line quoted value;
- ``json``: keyward's own object ``{"keyward_export": 1, "label", "venue", "env",
  "base_url", "fields": {...}}``, the one that keeps everything an import needs;
- ``native``: the venue's own shape: TradeReady's registration response, Kiiex's
  "Export to JSON", and for PowerTrade and Hyper Solutions (whose screens show loose
  values) the issued fields under the names their APIs use.  It carries no base URL:
  re-import with ``--env`` or ``--base-url``.

These are plaintext secrets: the CLI asks before writing them, writes files 0600 and does
not print them to a terminal unless told to.  Encrypted moves use vault.ops.bundle instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

from vault.core.errors import InputError
from vault.core.model import Account, iso
from vault.venues import get_provider

FORMATS = ("env", "json", "native")
EXPORT_VERSION = 1
ENV_PREFIX = "KEYWARD_"
_META = {"VENUE": "venue", "LABEL": "label", "ENV": "env", "BASE_URL": "base_url"}
_KIIEX_NATIVE = {"api_key": "APIKey", "api_secret": "APISecret", "nonce": "Nonce", "user_id": "UserId", "username": "UserName"}


def ordered_fields(acct: Account) -> dict[str, str]:
    """The account's fields in the venue's declared order (stable, reviewable files)."""
    provider = get_provider(acct.venue)
    return {f.name: acct.fields[f.name] for f in provider.fields if f.name in acct.fields}


def render(acct: Account, fmt: str, now: float) -> str:
    if fmt == "env":
        return render_env(acct, now)
    if fmt == "json":
        return json.dumps(as_json(acct, now), indent=2, ensure_ascii=False) + "\n"
    if fmt == "native":
        return json.dumps(native(acct), indent=2, ensure_ascii=False) + "\n"
    raise InputError(f"unknown export format {fmt!r}", hint=f"choose one of: {', '.join(FORMATS)}")


# --- json ----------------------------------------------------------------------------------


def as_json(acct: Account, now: float) -> dict[str, Any]:
    return {
        "keyward_export": EXPORT_VERSION,
        "label": acct.label,
        "venue": acct.venue,
        "env": acct.env,
        "base_url": acct.base_url,
        "exported_at": iso(now),
        "fields": ordered_fields(acct),
    }


# --- native --------------------------------------------------------------------------------


def native(acct: Account) -> dict[str, Any]:
    fields = ordered_fields(acct)
    if acct.venue == "kiiex":
        return {_KIIEX_NATIVE[k]: v for k, v in fields.items()}
    # TradeReady's registration response, PowerTrade's {api_key, private_key} and Hyper
    # Solutions' {api_key, jwt_key, app_key, app_secret} use the canonical names already.
    return fields


# --- env -----------------------------------------------------------------------------------


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def render_env(acct: Account, now: float) -> str:
    lines = [
        f"# keyward export of {acct.label} at {iso(now)}: PLAINTEXT SECRETS, delete this file when done.",
        f"{ENV_PREFIX}VENUE={_quote(acct.venue)}",
        f"{ENV_PREFIX}LABEL={_quote(acct.label)}",
    ]
    if acct.env:
        lines.append(f"{ENV_PREFIX}ENV={_quote(acct.env)}")
    lines.append(f"{ENV_PREFIX}BASE_URL={_quote(acct.base_url)}")
    for name, value in ordered_fields(acct).items():
        lines.append(f"{env_name(name)}={_quote(value)}")
    return "\n".join(lines) + "\n"


_NAME = re.compile(r"(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=")


def parse_env_assignments(text: str) -> dict[str, str]:
    """NAME=value assignments in the subset of POSIX shell quoting that dotenv files use:
    'single' (literal, may span lines), "double" (with backslash escapes), bare words and
    backslash escapes, concatenated; # comments; an optional `export`."""
    out: dict[str, str] = {}
    i, n = 0, len(text)
    line_no = 1
    while i < n:
        # skip blank space and comments between assignments
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "\n":
            line_no += 1
            i += 1
            continue
        if text[i] == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        match = _NAME.match(text, i)
        if not match:
            raise InputError(f"line {line_no} of the env file is not NAME=value", hint="fix that line and try again")
        name, i = match.group(1), match.end()
        value: list[str] = []
        while i < n and text[i] not in " \t\n":
            ch = text[i]
            if ch == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise InputError(f"{name} has an unterminated ' quote", hint="close the quote and try again")
                chunk = text[i + 1 : end]
                line_no += chunk.count("\n")
                value.append(chunk)
                i = end + 1
            elif ch == '"':
                i += 1
                while True:
                    if i >= n:
                        raise InputError(f'{name} has an unterminated " quote', hint="close the quote and try again")
                    c = text[i]
                    if c == '"':
                        i += 1
                        break
                    if c == "\\" and i + 1 < n and text[i + 1] in '"\\$`\n':
                        if text[i + 1] != "\n":
                            value.append(text[i + 1])
                        i += 2
                        continue
                    if c == "\n":
                        line_no += 1
                    value.append(c)
                    i += 1
            elif ch == "\\" and i + 1 < n:
                if text[i + 1] != "\n":
                    value.append(text[i + 1])
                i += 2
            else:
                value.append(ch)
                i += 1
        out[name] = "".join(value)
    return out


def parse_env(text: str) -> dict[str, Any]:
    """A `--format env` export as the keyward export object (see `as_json`)."""
    assignments = parse_env_assignments(text)
    meta: dict[str, Any] = {"keyward_export": EXPORT_VERSION}
    fields: dict[str, str] = {}
    for name, value in assignments.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :]
        if rest in _META:
            meta[_META[rest]] = value
        else:
            fields[rest.lower()] = value
    if "venue" not in meta:
        raise InputError("the env file has no KEYWARD_VENUE line", hint="export it again with `keyward export --format env`")
    meta.setdefault("env", None)
    meta.setdefault("base_url", None)
    meta.setdefault("label", None)
    meta["fields"] = fields
    return meta


def looks_like_env(text: str) -> bool:
    return re.search(r"^[ \t]*(export[ \t]+)?KEYWARD_VENUE=", text, re.M) is not None
