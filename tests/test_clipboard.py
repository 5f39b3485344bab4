"""The clipboard: OSC 52 sequences (pure), a system tool (a stand-in `xclip` on PATH that
keeps the clipboard in a file), clearing after N s only if the clipboard still holds our
value, OSC 52 written to the terminal and never to a redirected stdout."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
from pathlib import Path

import pexpect
import pytest

from vault.ops import clipboard
from vault.core.errors import InputError
from vault.core.service import VaultService

from .conftest import PASSPHRASE, REPO
from .test_agent import wait_until
from .test_lifecycle_capture import assert_no_secrets

FAKE_XCLIP = """#!/bin/sh
# A stand-in for xclip: the "clipboard" is the file named by $FAKE_CLIPBOARD.
for a in "$@"; do
  case "$a" in -out|-o) cat "$FAKE_CLIPBOARD" 2>/dev/null; exit 0;; esac
done
cat > "$FAKE_CLIPBOARD.tmp.$$" && mv "$FAKE_CLIPBOARD.tmp.$$" "$FAKE_CLIPBOARD"
"""


@pytest.fixture
def fake_clipboard(tmp_path: Path):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    tool = bindir / "xclip"
    tool.write_text(FAKE_XCLIP)
    tool.chmod(0o755)
    store = tmp_path / "clipboard" / "contents"
    store.parent.mkdir()
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "DISPLAY": ":99", "FAKE_CLIPBOARD": str(store),
           "WAYLAND_DISPLAY": ""}
    return store, env


@pytest.fixture
def account(kw, sb):
    assert kw.init().code == 0
    issued = sb.issue("hypersolutions")
    assert kw("capture", "hypersolutions", "h", input=json.dumps(issued)).code == 0
    return kw, issued


def set_clear_seconds(kw, seconds: int) -> None:
    service = VaultService.unlock(kw.vault_path, PASSPHRASE)
    service.transact(lambda data: setattr(data.settings, "clipboard_clear_seconds", seconds))


# --- OSC 52, pure ---------------------------------------------------------------------------


def test_osc52_sequences():
    assert clipboard.osc52("hi") == "\x1b]52;c;aGk=\x07"
    assert clipboard.osc52("é") == "\x1b]52;c;" + base64.b64encode("é".encode()).decode() + "\x07"
    assert clipboard.osc52("hi", multiplexer="tmux") == "\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\"
    assert clipboard.osc52("hi", multiplexer="screen") == "\x1bP\x1b]52;c;aGk=\x07\x1b\\"
    assert clipboard.osc52_clear() == "\x1b]52;c;!\x07"
    assert clipboard.detect_multiplexer({"TMUX": "/tmp/tmux-0/default,1,0"}) == "tmux"
    assert clipboard.detect_multiplexer({"TERM": "screen-256color"}) == "screen"
    assert clipboard.detect_multiplexer({"TERM": "xterm"}) is None


def test_backend_choice(tmp_path, fake_clipboard):
    _, env = fake_clipboard
    assert clipboard.choose_backend(env).name == "xclip"
    assert clipboard.choose_backend(env | {"DISPLAY": ""}, tty_path=str(tmp_path / "no-tty")) is None
    assert clipboard.choose_backend(env | {"KEYWARD_CLIPBOARD": "none"}) is None
    assert clipboard.choose_backend(env | {"KEYWARD_CLIPBOARD": "osc52"}).name == "osc52"
    with pytest.raises(InputError):
        clipboard.choose_backend({"KEYWARD_CLIPBOARD": "bogus"})


def test_still_ours_compares_a_fingerprint_not_the_value():
    salt = os.urandom(16)
    mac = clipboard.fingerprint(salt, "SECRET-VALUE")
    assert clipboard.still_ours("SECRET-VALUE", salt, mac)
    assert clipboard.still_ours("SECRET-VALUE\n", salt, mac)
    assert not clipboard.still_ours("something the user copied", salt, mac)
    assert not clipboard.still_ours(None, salt, mac)
    assert b"SECRET-VALUE" not in salt + mac


# --- a system clipboard tool ----------------------------------------------------------------


def test_show_copy_puts_the_secrets_on_the_clipboard_and_clears_them(account, fake_clipboard, tmp_path):
    kw, issued = account
    store, env = fake_clipboard
    set_clear_seconds(kw, 1)
    r = kw("show", "h", "--copy", env=env)
    assert r.code == 0, r.err
    assert "copied to the clipboard (xclip); cleared in 1 s unless it changes" in r.err
    assert json.loads(store.read_text()) == {"api_key": issued["api_key"], "jwt_key": issued["jwt_key"]}
    assert wait_until(lambda: store.read_text() == "", 10), "the clipboard was not cleared"
    assert_no_secrets([issued["api_key"], issued["jwt_key"]], r.out, r.err, root=tmp_path,
                      allow=(store.parent,))
    actions = [e["action"] for e in json.loads(kw("audit", "h", "--json").out)["entries"]]
    assert "copy" in actions


def test_a_clipboard_the_user_changed_is_left_alone(account, fake_clipboard):
    kw, issued = account
    store, env = fake_clipboard
    set_clear_seconds(kw, 1)
    assert kw("show", "h", "--copy", env=env).code == 0
    store.write_text("something the user copied since")  # well within the second
    time.sleep(2.5)
    assert store.read_text() == "something the user copied since"


def test_copy_secret_api_for_the_dashboard(fake_clipboard, monkeypatch):
    store, env = fake_clipboard
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    result = clipboard.copy_secret("TOKEN-FOR-THE-DASHBOARD", None, clear_after=0)
    assert (result.backend, result.clears_after) == ("xclip", None)
    assert store.read_text() == "TOKEN-FOR-THE-DASHBOARD"
    result = clipboard.copy_secret("SECOND-VALUE", None, clear_after=1)
    assert result.clears_after == 1
    assert wait_until(lambda: store.read_text() == "", 10)


def test_token_and_headers_copy_instead_of_printing(kw, sb, fake_clipboard, tmp_path):
    import jwt

    assert kw.init().code == 0
    pt = sb.issue("powertrade")
    assert kw("capture", "powertrade", "pt", "--base-url", sb.base_url("powertrade"), input=json.dumps(pt)).code == 0
    store, env = fake_clipboard
    r = kw("token", "pt", "--copy", env=env)
    assert r.code == 0, r.err
    token = store.read_text()
    assert r.out == "" and token not in r.err
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == pt["api_key"]
    r = kw("headers", "pt", "--copy", "--curl", env=env)
    assert r.code == 0 and r.out == ""
    assert store.read_text().startswith("-H 'X-Power-Trade: ")
    copies = [e["detail"] for e in json.loads(kw("audit", "pt", "--json").out)["entries"] if e["action"] == "copy"]
    assert copies == ["token", "headers"]
    assert_no_secrets([pt["private_key"].splitlines()[1]], r.out, r.err, root=tmp_path)


def test_no_clipboard_is_a_one_line_error(account):
    kw, _ = account
    r = kw("show", "h", "--copy", env={"KEYWARD_CLIPBOARD": "none"})
    assert r.code == InputError.exit_code and "no clipboard available" in r.err and "Traceback" not in r.err


# --- OSC 52 on a real terminal ------------------------------------------------------------------


def test_osc52_goes_to_the_terminal_never_to_a_redirected_stdout(account, tmp_path):
    kw, issued = account
    out = tmp_path / "stdout.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {
        "PYTHONPATH": str(REPO), "KEYWARD_CLIPBOARD": "osc52", "TERM": "xterm-256color", "TMUX": ""}
    cmd = (f'"{sys.executable}" -m vault --vault "{kw.vault_path}" --passphrase-file "{kw.passphrase_file}" '
           f'show h --copy > "{out}"')
    child = pexpect.spawn("/bin/sh", ["-c", cmd], env=env, encoding="utf-8", timeout=30)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    match = re.search(r"\x1b\]52;c;([A-Za-z0-9+/=]+)\x07", child.before)
    assert match, "no OSC 52 sequence reached the terminal"
    assert json.loads(base64.b64decode(match.group(1))) == {"api_key": issued["api_key"], "jwt_key": issued["jwt_key"]}
    assert "will not clear it" in child.before
    redirected = out.read_text()
    assert "\x1b]52" not in redirected and "h  (hypersolutions" in redirected
    assert_no_secrets([issued["api_key"], issued["jwt_key"]], redirected, root=tmp_path)


# --- through the unlock agent ---------------------------------------------------------------------

from .test_agent import agent, short_runtime  # noqa: E402,F401  (fixtures: `keyward unlock` for real)


def test_copy_through_the_unlock_agent_happens_here_and_is_recorded(kw, sb, fake_clipboard, agent, tmp_path):
    """With an agent holding the vault, `token --copy` must still copy on the caller's
    clipboard (the agent has no display, no terminal: it was started without the fake
    xclip), be recorded in the trail, and clear after the vault's setting."""
    import jwt

    assert kw.init().code == 0
    pt = sb.issue("powertrade")
    assert kw("capture", "powertrade", "pt", "--base-url", sb.base_url("powertrade"), input=json.dumps(pt)).code == 0
    set_clear_seconds(kw, 1)
    agent("--ttl", "10m")
    store, env = fake_clipboard
    r = kw("token", "pt", "--copy", env=env, passphrase=False)  # no passphrase: only the agent can answer
    assert r.code == 0, r.both
    assert r.out == "" and "copied to the clipboard (xclip); cleared in 1 s" in r.err
    token = store.read_text()
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == pt["api_key"]
    assert wait_until(lambda: store.read_text() == "", 10), "the clipboard was not cleared"
    r = kw("headers", "pt", "--copy", env=env, passphrase=False)
    assert r.code == 0 and store.read_text().startswith("X-Power-Trade: ")
    entries = json.loads(kw("audit", "pt", "--json").out)["entries"]
    assert [e["detail"] for e in entries if e["action"] == "copy"] == ["token", "headers"]
    assert_no_secrets([pt["private_key"].splitlines()[1], token], r.out, r.err, root=tmp_path,
                      allow=(store.parent,))


def test_record_copy_names_an_existing_account_and_a_known_kind(service):
    from vault.core.errors import AccountNotFound
    from vault.core.model import Account

    service.add_account(Account(label="h", venue="hypersolutions", base_url="https://x.invalid",
                                fields={"api_key": "abcdef0123456789", "jwt_key": "JWT-KEY-0123456789"}))
    assert clipboard.record_copy(service, "h", "token") == 30
    with pytest.raises(AccountNotFound):
        clipboard.record_copy(service, "nope", "token")
    with pytest.raises(InputError):
        clipboard.record_copy(service, "h", "the private key")
    assert [(e.action, e.detail) for e in service.data.audit if e.action == "copy"] == [("copy", "token")]
