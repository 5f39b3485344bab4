"""The command palette (ctrl+p): every action for every account, and the vault's own.

Commands are built from labels and verbs only; running one calls the same
`AccountActions` method as the key would.  (The built-in Screenshot system command is
replaced in `KeywardApp.get_system_commands` by one that masks first.)
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Callable, Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:  # pragma: no cover
    from .app import KeywardApp

# (verb shown, help, method of AccountActions, extra args)
ACCOUNT_VERBS = (
    ("Detail", "Open the account's detail screen", "detail", ()),
    ("Mint token", "Mint or refresh the token", "mint", ()),
    ("Copy token", "Copy the live token; the clipboard clears itself", "copy", ("token",)),
    ("Copy headers", "Copy the request headers as JSON; the clipboard clears itself", "copy", ("headers",)),
    ("Check", "Check the account against its venue", "check", ()),
    ("Rotate", "Replace the credentials, verify, keep the old generation", "rotate", ()),
    ("Export", "Write the credentials to a file", "export", ()),
    ("Delete", "Remove the account (asks for its label)", "delete", ()),
    ("Toggle auto-refresh", "Renew the token before it expires, or stop doing so", "toggle_auto_refresh", ()),
)
VAULT_VERBS = (
    ("Add account", "Paste what the venue showed you", "add"),
    ("Audit trail", "Every action on every account, hash-chained", "audit"),
    ("Settings", "Auto-lock, clipboard clearing, key maximum age", "settings"),
)


class AccountCommands(Provider):
    @property
    def kapp(self) -> KeywardApp:
        return self.app  # type: ignore[return-value]

    def _commands(self) -> Iterator[tuple[str, str, Callable[[], object]]]:
        app = self.kapp
        session = app.session
        if session is None or not session.open:
            return
        actions = app.actions
        for title, help_text, method in VAULT_VERBS:
            yield title, help_text, getattr(actions, method)
        yield "Check all accounts", "Check every account (progress on the dashboard)", self._check_all
        yield "Lock", "Drop the decrypted vault now", app.lock
        for acct in session.accounts:
            for verb, help_text, method, args in ACCOUNT_VERBS:
                yield f"{verb}: {acct.label}", help_text, partial(getattr(actions, method), acct.label, *args)

    def _check_all(self) -> None:
        from .screens.dashboard import DashboardScreen

        for screen in self.app.screen_stack:
            if isinstance(screen, DashboardScreen):
                screen.action_check_all()
                return

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            if ":" not in title:  # the vault's verbs; account verbs appear as you type
                yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)
