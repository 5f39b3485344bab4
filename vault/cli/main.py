# PYTHON_ARGCOMPLETE_OK  (argcomplete looks for this marker: `keyward` completes itself)
"""`keyward`: argument parsing and the one place where errors become exit codes.

Each command group lives in its own module exposing `register(subparsers)`; modules are
imported only to build the parser, so they must keep heavy imports (textual, httpx,
jwt) inside the functions that need them.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from importlib import import_module

from vault.cli.parser import Parser
from vault.core.errors import KeywardError

# Each command group's module, with the commands it registers.  A run of one command
# builds only that group's parsers: importing and building all eight groups was a fifth
# of a cold `keyward list`.  tests/test_cli_vault.py pins this table to what the modules
# register, so a new command cannot be missed here.
COMMAND_GROUPS: dict[str, tuple[str, ...]] = {
    "vault.cli.vault_cmds": ("init", "add", "import", "list", "show", "remove", "passwd", "rekey"),
    "vault.cli.token_cmds": ("token", "headers", "login", "check", "doctor", "exec", "setting"),
    "vault.cli.lifecycle_cmds": ("capture", "register", "rotate", "export", "key-age", "audit", "pubkey"),
    "vault.cli.agent_cmds": ("unlock", "lock", "status"),
    "vault.cli.app_cmds": ("dashboard", "demo"),
    "vault.cli.sandbox_cmds": ("sandbox",),
    "vault.cli.monitor_cmds": ("monitor",),
    "vault.cli.restore_cmds": ("restore",),
}
COMMAND_MODULES = tuple(COMMAND_GROUPS)
# Commands that stay up: the dashboard (also what no command opens), the sandbox, the
# monitor.  Every other command runs to its end (see `run`).
STAYS_UP = ("vault.cli.app_cmds", "vault.cli.sandbox_cmds", "vault.cli.monitor_cmds")
# Commands that work on the vault alone, with no venue to talk to: they run without
# Python's cyclic garbage collector (see `main`).  Those that make requests keep it: a
# `check` of a thousand accounts leaves the cycles of a thousand exchanges behind.
VAULT_ONLY = ("vault.cli.vault_cmds", "vault.cli.restore_cmds", "vault.cli.agent_cmds")
_GLOBAL_WITH_VALUE = ("--vault", "--passphrase-file")


class _Version(argparse.Action):
    """--version: the installed distribution's version, looked up only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("keyward")
        except PackageNotFoundError:  # run from a source tree that was never installed
            found = "unknown (not installed)"
        print(f"keyward {found}")
        parser.exit()


def add_global_options(parser: argparse.ArgumentParser, *, default=None) -> None:
    """--vault and --passphrase-file: before the command, or after it (`keyward list
    --vault X`).  A subcommand's copy defaults to SUPPRESS so it never hides the value
    given before the command."""
    parser.add_argument("--vault", metavar="PATH", default=default,
                        help="vault file (default: $KEYWARD_VAULT, else the user data dir)")
    parser.add_argument(
        "--passphrase-file",
        metavar="PATH",
        default=default,
        help="read the passphrase from the first line of PATH (or $KEYWARD_PASSPHRASE_FILE)",
    )


def _common_help() -> dict[str, tuple[str, str]]:
    from vault.venues import VENUES

    return {
        "venue": ("venue", f"the venue: {', '.join(VENUES)}"),
        "label": ("label", "the account's label, your name for it (`keyward list` shows them)"),
        "labels": ("LABEL", "accounts by label (`keyward list` shows them)"),
        "json": ("", "print JSON (stable keys, for scripts) instead of text"),
        "notes": ("TEXT", "a free-text note kept with the account (not secret: shown by `show`)"),
        "tag": ("TAG", "a tag kept with the account, for filtering (repeatable)"),
    }


def _complete_labels(prefix: str, parsed_args: argparse.Namespace, **_: object) -> list[str]:
    """Account labels for tab completion, from a running unlock agent only: completing
    never asks for a passphrase or opens the vault, so without an agent it offers none."""
    try:
        from pathlib import Path

        from vault.agent.client import connect
        from vault.core.storage import default_vault_path

        given = getattr(parsed_args, "vault", None)
        client = connect(Path(given).expanduser() if isinstance(given, str) else default_vault_path())
        if client is None:
            return []
        with client:
            return [label for label in client.labels() if label.startswith(prefix)]
    except Exception:  # noqa: BLE001 - a completion that fails offers nothing, never a traceback
        return []


def _complete_venues(prefix: str, **_: object) -> list[str]:
    from vault.venues import VENUES

    return [venue for venue in VENUES if venue.startswith(prefix)]


