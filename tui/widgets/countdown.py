"""The live cells: token countdown, rate-limit bar, health, key age.

Pure functions of (stored state, now): nothing here counts down by itself.  The app's one
timer asks for a cell again each second and the table redraws it only if the text changed.
"""

from __future__ import annotations

from rich.text import Text

from vault.net.http import skew_matters
from vault.core.model import Health, RateLimit, Token

WARN_FRACTION = 0.2  # a token in the last 20% of its life is drawn in the warning colour
DEFAULT_LIFETIME_S = 30.0  # no token to judge by: PowerTrade's window, the shortest there is
BAR_CELLS = 8
NONE = Text("—", style="dim")


def duration(seconds: float) -> str:
    """mm:ss under an hour, h:mm:ss beyond, d+hh:mm beyond a day."""
    s = max(0, int(seconds))
    if s >= 86400:
        return f"{s // 86400}d{(s % 86400) // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"
    return f"{s // 60:02d}:{s % 60:02d}"


def ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    if s < 86400:
        return f"{s // 3600}h ago"
    return f"{s // 86400}d ago"


def token_state(token: Token | None, now: float, window: float | None = None) -> str:
    """none | signed | live | warn | expired: the one rule the table, the pane and tests
    share.  `window`: the account signs every request afresh with a signature living that
    long (vault.ops.views.signing_window): nothing to expire, so "signed", never red."""
    if window is not None:
        return "signed"
    if token is None:
        return "none"
    if token.expires_at is None:
        return "live"
    left = token.expires_at - now
    if left <= 0:
        return "expired"
    life = token.expires_at - token.issued_at
    return "warn" if life > 0 and left < WARN_FRACTION * life else "live"


def token_cell(token: Token | None, now: float, window: float | None = None, long: bool = False) -> Text:
    """The token column: a countdown, or for an account signed per request its window
    ("30s/req"; `long`: "signed per request, 30 s window")."""
    state = token_state(token, now, window)
    if state == "none":
        return NONE
    if state == "signed":
        assert window is not None
        if long:
            return Text(f"signed per request, {window:.0f} s window", style="green")
        return Text(f"{window:.0f}s/req", style="green")
    assert token is not None
    if state == "expired":
        return Text("expired", style="bold red")
    if token.expires_at is None:
        return Text("no expiry", style="green")
    return Text(duration(token.expires_at - now), style="bold yellow" if state == "warn" else "green")


def bar(fraction: float, cells: int = BAR_CELLS) -> tuple[str, str]:
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * cells)
    return "▰" * filled, "▱" * (cells - filled)


def rate_cell(rl: RateLimit | None, now: float, short: bool = False) -> Text:
    """remaining/limit as a bar and the reset countdown; `short`: a 3-cell bar and no
    countdown (narrow terminals; the detail screen shows it all)."""
    if rl is None or rl.limit is None or rl.remaining is None or rl.limit <= 0:
        return NONE
    fraction = rl.remaining / rl.limit
    style = "red" if fraction < 0.1 else "yellow" if fraction < 0.25 else "cyan"
    full, empty = bar(fraction, 3 if short else BAR_CELLS)
    text = Text()
    text.append(full, style=style)
    text.append(empty, style="dim")
    text.append(f" {rl.remaining}/{rl.limit}")
    if not short and rl.reset_at is not None and rl.reset_at > now:
        text.append(f" ↻{duration(rl.reset_at - now)}", style="dim")
    return text


def skew_warning(health: Health | None, token: Token | None = None) -> str:
    """A warning when the venue's clock is off by enough to break this account's tokens
    (vault.net.http decides what "enough" is)."""
    if health is None or health.skew_s is None:
        return ""
    lifetime = DEFAULT_LIFETIME_S
    if token is not None and token.expires_at is not None and token.expires_at > token.issued_at:
        lifetime = token.expires_at - token.issued_at
    if not skew_matters(health.skew_s, lifetime):
        return ""
    return f"skew {health.skew_s:+.0f}s"


def health_cell(health: Health | None, now: float, token: Token | None = None, short: bool = False) -> Text:
    """ok or failing, latency, last checked, and the clock-skew warning when there is one;
    `short` (narrow terminals): no latency, and the warning instead of the time."""
    if health is None:
        return Text("unchecked", style="dim")
    text = Text()
    if health.ok:
        text.append("● ok", style="green")
    else:
        text.append("✖ failing", style="bold red")
    skew = skew_warning(health, token)
    if health.latency_ms is not None and not skew and not short:  # the warning matters more than latency
        text.append(f" {health.latency_ms:.0f}ms")
    if not (short and skew):
        text.append(f" {ago(now - health.checked_at)}", style="dim")
    if skew:
        text.append(f" ⚠ {skew}", style="bold yellow")
    return text


def age_cell(age_days: float, max_age_days: int) -> Text:
    days = f"{max(0, age_days):.0f}d"
    if age_days > max_age_days:
        return Text(days + "!", style="bold red")
    if age_days > 0.8 * max_age_days:
        return Text(days, style="yellow")
    return Text(days)
