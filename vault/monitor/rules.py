"""What `keyward monitor` prints for the service around it: Prometheus alert rules and a
systemd user unit.  Text only; tested with promtool and systemd-analyze where present."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DEFAULT_JOB = "keyward"

# Each summary names the account and the keyward command to run.  `{job}` is the scrape
# job's name; Prometheus' own template braces are doubled for str.format.
ALERT_RULES = """\
# Prometheus alerting rules for `keyward monitor` (keyward monitor --print-alert-rules).
# Load with `rule_files:` in prometheus.yml; test with `promtool test rules`.
groups:
  - name: keyward
    rules:
      - alert: KeywardCheckFailing
        expr: keyward_check_success == 0
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: "keyward: the health check of {{{{ $labels.account }}}} ({{{{ $labels.venue }}}}) has failed for 5 minutes"
          description: "Run `keyward doctor {{{{ $labels.account }}}}` to see why, then `keyward check {{{{ $labels.account }}}}`."
      - alert: KeywardSessionExpiring
        expr: keyward_token_expiry_timestamp_seconds - time() < 300
        for: 2m
        labels:
          severity: warning
        annotations:
          summary: "keyward: the session of {{{{ $labels.account }}}} ({{{{ $labels.venue }}}}) expires within 5 minutes and was not renewed"
          description: "Run `keyward login {{{{ $labels.account }}}}` for a fresh one; `keyward doctor {{{{ $labels.account }}}}` explains a failing renewal."
      - alert: KeywardRateLimitLow
        expr: keyward_rate_limit_remaining / keyward_rate_limit_limit < 0.1
        for: 1m
        labels:
          severity: warning
        annotations:
          summary: "keyward: {{{{ $labels.account }}}} ({{{{ $labels.venue }}}}) has less than 10% of its rate limit left"
          description: "Something is spending the rate limit of {{{{ $labels.account }}}}; `keyward check {{{{ $labels.account }}}}` shows the window."
      - alert: KeywardKeyTooOld
        expr: keyward_key_age_seconds > keyward_key_max_age_seconds
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: "keyward: the key of {{{{ $labels.account }}}} ({{{{ $labels.venue }}}}) is older than its maximum age"
          description: "Run `keyward rotate {{{{ $labels.account }}}}`."
      - alert: KeywardClockSkew
        expr: abs(keyward_clock_skew_seconds) > 5
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: "keyward: this machine's clock is over 5 s off {{{{ $labels.venue }}}}'s (account {{{{ $labels.account }}}})"
          description: "Enable NTP time sync; `keyward doctor {{{{ $labels.account }}}}` shows the skew."
      - alert: KeywardLoginBlocked
        expr: keyward_login_blocked == 1
        labels:
          severity: critical
        annotations:
          summary: "keyward: automatic logins of {{{{ $labels.account }}}} ({{{{ $labels.venue }}}}) are blocked after a failed login"
          description: "Run `keyward doctor {{{{ $labels.account }}}}`, fix the credentials, then `keyward login {{{{ $labels.account }}}}`."
      - alert: KeywardVaultUnreadable
        expr: keyward_up == 0
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: "keyward: the monitor on {{{{ $labels.instance }}}} cannot read its vault"
          description: "Run `keyward status` (is the agent gone?) and `journalctl --user -u keyward-monitor` on that host."
      - alert: KeywardMonitorDown
        expr: up{{job="{job}"}} == 0
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: "keyward: the monitor on {{{{ $labels.instance }}}} is down"
          description: "Run `systemctl --user status keyward-monitor` on that host, or start `keyward monitor`."
      - alert: KeywardMonitorAbsent
        expr: absent(keyward_up)
        for: 10m
        labels:
          severity: critical
        annotations:
          summary: "keyward: no keyward monitor has reported for 10 minutes"
          description: "Start `keyward monitor` (see `keyward monitor --print-systemd`) and check the scrape config."
"""


def alert_rules(job: str = DEFAULT_JOB) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", job):
        from vault.core.errors import InputError

        raise InputError(f"--job {job[:80]!r} is not a plain job name", hint="use letters, digits and _ . : -")
    return ALERT_RULES.format(job=job)


def systemd_quote(arg: str) -> str:
    """One ExecStart= word: double-quoted with backslash escapes, and `%` doubled so
    systemd does not read it as a specifier, `$` doubled so it is not a variable."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    if escaped and escaped == arg and re.fullmatch(r"[A-Za-z0-9_@+=:,./-]+", arg):
        return arg
    return f'"{escaped}"'


def keyward_executable() -> list[str]:
    """How to start this keyward again: its console script beside the interpreter, else
    `python -m vault`."""
    script = Path(sys.executable).with_name("keyward")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "vault"]


CREDENTIAL = "keyward-passphrase"


def systemd_unit(vault_path: Path, monitor_args: list[str], passphrase_file: str | None) -> str:
    """A user unit for `keyward monitor` on this vault, installable as it is."""
    exec_start = " ".join(systemd_quote(a) for a in [*keyward_executable(), "--vault", str(vault_path), "monitor", *monitor_args])
    if passphrase_file:
        source = os.path.abspath(os.path.expanduser(passphrase_file))
        cred = f"LoadCredential={CREDENTIAL}:{source.replace('%', '%%')}"
        cred_note = "# The passphrase file, handed to the monitor as a credential ($CREDENTIALS_DIRECTORY)."
    else:
        cred = f"LoadCredential={CREDENTIAL}:%h/.config/keyward/passphrase"
        cred_note = (
            "# Without an unlock agent the monitor reads the passphrase from this credential. Create it with:\n"
            "#   install -m 600 /dev/null ~/.config/keyward/passphrase && $EDITOR ~/.config/keyward/passphrase\n"
            "# (or delete this line if a `keyward unlock --tokens-only` agent always runs)."
        )
    return f"""\
# ~/.config/systemd/user/keyward-monitor.service  (keyward monitor --print-systemd)
#   systemctl --user daemon-reload && systemctl --user enable --now keyward-monitor
#   journalctl --user -u keyward-monitor -f
[Unit]
Description=keyward monitor: token health of {vault_path.name} as Prometheus metrics
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={exec_start}
{cred_note}
{cred}
Restart=on-failure
RestartSec=10s
# SIGTERM is a clean stop (exit 0): not restarted.
KillSignal=SIGTERM
TimeoutStopSec=60s
# (No mount-namespace hardening: PrivateTmp= and ProtectSystem= fail in many user managers.)
NoNewPrivileges=yes
UMask=0077

[Install]
WantedBy=default.target
"""