def _add_completers(subparser: argparse.ArgumentParser) -> None:
    for action in subparser._actions:
        if action.dest in ("label", "labels"):
            action.completer = _complete_labels  # type: ignore[attr-defined]
        elif action.dest == "venue":
            action.completer = _complete_venues  # type: ignore[attr-defined]


def _complete_if_asked(parser: argparse.ArgumentParser) -> None:
    """Shell completion (argcomplete): when the shell's completion hook runs keyward, print
    the candidates and exit.  Installed with one line, see the README; argcomplete is
    imported only then."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)


def _explain_common_arguments(subparser: argparse.ArgumentParser) -> None:
    """Arguments every command names alike get one explanation, the same everywhere,
    unless the command gives its own: `venue` lists the venues, `--json` says what it is."""
    common = _common_help()
    for action in subparser._actions:
        if action.dest not in common:
            continue
        metavar, text = common[action.dest]
        if not action.help:
            action.help = text
        if metavar and action.dest in ("venue", "label") and action.metavar in (None, "VENUE"):
            action.metavar = metavar
        elif metavar and action.option_strings and action.metavar is None and action.nargs != 0:
            action.metavar = metavar


def command_group(argv: list[str]) -> str | None:
    """The one module that can parse `argv`: its command word, after the global options
    given in full, names a group.  None (build every group) for anything else: no
    command, help or --version first, an abbreviated or unknown option, a mistyped
    command (whose error lists every command), shell completion."""
    word = command_word(argv)
    return next((module for module, commands in COMMAND_GROUPS.items() if word in commands), None)


def command_word(argv: list[str]) -> str | None:
    """The word in the command's place (after the global options given in full), if any;
    None during shell completion, which needs every command."""
    if "_ARGCOMPLETE" in os.environ:
        return None
    i = 0
    while i < len(argv):
        name, eq, _ = argv[i].partition("=")
        if name not in _GLOBAL_WITH_VALUE:
            break
        i += 1 if eq else 2
    return argv[i] if i < len(argv) else None


class _OneCommand:
    """The subparsers action as a group's `register` sees it when the command line names
    one of the group's commands: only that command's parser is built (a group's other
    parsers were ~3 ms of every cold command, before its KDF could start).  Its usage,
    help and errors are those of the whole parser's: a subparser's own say nothing of its
    siblings, and a mistyped command builds everything (`command_group`)."""

    def __init__(self, sub: argparse._SubParsersAction, wanted: str) -> None:
        self._sub, self._wanted = sub, wanted

    def add_parser(self, name: str, **kwargs):
        if name == self._wanted or self._wanted in kwargs.get("aliases", ()):
            return self._sub.add_parser(name, **kwargs)
        return _NOT_BUILT

    def __getattr__(self, name: str):
        return getattr(self._sub, name)


class _NotBuilt:
    """A sibling command's parser, not built: whatever `register` asks of it (arguments,
    groups, defaults, an action's completer) is accepted and dropped."""

    def __getattr__(self, name: str) -> _NotBuilt:
        return self

    def __call__(self, *args, **kwargs) -> _NotBuilt:
        return self

    def __setattr__(self, name: str, value) -> None:
        pass


