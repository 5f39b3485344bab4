"""Add or capture: paste what the venue's one-time screen showed; keyward recognises the
format (vault.ops.capture), repairs paste accidents, shows the result masked, and stores it.

The pasted text lives only in the paste zone (drawn as a fixed mask); what is recognised
is shown through vault.ops.views' masking.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Input, Select, Static

from vault.core.errors import KeywardError
from vault.venues import VENUES, get_provider

from ..widgets.key_footer import KeyFooter
from ..widgets.secret_input import PasteZone
from ..workers import Job, error_line

DETECT = "detect"
CUSTOM = "custom"


def detect_venue(text: str) -> str | None:
    """The venue a paste obviously belongs to (its JSON shape, a PEM), or None."""
    stripped = text.strip()
    if "-----BEGIN" in stripped:
        return "powertrade"
    if stripped.startswith("{"):
        from vault.ops.formats import recognise

        try:
            from vault.core.inputs import load_json

            venue, _, _ = recognise(load_json(stripped, "the paste"))  # nesting bounded
            return get_provider(venue).venue
        except (ValueError, KeywardError):
            return None
    if "KEYWARD_VENUE=" in stripped:
        from vault.ops.export import parse_env

        try:
            venue = parse_env(stripped).get("venue")
            return get_provider(str(venue)).venue if venue else None
        except KeywardError:
            return None
    return None


def describe_captured(captured) -> Text:
    """What was recognised, masked the way `keyward show` masks it."""
    from vault.ops import views
    from vault.core.model import Account

    probe = Account(label="-", venue=captured.venue, base_url="", fields=captured.fields)
    out = Text()
    out.append(f"Recognised {captured.source_format} for {get_provider(captured.venue).title}\n", style="green")
    for name, value in views.masked_fields(probe).items():
        out.append(f"  {name:<14}", style="bold")
        out.append((value.splitlines()[0] + " …" if "\n" in value else value) + "\n")
    for repair in captured.repairs:
        out.append(f"  repaired: {repair}\n", style="yellow")
    return out


class CaptureScreen(Screen):
    CSS_PATH = ["form.tcss", "capture.tcss"]
    AUTO_FOCUS = "#paste"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="capture.cancel"),
        Binding("ctrl+s", "save", "Save", id="capture.save"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._captured = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="")
        with VerticalScroll(id="capture-box", classes="form-box", can_focus=False):
            yield Static("Add an account", classes="form-title")
            yield Static(
                "Paste what the venue showed you once: TradeReady's registration JSON, Kiiex's "
                "Export to JSON, PowerTrade's key and PEM, Hyper Solutions' keys, or a keyward export. "
                "It is never shown here; what keyward recognised is, masked.",
                classes="form-help",
            )
            with Horizontal(classes="form-row"):
                yield Static("Venue", classes="form-label")
                options = [("Detect from the paste", DETECT)] + [(get_provider(v).title, v) for v in VENUES]
                yield Select(options, value=DETECT, allow_blank=False, id="venue")
            yield PasteZone("paste here (bracketed paste), or type; ctrl+u clears", id="paste")
            yield Static("", id="recognised")
            with Horizontal(classes="form-row"):
                yield Static("Label", classes="form-label")
                yield Input(placeholder="a name for this account", id="label")
            with Horizontal(classes="form-row"):
                yield Static("Environment", classes="form-label")
                yield Select([], allow_blank=True, prompt="choose the venue first", id="env")
            with Horizontal(classes="form-row"):
                yield Static("Base URL", classes="form-label")
                yield Input(placeholder="only for a custom environment (https://..., or http://127.0.0.1 for the sandbox)",
                            id="base-url")
            yield Static("", id="capture-message", classes="form-message")
        yield KeyFooter()

    # --- recognising -------------------------------------------------------------------

    def _venue(self) -> str | None:
        chosen = self.query_one("#venue", Select).value
        if chosen != DETECT:
            return str(chosen)
        return detect_venue(self.query_one("#paste", PasteZone).value)

    def _set_envs(self, venue: str | None) -> None:
        select = self.query_one("#env", Select)
        if venue is None:
            select.set_options([])
            return
        provider = get_provider(venue)
        options = [(f"{name}  {url}", name) for name, url in provider.environments.items()]
        options.append(("custom base URL", CUSTOM))
        current = select.value
        select.set_options(options)
        values = [v for _, v in options]
        select.value = current if current in values else provider.default_env

    @on(PasteZone.Changed, "#paste")
    @on(Select.Changed, "#venue")
    def analyse(self) -> None:
        from vault.ops.capture import parse

        text = self.query_one("#paste", PasteZone).value
        out = self.query_one("#recognised", Static)
        venue = self._venue()
        self._set_envs(venue)
        self._captured = None
        if not text.strip():
            out.update("")
            return
        if venue is None:
            out.update(Text("Not recognised on its own: choose the venue above.", style="yellow"))
            return
        try:
            captured = parse(text, venue)
        except KeywardError as err:
            out.update(Text(str(err), style="red"))
            return
        self._captured = captured
        out.update(describe_captured(captured))
        label = self.query_one("#label", Input)
        if not label.value and captured.label:
            label.value = str(captured.label)
        if captured.base_url and not captured.env:
            self.query_one("#base-url", Input).value = captured.base_url
            self.query_one("#env", Select).value = CUSTOM
        elif captured.env:
            self.query_one("#env", Select).value = captured.env

    @on(Input.Changed, "#base-url")
    def _base_url_typed(self, event: Input.Changed) -> None:
        """Typing a base URL means a custom environment: say so in the environment box
        rather than keep a named one (prod, most often) that the URL would not override."""
        env = self.query_one("#env", Select)
        if event.value.strip() and env.value != CUSTOM and self._venue() is not None:
            env.value = CUSTOM

    @on(Input.Submitted, "#label")
    def _label_done(self) -> None:
        self.focus_next()

    @on(Input.Submitted, "#base-url")
    def _base_url_done(self) -> None:
        self.action_save()

    # --- saving ------------------------------------------------------------------------

    def _say(self, text: str, style: str = "red") -> None:
        self.query_one("#capture-message", Static).update(Text(text, style=style))

    def action_save(self) -> None:
        from vault.core.model import check_label
        from vault.venues import resolve_base_url
        from vault.core.model import Account

        captured = self._captured
        if captured is None:
            self._say("Nothing recognised yet: paste the credentials first.")
            return
        label = self.query_one("#label", Input).value.strip()
        env = self.query_one("#env", Select).value
        base_url = self.query_one("#base-url", Input).value.strip() or None
        try:
            check_label(label)
        except KeywardError as err:
            self._say(str(err))
            return
        # Never fall back to a default environment behind the user's back: that is the
        # venue's production host.  A custom environment needs its URL; a named one, none.
        if env == CUSTOM and not base_url:
            self._say("A custom environment needs its base URL: type it, or choose a named environment.")
            return
        if env not in (CUSTOM, Select.NULL) and base_url:
            self._say(f"Both the environment {env} and a base URL are given: choose 'custom base URL' "
                      "to use the URL, or clear it.")
            return
        if env == Select.NULL and not base_url:
            self._say("Choose the environment (or type a custom base URL).")
            return
        try:
            if base_url:
                base, env_name = resolve_base_url(captured.venue, None, base_url)
            else:
                base, env_name = resolve_base_url(captured.venue, str(env), None)
        except KeywardError as err:
            self._say(str(err))
            return
        session = self.app.session
        if session is None:
            return
        acct = Account(label=label, venue=captured.venue, base_url=base, env=env_name, fields=dict(captured.fields),
                       created_at=self.app.clock())
        detail = f"from {captured.source_format}" + (f"; {len(captured.repairs)} repair(s)" if captured.repairs else "")

        def done(_: object) -> None:
            self.query_one("#paste", PasteZone).take()
            self._captured = None
            self.app.notify(f"Captured {label} ({get_provider(acct.venue).title}).", title="Add")
            self.app.pop_screen()

        self.app.run_job(Job(f"store {label}", lambda: session.capture(acct, detail), done=done,
                             failed=lambda e: self._say(error_line(e)), key=("add", label)))

    def action_cancel(self) -> None:
        self.query_one("#paste", PasteZone).take()
        self._captured = None
        self.app.pop_screen()

    def on_unmount(self) -> None:
        self._captured = None
