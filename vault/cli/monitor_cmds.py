"""`keyward monitor`: the long-running health monitor and Prometheus exporter
(vault.monitor does the work; this is its parser and a thin command function)."""

from __future__ import annotations

import argparse
import re
import shlex
from typing import TYPE_CHECKING

from vault.core.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from vault.cli.context import Context

DEFAULT_LISTEN = "127.0.0.1:9464"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor",
        help="check accounts on a schedule, keep sessions fresh, serve Prometheus metrics (runs until SIGTERM)",
        description="Health checks on a schedule (per-account setting check_interval_s), sessions kept fresh, "
        "Prometheus metrics on --listen and/or a node_exporter --textfile, notifications on state changes. "
        "Uses the unlock agent when one runs, else --passphrase-file or $CREDENTIALS_DIRECTORY/keyward-passphrase. "
        "See docs/ops.md.",
    )
    p.add_argument("labels", nargs="*", metavar="LABEL", help="accounts to monitor (default: all)")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"serve /metrics here (default {DEFAULT_LISTEN}; 'off' for none)")
    p.add_argument("--textfile", metavar="PATH", help="also write the metrics to PATH (*.prom), atomically")
    p.add_argument("--interval", type=_seconds, default=60.0, metavar="SECONDS",
                   help="seconds between checks of accounts without a check_interval_s setting (default 60)")
    p.add_argument("--jitter", type=_fraction, default=0.1, metavar="FRACTION",
                   help="spread each interval by +-FRACTION of it (default 0.1)")
    p.add_argument("--notify-command", metavar="CMD", help="run CMD (no shell) with each event as JSON on stdin")
    p.add_argument("--notify-webhook", metavar="URL", help="POST each event as JSON (https; http only to 127.0.0.1)")
    p.add_argument("--notify-desktop", action="store_true", help="desktop notifications through notify-send")
    p.add_argument("--notify-reminder", type=_duration, default=4 * 3600.0, metavar="DURATION",
                   help="repeat a still-active notification this often (default 4h; e.g. 30m, 1h)")
    p.add_argument("--print-alert-rules", action="store_true", help="print Prometheus alert rules and exit")
    p.add_argument("--job", default="keyward", help="the scrape job's name in the printed rules (default keyward)")
    p.add_argument("--print-systemd", action="store_true",
                   help="print a systemd user unit running this monitor (with LoadCredential=) and exit")
    p.set_defaults(func=cmd_monitor)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 1 <= value <= 86400:
        raise argparse.ArgumentTypeError("give 1 to 86400 seconds")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 0.5:
        raise argparse.ArgumentTypeError("give a fraction from 0 to 0.5")
    return value


def _duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 30m, 4h or 1d")
    value = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if not 1 <= value <= 30 * 86400:
        raise argparse.ArgumentTypeError("give 1 s to 30 days")
    return value


def _monitor_args(a: argparse.Namespace) -> list[str]:
    """The flags of this invocation, for the printed unit's ExecStart."""
    out = list(a.labels)
    if a.listen != DEFAULT_LISTEN:
        out += ["--listen", a.listen]
    if a.textfile:
        from pathlib import Path

        out += ["--textfile", str(Path(a.textfile).expanduser().resolve())]
    if a.interval != 60.0:
        out += ["--interval", f"{a.interval:g}"]
    if a.jitter != 0.1:
        out += ["--jitter", f"{a.jitter:g}"]
    for flag, value in (("--notify-command", a.notify_command), ("--notify-webhook", a.notify_webhook)):
        if value:
            out += [flag, value]
    if a.notify_desktop:
        out.append("--notify-desktop")
    if a.notify_reminder != 4 * 3600.0:
        out += ["--notify-reminder", f"{a.notify_reminder:g}s"]
    return out


def cmd_monitor(ctx: Context) -> int:
    a = ctx.args
    if a.print_alert_rules:
        from vault.monitor.rules import alert_rules

        ctx.stdout.write(alert_rules(a.job))
        return 0

    from vault.monitor.metrics import parse_listen

    try:
        listen = parse_listen(a.listen)
    except ValueError as exc:
        raise InputError(str(exc), hint="e.g. --listen 127.0.0.1:9464, or --listen off with --textfile") from None
    if listen is None and not a.textfile:
        raise InputError("--listen off without --textfile would publish nothing", hint="give --textfile PATH")
    notifiers = _notifiers(ctx)

    if a.print_systemd:
        from vault.monitor.rules import systemd_unit

        ctx.stdout.write(systemd_unit(ctx.vault_path.expanduser().resolve(), _monitor_args(a), ctx.passphrase_file))
        return 0

    from pathlib import Path

    from vault.monitor.notify import Dispatcher
    from vault.monitor.runner import Monitor, _log_to_stderr
    from vault.monitor.source import open_ops
    from vault.ops.monitor_status import status_path

    textfile = None
    if a.textfile:
        textfile = Path(a.textfile).expanduser().resolve()
        if not textfile.parent.is_dir():
            raise InputError(f"{textfile.parent} is not a directory", hint="give --textfile a path in an existing directory")
    prompt = (lambda: ctx.ask("Vault passphrase: ", secret=True)) if ctx.interactive else None
    vault_path = ctx.vault_path
    monitor = Monitor(
        lambda: open_ops(vault_path, ctx.passphrase_file, notify=_log_to_stderr, prompt=prompt),
        labels=a.labels or None,
        interval_s=a.interval,
        jitter=a.jitter,
        listen=listen,
        textfile=textfile,
        dispatcher=Dispatcher(notifiers, _log_to_stderr),
        reminder_s=a.notify_reminder,
        status_path=status_path(vault_path),
    )
    return monitor.run()


def _notifiers(ctx: Context) -> list:
    from vault.monitor.notify import CommandNotifier, DesktopNotifier, WebhookNotifier

    a = ctx.args
    out: list = []
    if a.notify_command:
        try:
            argv = shlex.split(a.notify_command)
        except ValueError:
            raise InputError("--notify-command has unbalanced quotes", hint="quote it as a shell would") from None
        out.append(CommandNotifier(argv))
    if a.notify_webhook:
        out.append(WebhookNotifier(a.notify_webhook))
    if a.notify_desktop:
        desktop = DesktopNotifier()
        if desktop.available:
            out.append(desktop)
        else:
            ctx.warn("keyward monitor: warning: notify-send is not installed: no desktop notifications "
                     "(Debian/Ubuntu: apt install libnotify-bin)")
    return out