_NOT_BUILT = _NotBuilt()


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given the command line, only the part that can parse it
    (`command_group`): the same subparser either way, so usage and errors are alike."""
    only = command_group(argv) if argv is not None else None
    parser = Parser(
        prog="keyward",
        description="An encrypted vault and dashboard for exchange API credentials.",
        epilog="With no command, opens the dashboard.  `keyward COMMAND --help` explains each command; "
               "exit codes are listed in the README.",
    )
    parser.add_argument("--version", action=_Version, help="print keyward's version and exit")
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    if only is None:
        for name in COMMAND_MODULES:
            import_module(name).register(sub)
    else:
        import_module(only).register(_OneCommand(sub, command_word(argv)))
    for subparser in dict.fromkeys(sub.choices.values()):  # (aliases share one parser)
        _explain_common_arguments(subparser)
        _add_completers(subparser)
        group = subparser.add_argument_group("global options (also accepted before the command)")
        add_global_options(group, default=argparse.SUPPRESS)
        if not subparser.description:
            help_line = next((a.help for a in sub._choices_actions if sub.choices.get(a.dest) is subparser), None)
            if help_line:  # `keyward COMMAND --help` says what the command does
                subparser.description = help_line[0].upper() + help_line[1:] + "."
    _complete_if_asked(parser)
    return parser


def runs_to_its_end(argv: list[str]) -> bool:
    """Whether this command line runs a command that ends by itself (everything but the
    dashboard, the sandbox and the monitor; `--help` and mistakes too)."""
    return command_group(argv) not in (None, *STAYS_UP)


def works_on_the_vault_alone(argv: list[str]) -> bool:
    return command_group(argv) in VAULT_ONLY


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    collector_was_on = gc.isenabled()
    if works_on_the_vault_alone(argv):
        # Such a command makes a few hundred thousand objects (modules, then the vault's
        # accounts), almost none in a cycle, and exits.  Each batch of allocations woke
        # the cyclic collector, which walked everything alive: 6 ms of a cold `show`,
        # 15 ms of `list --json` at 1,000 accounts.  Reference counting still frees all
        # but cycles, and the process ends soon after.
        gc.disable()
    try:
        return _run(argv)
    finally:
        if collector_was_on:  # (main called in a process that goes on, as tests do)
            gc.enable()


def run() -> None:
    """`keyward` (the console script) and `python -m vault`: main, then the process ends."""
    argv = sys.argv[1:]
    code = main(argv)
    code = _flush_output(code)
    if runs_to_its_end(argv):
        # Shutting down, Python collects cyclic garbage across everything still alive, to
        # free memory that the exit frees anyway: 15 ms of a cold `show`, 30 ms of `list
        # --json` at 1,000 accounts.  gc.freeze() puts it all out of the collector's
        # sight; atexit handlers still run and stdout and stderr are still flushed.
        gc.freeze()
        if works_on_the_vault_alone(argv) and _nothing_left_to_finish():
            # And then it tears down every module and object one by one, to free memory
            # that the exit frees at once: another 5 ms of `list --json` at 1,000
            # accounts.  A command on the vault alone leaves no thread, atexit handler or
            # open file behind (checked here, not assumed): only the standard streams'
            # buffers, flushed first.
            _exit_now(code)
    sys.exit(code)


def _nothing_left_to_finish() -> bool:
    """No atexit handler registered and no thread but daemons: nothing that the normal
    shutdown would run or wait for.  (atexit has no public count: without one, assume
    there are handlers and shut down normally.)"""
    import atexit
    import threading

    handlers = getattr(atexit, "_ncallbacks", None)
    if handlers is None or handlers():
        return False
    main = threading.main_thread()
    return all(t is main or t.daemon for t in threading.enumerate())


def _flush_output(code: int) -> int:
    """What is still buffered for standard output is written now, where a failure can be
    told: a full disk is a one-line error and exit code 5 (OutputFailed), never a
    success with the output cut short, nor Python's "Exception ignored" at shutdown."""
    from vault.core.errors import OutputFailed, output_failed

    try:
        if sys.stdout is not None:
            sys.stdout.flush()
        return code
    except BrokenPipeError:  # the reader went away (`| head`): it has what it wanted
        pass
    except (OSError, ValueError) as exc:
        if code != OutputFailed.exit_code:  # (the command said so already)
            from vault.cli.context import fail

            code = fail(output_failed(exc) if isinstance(exc, OSError) else OutputFailed(
                "cannot write the output (standard output is closed)",
                hint="run it with standard output open, or send it to a file"), sys.stderr)
    # The buffer still holds what could not be written, and a normal shutdown would try
    # again and print a traceback-like warning: end here instead.
    _exit_now(code)
    raise AssertionError("unreachable")  # pragma: no cover


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # (reported by _flush_output), a closed or absent stream
            pass
    os._exit(code)


def _run(argv: list[str]) -> int:
    # `token`/`headers` with an unlock agent running: answered before the CLI loads
    # (vault.cli.fast), so a script's call costs little more than interpreter start-up.
    # Every other command still uses the agent, through Context.ops().
    from vault.cli.fast import run_via_agent

    code = run_via_agent(argv)
    if code is not None:
        return code
    from vault.cli.context import Context, fail

    parser = build_parser(argv)
    args = parser.parse_args(argv)
    ctx = Context(args)
    func = getattr(args, "func", None)
    if func is None:
        func = _default_command(parser)
    try:
        return int(func(ctx) or 0)
    except KeywardError as err:
        return fail(err, ctx.stderr)
    except KeyboardInterrupt:
        print("keyward: interrupted; nothing was changed", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug, not a user error: no traceback that might carry a value
        if os.environ.get("KEYWARD_DEBUG"):
            raise
        print(
            f"keyward: internal error ({type(exc).__name__}); please report it. "
            "Rerun with KEYWARD_DEBUG=1 to see the traceback.",
            file=sys.stderr,
        )
        return 70


def _default_command(parser: argparse.ArgumentParser):
    from vault.cli.app_cmds import open_dashboard

    return open_dashboard
