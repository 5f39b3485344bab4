"""Recognising what a venue's one-time screen shows, when it is pasted or saved to a file.

`parse(text, venue)` takes whatever the user pasted for one venue and returns the
canonical credential fields, validated by the venue's provider, plus a list of the paste
accidents it repaired, so the CLI can say what it changed.  It understands:

- JSON: TradeReady's registration response, Kiiex's "Export to JSON", keyward's own
  `export --format json|native`, or an object with the venue's canonical field names;
- keyward's `export --format env` file (KEYWARD_* lines);
- text, as copied off a web page: PowerTrade's API key followed by the private key PEM,
  Hyper Solutions' API key and JWT key on two lines, with or without "API key:"-style
  labels (a label may also stand alone on the line before its value).

Repaired (and reported): surrounding whitespace and trailing newlines, wrapping quotes
and trailing commas, invisible characters (BOM, zero-width spaces, no-break spaces),
typographic quotes in JSON, a PEM whose BEGIN/END lines were lost or whose lines were
re-wrapped, literal "\\n" escapes, a SEC1 EC key (converted to PKCS#8).
Refused (with a what-to-do line): a public key where the private key belongs, a key on
another curve, a value masked by keyward ("ak_l…"), TradeReady's key and secret swapped,
a signed JWT where Hyper's JWT *signing key* belongs, another venue's credentials.

No message built here ever contains a value: only field names, venue names and counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from vault.core.errors import EmptyInput, InputError, InvalidCredential, MalformedInput
from vault.venues import get_provider

# Field aliases per venue, as _norm()ed label text -> canonical field name.  The canonical
# names themselves are added below.
_ALIASES: dict[str, dict[str, str]] = {
    "powertrade": {
        "key": "api_key", "apikeyid": "api_key", "keyid": "api_key", "apikeyuuid": "api_key",
        "privatekeypem": "private_key", "pem": "private_key", "secretkey": "private_key", "ecprivatekey": "private_key",
    },
    "hypersolutions": {
        "key": "api_key", "xapikey": "api_key",
        "jwtsecret": "jwt_key", "signingkey": "jwt_key", "jwtsigningkey": "jwt_key", "signaturekey": "jwt_key",
        "xappkey": "app_key", "organisationappkey": "app_key", "organizationappkey": "app_key",
        "organisationappsecret": "app_secret", "organizationappsecret": "app_secret",
    },
    "kiiex": {"secret": "api_secret", "uid": "user_id", "user": "username"},
    "tradeready": {"xapikey": "api_key", "secret": "api_secret", "agentkey": "agent_api_key"},
}
# Informational keys that one-time screens show next to the credentials: dropped silently.
_IGNORED: dict[str, set[str]] = {
    "tradeready": {"displayname", "startingbalance", "message", "email", "agentdisplayname", "createdat"},
    "kiiex": {"accountid", "omsid"},
    "powertrade": set(),
    "hypersolutions": {"plan", "product", "expiresat"},
}
_KEYWARD_META = {"keywardexport", "label", "venue", "env", "baseurl", "exportedat", "fields"}
# Unlabelled values are taken in this order (what the venue's screen shows, top to bottom).
_POSITIONAL: dict[str, tuple[str, ...]] = {
    "powertrade": ("api_key", "private_key"),
    "hypersolutions": ("api_key", "jwt_key", "app_key", "app_secret"),
    "kiiex": ("api_key", "api_secret", "nonce", "user_id", "username"),
    "tradeready": ("api_key", "api_secret"),
}
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"), None)
_TYPOGRAPHIC_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"'})
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.S)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]+-----")
_LABELLED = re.compile(r"""^\s*["']?([A-Za-z][A-Za-z0-9 _\-.()]{0,40}?)["']?\s*(?::|=|\t)[ \t]*(.*)$""")
_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_MASK_MARKS = ("\u2026", "\u2022")  # keyward's mask: "ak_l…" / "••••…"


def _norm(key: str) -> str:
    return "".join(c for c in key.lower() if c.isalnum())


def aliases(venue: str) -> dict[str, str]:
    provider = get_provider(venue)
    table = {_norm(f.name): f.name for f in provider.fields}
    table.update(_ALIASES.get(provider.venue, {}))
    return table


@dataclass
class Captured:
    """Validated, canonical credential fields and what was done to get them."""

    venue: str
    fields: dict[str, str]
    repairs: list[str] = field(default_factory=list)
    source_format: str = ""
    label: str | None = None  # a label the material suggests (Kiiex UserName, keyward export)
    base_url: str | None = None  # from a keyward export
    env: str | None = None

    def __repr__(self) -> str:  # fields are secret
        return f"Captured(venue={self.venue!r}, source_format={self.source_format!r}, repairs={self.repairs!r})"


# --- the entry point ---------------------------------------------------------------------


def parse(text: str, venue: str, source: str = "the paste") -> Captured:
    """Recognise, repair and validate pasted credentials for `venue`.  `source` names
    where the text came from in messages: "the paste", "stdin", a file's path."""
    provider = get_provider(venue)
    venue = provider.venue
    repairs: list[str] = []
    if not isinstance(text, str):
        raise InputError("expected text", hint="paste what the venue showed")
    cleaned = text.translate(_INVISIBLE).replace("\u00a0", " ").replace("\r\n", "\n").replace("\r", "\n")
    if cleaned != text.replace("\r\n", "\n").replace("\r", "\n"):
        repairs.append("removed invisible characters (byte-order mark, zero-width or no-break spaces)")
    stripped = cleaned.strip()
    if not stripped:
        raise EmptyInput("nothing to capture: the input is empty", hint="paste what the venue showed, or pass --file")

    if stripped.startswith("{") or stripped.startswith("\u201c"):
        captured = _from_json(stripped, venue, repairs, source)
    elif re.search(r"^\s*(export\s+)?KEYWARD_VENUE=", stripped, re.M):
        from vault.ops.export import parse_env

        raw = parse_env(stripped)
        captured = _from_object(raw, venue, repairs, "keyward env export")
    else:
        # Unstripped: trailing whitespace on the last value is a paste accident to report.
        captured = Captured(venue, _from_text(cleaned, venue, repairs), repairs, "text")
    captured.fields = _validate(captured.fields, venue, repairs)
    captured.repairs = _dedupe(repairs)
    return captured


_PEM_END = re.compile(r"-----END [A-Z0-9 ]+-----")


def unfinished(text: str) -> str | None:
    """What a paste read so far has left open (a PEM block, a JSON object), or None.

    A terminal paste ends at an empty line, but one-time screens copied off a web page
    hold empty lines of their own (between "API key" and "Private key", before a PEM):
    the reader keeps going while a structure is open, however the paste was timed."""
    if len(_PEM_BEGIN.findall(text)) > len(_PEM_END.findall(text)):
        return "the PEM block has no END line yet"
    stripped = text.translate(_TYPOGRAPHIC_QUOTES).lstrip("\ufeff \t\r\n")
    if stripped.startswith("{"):
        depth = sum((ch == "{") - (ch == "}") for ch, outside in _json_chars(stripped) if outside)
        if depth > 0:
            return "the JSON object is not closed yet"
    return None


def _dedupe(items: list[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


# --- JSON ----------------------------------------------------------------------------------


def _json_name(source: str) -> str:
    return {"the paste": "the pasted JSON", "stdin": "the JSON on stdin"}.get(source, f"the JSON in {source}")


def _from_json(text: str, venue: str, repairs: list[str], source: str = "the paste") -> Captured:
    """The object, after the repairs a copy off a web page or out of code needs: typographic
    quotes, and trailing commas (`{...,}` inside, `{...},` after); each repair is tried
    only when the text as given is not valid JSON, and reported."""
    from vault.ops.formats import parse_json

    name = _json_name(source)
    try:
        obj = parse_json(text, name)
    except InputError as err:
        first_error = err
        repaired = text
        if repaired.translate(_TYPOGRAPHIC_QUOTES) != repaired:
            repaired = repaired.translate(_TYPOGRAPHIC_QUOTES)
            repairs.append("replaced typographic quotes (\u201c \u201d) in the JSON with plain ones")
        without_commas = _drop_trailing_commas(repaired)
        if without_commas != repaired:
            repaired = without_commas
            repairs.append("removed a trailing comma from the JSON")
        if repaired == text:
            raise first_error from None
        obj = parse_json(repaired, name)
    if not isinstance(obj, dict):
        raise MalformedInput(f"{name} is not an object", hint="give the whole {...} the venue showed")
    return _from_object(obj, venue, repairs, "JSON")


def _json_chars(text: str):
    """Each character of JSON-ish text, and whether it stands outside a string (an
    opening quote counts as outside, a closing one as inside; escapes are honoured)."""
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            yield ch, False
        else:
            in_string = ch == '"'
            yield ch, True


def _drop_trailing_commas(text: str) -> str:
    """`text` without commas that JSON forbids: before a closing } or ], and after the
    last closing brace.  Commas inside strings are left alone."""
    out: list[str] = []
    pending: int | None = None  # index in `out` of a comma not yet known to be legal
    for ch, outside in _json_chars(text):
        if outside:
            if ch in "}]" and pending is not None:
                out[pending] = ""
                pending = None
            elif ch == ",":
                pending = len(out)
            elif not ch.isspace():
                pending = None
        out.append(ch)
    if pending is not None and "".join(out[:pending]).rstrip().endswith("}"):
        out[pending] = ""
    return "".join(out)


def _from_object(obj: dict[str, Any], venue: str, repairs: list[str], kind: str) -> Captured:
    from vault.ops.formats import recognise

    try:
        found, fields, extras = recognise(obj)
    except InputError:
        found, fields, extras = None, None, {}
    if found is not None:
        found_venue = get_provider(found).venue
        if found_venue != venue:
            raise InvalidCredential(
                f"these are {get_provider(found).title} credentials, not {get_provider(venue).title}",
                hint=f"use `keyward capture {found_venue} LABEL`",
            )
        names = {
            "kiiex": "Kiiex Export to JSON",
            "tradeready": "TradeReady registration JSON",
        }
        fmt = "keyward export" if isinstance(obj.get("fields"), dict) else names.get(found_venue, f"{found_venue} JSON")
        label = extras.get("label")
        return Captured(
            venue,
            dict(fields),
            repairs,
            fmt if kind == "JSON" else kind,
            label=str(label) if label else None,
            base_url=extras.get("base_url"),
            env=extras.get("env"),
        )
    return Captured(venue, _map_names(obj, venue), repairs, f"{kind} with field names")


def _map_names(obj: dict[str, Any], venue: str) -> dict[str, str]:
    table = aliases(venue)
    ignored = _IGNORED.get(venue, set())
    out: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in obj.items():
        norm = _norm(str(key))
        if norm in table:
            name = table[norm]
            if name in out:
                raise InvalidCredential(f"{name} is given twice", hint="keep one of them")
            if value is None:
                continue
            if isinstance(value, (dict, list, bool)) or not isinstance(value, (str, int)):
                raise InvalidCredential(f"{name} must be a string", hint="check the JSON you pasted")
            out[name] = str(value)
        elif norm not in ignored:
            unknown.append(str(key)[:40])
    if unknown:
        known = ", ".join(f.name for f in get_provider(venue).fields)
        raise InvalidCredential(
            f"{get_provider(venue).title} has no field {', '.join(sorted(unknown))}", hint=f"its fields are: {known}"
        )
    return out


# --- text ----------------------------------------------------------------------------------


def _from_text(text: str, venue: str, repairs: list[str]) -> dict[str, str]:
    provider = get_provider(venue)
    multiline = [f.name for f in provider.fields if f.multiline]
    out: dict[str, str] = {}

    text = _decode_escaped_pems(text, repairs)

    # PEM blocks first: they span lines and contain characters a label parser would misread.
    blocks = [m for m in _PEM_BLOCK.finditer(text)]
    if blocks:
        if not multiline:
            raise InvalidCredential(
                f"{provider.title} takes no PEM key", hint=f"paste the values for: {_field_list(venue)}"
            )
        private = [m for m in blocks if "PUBLIC" not in m.group(1)]
        if len(private) > 1:
            raise InvalidCredential("more than one private key was pasted", hint="paste only the one for this API key")
        chosen = private[0] if private else blocks[0]  # a lone public key: pem.py explains
        if len(blocks) > 1:
            repairs.append("ignored a PUBLIC KEY block pasted next to the private key")
        out[multiline[0]] = chosen.group(0)
        text = _PEM_BLOCK.sub("\n", text)
    elif _PEM_BEGIN.search(text):
        raise InvalidCredential("the PEM has a BEGIN line but no matching END line", hint="paste the whole block")

    table = aliases(venue)
    ignored = _IGNORED.get(venue, set())
    positional: list[str] = []
    pending: str | None = None  # a label alone on its line: its value is on the next one
    for line in text.split("\n"):
        if not line.strip():
            continue
        bare = line.strip().rstrip(":")
        if re.fullmatch(r"[A-Za-z][A-Za-z _\-()]*", bare) and _norm(bare) in table:
            name = table[_norm(bare)]  # a label alone on its line, as web pages lay them out
            if name not in out:
                pending = name
            continue
        match = _LABELLED.match(line)
        if match and _norm(match.group(1)) in table:
            name = table[_norm(match.group(1))]
            value = match.group(2) if match.group(2).strip() else ""
            if name in out and not (name in multiline and not value):
                raise InvalidCredential(f"{name} is given twice", hint="paste one set of credentials")
            if value:
                out[name] = value
                pending = None
            elif name not in out:
                pending = name
            continue
        if match and _norm(match.group(1)) in ignored:
            continue
        if match and re.match(r"^\s*[A-Za-z][A-Za-z _\-()]*:\s", line) and len(match.group(1).split()) <= 4:
            raise InvalidCredential(
                f"unrecognised label {match.group(1).strip()!r}", hint=f"{provider.title} fields are: {_field_list(venue)}"
            )
        if pending is not None:
            out[pending] = line
            pending = None
            continue
        positional.append(line)

    order = [n for n in _POSITIONAL[venue] if n not in out]
    if multiline and multiline[0] in order and positional:
        # A PEM whose BEGIN/END lines were lost: every line after the key is its body.
        single = [n for n in order if n not in multiline]
        head, body = positional[: len(single)], positional[len(single) :]
        if len(head) == len(single) and body:
            out[multiline[0]] = "\n".join(body)
            positional = head
            order = single
    if len(positional) > len(order):
        raise InvalidCredential(
            f"found {len(positional)} unlabelled values but expected at most {len(order)}",
            hint=f"label them, e.g. 'API key: ...'; {provider.title} fields are: {_field_list(venue)}",
        )
    for name, value in zip(order, positional):
        out[name] = value
    if positional:
        repairs.append(f"read unlabelled values in the order {', '.join(order[: len(positional)])}")
    return out


_ESCAPED_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----(?:\\[rn]|\\/|[^\n\\]|\\u[0-9a-fA-F]{4})*?-----END [A-Z0-9 ]+-----(?:\\r)?(?:\\n)?")


def _decode_escaped_pems(text: str, repairs: list[str]) -> str:
    """A PEM as a JSON string encodes it, on one line, wherever it stands (alone, after
    "Private key: ", after other lines): `-----BEGIN ...-----\\nMIG...\\n-----END ...-----\\n`.
    Decoded as the JSON string it is (\\n, \\r, \\/ and \\u escapes), the trailing
    escaped newline included."""
    import json

    def decode(match: re.Match[str]) -> str:
        escaped = match.group(0)
        if "\\" not in escaped:
            return escaped
        try:
            decoded = json.loads(f'"{escaped}"')
        except ValueError:
            return escaped
        repairs.append("turned literal \\n escapes into line breaks")
        return "\n" + decoded.strip("\n") + "\n"

    return _ESCAPED_PEM.sub(decode, text)


def _field_list(venue: str) -> str:
    return ", ".join(f.name for f in get_provider(venue).fields)


# --- per-field repair and validation --------------------------------------------------------


def _clean_single(name: str, value: str, repairs: list[str]) -> str:
    original = value
    value = value.strip()
    if value.endswith(",") and (value[:1] in "\"'"):
        value = value[:-1].rstrip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
        value = value[1:-1].strip()
        repairs.append(f"{name}: removed the quotes around it")
    if original != original.strip():
        leading = original[: len(original) - len(original.lstrip())]
        trailing = original[len(original.rstrip()) :]
        if leading:
            what = "surrounding whitespace"
        elif "\n" in trailing:
            what = "a trailing newline"
        else:
            what = "trailing whitespace"
        repairs.append(f"{name}: removed {what}")
    return value


def _validate(fields: dict[str, str], venue: str, repairs: list[str]) -> dict[str, str]:
    provider = get_provider(venue)
    specs = {f.name: f for f in provider.fields}
    cleaned: dict[str, str] = {}
    for name, value in fields.items():
        spec = specs.get(name)
        if spec is None:  # provider.normalize names it
            cleaned[name] = value
            continue
        if any(mark in value for mark in _MASK_MARKS):
            raise InvalidCredential(
                f"{name} is a masked value (it contains '…' or '•'), not the real one",
                hint="paste it from the venue, or use `keyward show --reveal` on the source vault",
            )
        if spec.multiline:
            cleaned[name] = _clean_pem(name, value, repairs)
            continue
        if _PEM_BEGIN.search(value):
            raise InvalidCredential(f"{name} holds a PEM block", hint="the PEM goes in the private key field")
        cleaned[name] = _clean_single(name, value, repairs)

    if venue == "tradeready":
        key, secret = cleaned.get("api_key", ""), cleaned.get("api_secret", "")
        if key.startswith("sk_") and secret.startswith("ak_"):
            raise InvalidCredential("api_key and api_secret are swapped", hint="the key starts ak_, the secret sk_")
        if secret.startswith("ak_") or key.startswith("sk_"):
            which = "api_secret looks like an API key (ak_...)" if secret.startswith("ak_") else "api_key looks like a secret (sk_...)"
            raise InvalidCredential(which, hint="paste each value next to its own label")
    if venue == "hypersolutions":
        jwt_key = cleaned.get("jwt_key", "")
        if _JWT.match(jwt_key):
            raise InvalidCredential(
                "jwt_key holds a signed token (eyJ...), not the JWT signing key",
                hint="paste the JWT key from the Hyper Solutions dashboard, not a signature",
            )
        if jwt_key and jwt_key == cleaned.get("api_key"):
            raise InvalidCredential("jwt_key is the same as api_key", hint="paste the JWT key, not the API key twice")

    normalized = provider.normalize(cleaned)
    return normalized


def _clean_pem(name: str, value: str, repairs: list[str]) -> str:
    from vault.core.pem import normalize_ec_p256_private_key

    text = value.strip().replace("\r\n", "\n")
    if "\\n" in text and "\n" not in text:
        text = text.replace("\\n", "\n")
        repairs.append(f"{name}: turned literal \\n escapes into line breaks")
    pem = normalize_ec_p256_private_key(text)  # refuses public keys, other curves, junk
    if "-----BEGIN" not in text:
        repairs.append(f"{name}: restored the missing PEM BEGIN/END lines")
    elif "EC PRIVATE KEY" in text:
        repairs.append(f"{name}: converted the SEC1 'EC PRIVATE KEY' to PKCS#8")
    else:
        match = _PEM_BLOCK.search(text)
        body = match.group(0).split("\n")[1:-1] if match else []
        expected = pem.strip().split("\n")[1:-1]
        if [line.strip() for line in body] != expected:
            repairs.append(f"{name}: re-wrapped the PEM lines")
    return pem
