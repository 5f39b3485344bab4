"""Everything about one account: fields (masked; one revealed for 10 s on request), the
current token decoded, the headers a request would carry, credential generations, recent
audit entries and the session's rate-limit sparkline.

Masking comes from vault.ops.views; this widget decides only what to draw where.  The one
value it ever holds in clear is a revealed field, until its deadline passes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Static

from vault.ops import views
from vault.core.model import Account, iso
from vault.core.text import printable
from vault.venues import get_provider, secret_names

from . import countdown
from .sparkline import RateSparkline

REVEAL_SECONDS = 10
STACK_BELOW = 110  # cells: narrower than this, the two columns are stacked


def decode_token(value: str, secrets: set[str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(header, claims) of a JWT without verifying it, claim values that are one of the
    account's secrets masked; None for an opaque token."""
    if value.count(".") != 2:
        return None
    import jwt

    try:
        header = jwt.get_unverified_header(value)
        claims = jwt.decode(value, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        return None

    def clean(v: Any) -> Any:
        if isinstance(v, str) and any(s and (v == s or s in v) for s in secrets):
            return views.mask(v)
        return v

    return {k: clean(v) for k, v in header.items()}, {k: clean(v) for k, v in claims.items()}


def _when(ts: Any) -> str:
    return iso(float(ts)) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else str(ts)


class DetailPane(Widget):
    DEFAULT_CSS = Path(__file__).with_suffix(".tcss").read_text(encoding="utf-8")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label: str | None = None
        self._secret_fields: set[str] = set()
        self._account: Account | None = None  # dropped with the screen on lock
        self._revealed: tuple[str, str, float] | None = None  # (field, value, until)
        self._field_order: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-title")
        with ScrollableContainer(id="detail-columns", can_focus=False):
            with VerticalScroll(id="detail-left"):
                yield Static("Fields", classes="section")
                yield DataTable(id="fields", cursor_type="row", show_header=False)
                yield Static("", id="revealed")
                yield Static("Token", classes="section")
                yield Static("", id="token")
                yield Static("Request headers", classes="section")
                yield Static("loading…", id="headers")
            with VerticalScroll(id="detail-right"):
                yield Static("Now", classes="section")
                yield Static("", id="live")
                yield Static("Rate limit this session", classes="section")
                yield RateSparkline(id="sparkline")
                yield Static("Credential generations", classes="section")
                yield Static("", id="generations")
                yield Static("Recent audit", classes="section")
                yield Static("", id="audit")

    def on_resize(self) -> None:
        # Side by side needs the left column's 64 cells and room for the right one's
        # bars and audit lines; narrower, the right column goes under the left.
        stacked = self.size.width < STACK_BELOW
        self.set_class(stacked, "-stacked")
        self.query_one("#detail-columns").can_focus = stacked  # then it is the one that scrolls

    def on_mount(self) -> None:
        table = self.query_one("#fields", DataTable)
        table.add_column("field", key="field", width=14)
        table.add_column("value", key="value", width=36)
        table.add_column("kind", key="kind", width=8)

    # --- content -----------------------------------------------------------------------

    @property
    def selected_field(self) -> str | None:
        table = self.query_one("#fields", DataTable)
        if not self._field_order or not (0 <= table.cursor_row < len(self._field_order)):
            return None
        return self._field_order[table.cursor_row]

    def show(self, acct: Account, history: list[int], audit: list, now: float, default_max_age: int) -> None:
        provider = get_provider(acct.venue)
        self.label = acct.label
        self._account = acct
        self._secret_fields = secret_names(provider)
        env = views.env_name(acct)
        title = Text.assemble((acct.label, "bold"), f"  {provider.title} · {env} · ", (acct.base_url, "dim"))
        if acct.notes:
            title.append(f"\n{printable(acct.notes, newlines=True)}", style="italic")
        self.query_one("#detail-title", Static).update(title)
        table = self.query_one("#fields", DataTable)
        masked = views.masked_fields(acct)
        order = list(masked)
        if order != self._field_order:
            cursor = table.cursor_row
            table.clear()
            for name in order:
                table.add_row(name, "", "", key=name)
            self._field_order = order
            table.move_cursor(row=min(cursor, max(0, len(order) - 1)), animate=False)
        for name, value in masked.items():
            shown = value.splitlines()[0] + " …" if "\n" in value else value
            table.update_cell(name, "value", Text(printable(shown)), update_width=False)  # text, not markup
            table.update_cell(name, "kind", Text("secret", style="yellow") if name in self._secret_fields else "",
                              update_width=False)
        self.query_one("#token", Static).update(self._token_text(acct))
        self.query_one("#generations", Static).update(self._generations_text(acct))
        self.query_one("#audit", Static).update(self._audit_text(audit))
        limit = acct.rate_limit.limit if acct.rate_limit else None
        self.query_one(RateSparkline).show(history, limit)
        self._default_max_age = default_max_age
        self.tick(now)

    def _token_text(self, acct: Account) -> Text:
        tok = acct.token
        if tok is None:
            return Text("none yet: press m to mint or log in", style="dim")
        out = Text()
        out.append(f"{tok.kind}", style="bold")
        out.append(f"  issued {iso(tok.issued_at)}\n")
        out.append(" " * len(tok.kind) + f"  expires {iso(tok.expires_at) or 'never'}\n")
        decoded = decode_token(tok.value, {acct.fields[n] for n in self._secret_fields if n in acct.fields})
        if decoded is None:
            out.append("opaque token: nothing to decode", style="dim")
            return out
        header, claims = decoded
        out.append("header ", style="dim")
        out.append(printable(json.dumps(header, separators=(", ", ": "))) + "\n")
        out.append("claims ", style="dim")
        for key in ("iat", "exp", "nbf"):
            if key in claims:
                claims[key] = f"{claims[key]} ({_when(claims[key])})"
        out.append(printable(json.dumps(claims, indent=1, ensure_ascii=False), newlines=True))
        return out

    def _generations_text(self, acct: Account) -> Text:
        if not acct.generations:
            return Text(f"current only (created {iso(acct.created_at)})", style="dim")
        out = Text(f"current since {iso(acct.rotated_at or acct.created_at)}\n")
        for n, gen in enumerate(reversed(acct.generations), 1):
            out.append(f"-{n}  {iso(gen.created_at)} → {iso(gen.retired_at)}  {gen.reason}\n")
        return out

    @staticmethod
    def _audit_text(entries: list) -> Text:
        if not entries:
            return Text("nothing recorded yet", style="dim")
        out = Text()
        for e in reversed(entries):
            style = "red" if e.outcome not in ("ok", "") else ""
            detail = f" {printable(e.detail)}" if e.detail else ""
            out.append(f"{iso(e.at)}  {e.action:<8} {e.outcome}{detail}\n", style=style)
        return out

    def set_headers(self, headers: dict[str, str]) -> None:
        """Header names with masked values; values equal to a non-secret field stay readable."""
        acct = self._account
        plain = set()
        if acct is not None:
            plain = {v for k, v in acct.fields.items() if k not in self._secret_fields}
        out = Text()
        for name, value in headers.items():
            out.append(f"{name}: ", style="bold")
            scheme, _, rest = value.partition(" ")
            if value in plain:
                shown = value
            elif rest and scheme in ("Bearer", "Basic", "Token"):
                shown = f"{scheme} {views.mask(rest)}"  # the scheme is no secret
            else:
                shown = views.mask(value)
            out.append(shown + "\n")
        self.query_one("#headers", Static).update(out if headers else Text("none", style="dim"))

    def headers_failed(self, line: str) -> None:
        self.query_one("#headers", Static).update(Text(line, style="red"))

    # --- live parts and the reveal ----------------------------------------------------------

    def tick(self, now: float) -> None:
        acct = self._account
        if acct is None:
            return
        live = Text()
        live.append("token     ")
        live.append_text(countdown.token_cell(acct.token, now, views.signing_window(acct), long=True))
        live.append("\nrate      ")
        live.append_text(countdown.rate_cell(acct.rate_limit, now))
        live.append("\nhealth    ")
        live.append_text(countdown.health_cell(acct.health, now, acct.token))
        if acct.health is not None and acct.health.message and not acct.health.ok:
            live.append(f"\n          {printable(acct.health.message)}", style="red")
        max_age = views.key_max_age(acct, getattr(self, "_default_max_age", 90))
        live.append("\nkey age   ")
        live.append_text(countdown.age_cell(acct.key_age_days(now), max_age))
        live.append(f" of {max_age}d")
        live.append(f"\nrefresh   {'auto' if acct.settings.get('auto_refresh') else 'manual'}")
        self.query_one("#live", Static).update(live)
        if self._revealed is not None:
            name, value, until = self._revealed
            if now >= until:
                self.mask()
            else:
                self._draw_reveal(name, value, until - now)

    def reveal(self, name: str, value: str, until: float, now: float) -> None:
        self._revealed = (name, value, until)
        self._draw_reveal(name, value, until - now)

    def _draw_reveal(self, name: str, value: str, left: float) -> None:
        box = self.query_one("#revealed", Static)
        box.update(Text.assemble((f"{name} (revealed, hides in {max(0, int(left + 0.999))} s)\n", "bold yellow"),
                                 printable(value, newlines=True)))
        box.add_class("-shown")

    @property
    def revealed_field(self) -> str | None:
        return self._revealed[0] if self._revealed else None

    def mask(self) -> None:
        self._revealed = None
        box = self.query_one("#revealed", Static)
        box.update("")
        box.remove_class("-shown")

    def on_unmount(self) -> None:
        # The screen is gone: drop the account (and any revealed value) with it.
        self._revealed = None
        self._account = None


__all__ = ["DetailPane", "decode_token"]
