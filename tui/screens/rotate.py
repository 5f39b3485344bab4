"""The rotate wizard: new credentials in, stored at once, verified against the venue, the
old set kept as a generation (vault.ops.rotation does all of it; this screen walks through).

TradeReady agents rotate through the venue's API (one key press); every other venue makes
the new key in its web UI, and the user pastes it here.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from vault.core.errors import KeywardError
from vault.venues import get_provider

from ..widgets.key_footer import KeyFooter
from ..widgets.secret_input import PasteZone
from ..workers import Job, error_line
from .capture import describe_captured

STEPS = ("new credentials", "store", "verify", "done")


class RotateScreen(Screen):
    CSS_PATH = ["form.tcss", "rotate.tcss"]
    AUTO_FOCUS = "#paste"
    BINDINGS = [
        Binding("escape", "cancel", "Close", id="rotate.cancel"),
        Binding("ctrl+s", "rotate", "Rotate", id="rotate.go"),
        Binding("ctrl+b", "rollback", "Roll back", id="rotate.rollback"),
    ]

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self._captured = None
        self.step = 0

    @property
    def _account(self):
        return self.app.session.find(self.label) if self.app.session else None

    @property
    def by_api(self) -> bool:
        acct = self._account
        return acct is not None and acct.venue == "tradeready" and bool(acct.fields.get("agent_id"))

    def compose(self) -> ComposeResult:
        acct = self._account
        title = get_provider(acct.venue).title if acct else "?"
        yield Header(show_clock=False, icon="")
        with VerticalScroll(id="rotate-box", classes="form-box", can_focus=False):
            yield Static(f"Rotate {self.label} ({title})", classes="form-title")
            yield Static("", id="steps")
            if self.by_api:
                yield Static(
                    "TradeReady rotates an agent key through its API and revokes the old key at once. "
                    "Press ctrl+s to regenerate it; keyward stores the new key, then verifies it.",
                    classes="form-help",
                )
            else:
                yield Static(
                    f"1. Create a new key in {title}'s web UI.  2. Paste what it shows below.  "
                    "3. ctrl+s stores it at once, checks it against the venue, and keeps the old set as a "
                    "generation (restored automatically if the check fails; ctrl+b switches back by hand).",
                    classes="form-help",
                )
                yield PasteZone("paste the NEW credentials here; ctrl+u clears", id="paste")
            yield Static("", id="rotate-recognised")
            yield Static("", id="rotate-message", classes="form-message")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._draw_steps()

    def _draw_steps(self, failed: bool = False) -> None:
        out = Text()
        for i, name in enumerate(STEPS):
            style = "bold green" if i < self.step else "bold reverse" if i == self.step else "dim"
            if failed and i == self.step:
                style = "bold red"
            out.append(f" {i + 1} {name} ", style=style)
            if i < len(STEPS) - 1:
                out.append(" → ", style="dim")
        self.query_one("#steps", Static).update(out)

    def _say(self, text: str, style: str = "") -> None:
        self.query_one("#rotate-message", Static).update(Text(text, style=style))

    @on(PasteZone.Changed, "#paste")
    def _pasted(self) -> None:
        from vault.ops.capture import parse

        acct = self._account
        text = self.query_one("#paste", PasteZone).value
        out = self.query_one("#rotate-recognised", Static)
        self._captured = None
        if acct is None or not text.strip():
            out.update("")
            return
        try:
            self._captured = parse(text, acct.venue)
        except KeywardError as err:
            out.update(Text(str(err), style="red"))
            return
        out.update(describe_captured(self._captured))

    def action_rotate(self) -> None:
        session = self.app.session
        acct = self._account
        if session is None or acct is None or self.step in (1, 2):
            return
        label = self.label
        if self.by_api:
            work = lambda: session.rotate_regenerate(label)  # noqa: E731
        else:
            captured = self._captured
            if captured is None:
                self._say("Paste the new credentials first.", "red")
                return
            fields = dict(captured.fields)
            if acct.venue == "tradeready":
                # A new account key keeps the account's ids and agent unless the paste says otherwise.
                keep = ("account_id", "agent_id", "agent_api_key")
                fields = {k: v for k, v in acct.fields.items() if k in keep} | fields
            source = f" from {captured.source_format}"
            work = lambda: session.rotate_replace(label, fields, source)  # noqa: E731
        self.step = 1
        self._draw_steps()
        self._say("Storing the new credentials, then checking them against the venue…")
        self.app.run_job(Job(f"rotate {label}", work, done=self._finished, failed=self._failed, key=("rotate", label)))

    def _finished(self, result) -> None:
        if not self.is_attached:
            return
        if self.query("#paste"):
            self.query_one("#paste", PasteZone).take()
        self._captured = None
        self.step = 3 if result.ok else 2
        self._draw_steps(failed=not result.ok)
        self._say(result.message, "green" if result.ok else "yellow")

    def _failed(self, error: BaseException) -> None:
        if not self.is_attached:
            return
        self.step = 0
        self._draw_steps(failed=True)
        self._say(error_line(error), "red")

    def action_rollback(self) -> None:
        session = self.app.session
        acct = self._account
        if session is None or acct is None:
            return
        if not acct.generations:
            self._say("There is no earlier generation to switch back to.", "yellow")
            return
        label = self.label
        self._say("Switching back to the previous generation and checking it…")
        self.app.run_job(Job(f"roll back {label}", lambda: session.rollback(label), done=self._finished,
                             failed=self._failed, key=("rotate", label)))

    def action_cancel(self) -> None:
        if self.query("#paste"):
            self.query_one("#paste", PasteZone).take()
        self._captured = None
        self.app.pop_screen()
