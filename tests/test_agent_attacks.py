"""The unlock agent against an attacker running as the same user (issue 10).

Each test is one of the attacks reproduced against the agent of protocol 1, run for real:
`keyward unlock` and the CLI as subprocesses, the sandbox and an attacker's server on
127.0.0.1, a watcher process without CAP_SYS_PTRACE standing in for another process of
the same user (the tests run as root, which may read any process; a process of the same
non-root user may not read a non-dumpable one).
"""

from __future__ import annotations

import ctypes
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from vault.agent.protocol import PROTOCOL_VERSION, recv, send
from vault.core.model import Account
from vault.core.service import VaultService
from vault.ops.bundle import host_of

from .conftest import PASSPHRASE, REPO, KeywardCLI, sandbox_fields
from .test_agent import NO_PASSPHRASE, agent, agent_socket, alive, serving, short_runtime, wait_until  # noqa: F401
from .test_agent import runtime  # noqa: F401
from .test_agent_commands import no_prompt

CAP_SYS_PTRACE = 19
PR_CAPBSET_DROP = 24


def as_another_process_of_this_user() -> None:
    """preexec_fn: drop CAP_SYS_PTRACE from the bounding set, so the exec'd program is,
    to the kernel's ptrace checks, just another process of the same uid."""
    libc = ctypes.CDLL(None, use_errno=True)
    if os.geteuid() == 0 and libc.prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")


# --- 1. a stored secret never goes to a host it was not stored for ------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    """The attacker's server: records every request body it is sent."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        type(self).bodies.append(self.rfile.read(length) + json.dumps(dict(self.headers)).encode())
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": {"code": "INVALID_API_KEY", "message": "no"}}')

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def attacker() -> Any:
    Recorder.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def evil_bundle(tmp_path: Path, sb: Any, attacker: Any) -> tuple[Path, Path]:
    """A bundle, made with keyward itself in another vault, that puts label `tr` at the
    attacker's server with credentials of the attacker's choosing."""
    home = tmp_path / "evil-home"
    (home / "run").mkdir(parents=True)
    (home / "run").chmod(0o700)
    pw = tmp_path / "evil-pass"
    pw.write_text("the attacker's vault passphrase\n")
    evil = KeywardCLI(tmp_path / "evil.kw", pw, home)
    assert evil.init().code == 0
    fields = sandbox_fields(sb, "tradeready")  # well-formed, and not the victim's
    url = f"http://127.0.0.1:{attacker.server_address[1]}"
    assert evil("add", "tradeready", "tr", "--base-url", url, "--from-json", "-", input=json.dumps(fields)).code == 0
    bundle_pass = tmp_path / "bundle-pass"
    bundle_pass.write_text("a bundle passphrase the victim was told\n")
    bundle = tmp_path / "evil.kwb"
    done = evil("export", "--encrypted", str(bundle), "--bundle-passphrase-file", str(bundle_pass))
    assert done.code == 0, done.both
    return bundle, bundle_pass


@pytest.mark.parametrize("mode", [(), ("--tokens-only",)])
def test_a_bundle_and_a_rollback_never_carry_a_stored_secret_to_another_host(
    vault: KeywardCLI, sb: Any, agent: Any, attacker: Any, tmp_path: Path, mode: tuple[str, ...]
) -> None:
    real = sandbox_fields(sb, "tradeready")
    no_prompt(vault("add", "tradeready", "tr", "--base-url", sb.base_url("tradeready"), "--from-json", "-",
                    input=json.dumps(real)))
    bundle, bundle_pass = evil_bundle(tmp_path, sb, attacker)
    agent(*mode)

    # Without the passphrase (what another process can do): the move is not made.
    done = vault("import", str(bundle), "--on-conflict", "replace", "--bundle-passphrase-file", str(bundle_pass),
                 passphrase=False)
    assert done.code != 0 and NO_PASSPHRASE in done.err, done.both
    vault("rotate", "tr", "--rollback", "--no-verify", passphrase=False)
    vault("login", "tr", passphrase=False)
    assert Recorder.bodies == []
    stored = VaultService.unlock(vault.vault_path, PASSPHRASE).get("tr")
    assert stored.base_url == sb.base_url("tradeready") and stored.fields == real


def test_a_replacing_import_says_where_the_account_moves_and_a_rollback_moves_it_back(
    vault: KeywardCLI, sb: Any, attacker: Any, tmp_path: Path
) -> None:
    """With the passphrase the user may take the bundle; it says the host changes, the
    trail records both hosts, and rolling back brings the old credential back *with its
    host*: the attacker's server never sees the stored secret."""
    real = sandbox_fields(sb, "tradeready")
    no_prompt(vault("add", "tradeready", "tr", "--base-url", sb.base_url("tradeready"), "--from-json", "-",
                    input=json.dumps(real)))
    bundle, bundle_pass = evil_bundle(tmp_path, sb, attacker)
    evil_host = f"http://127.0.0.1:{attacker.server_address[1]}"
    done = vault("import", str(bundle), "--on-conflict", "replace", "--bundle-passphrase-file", str(bundle_pass))
    assert done.code == 0, done.both
    assert "base URL" in done.out and evil_host in done.out, done.out
    trail = [e for e in VaultService.unlock(vault.vault_path, PASSPHRASE).data.audit if e.action == "import"]
    assert trail[-1].detail.endswith(f"base URL {host_of(sb.base_url('tradeready'))} -> {evil_host}"), trail[-1].detail

    assert vault("rotate", "tr", "--rollback", "--no-verify").code == 0
    done = vault("login", "tr")
    assert done.code == 0, done.both  # the real venue, with the real credential
    leaked = b"".join(Recorder.bodies)
    assert real["api_secret"].encode() not in leaked and real["api_key"].encode() not in leaked
    stored = VaultService.unlock(vault.vault_path, PASSPHRASE).get("tr")
    assert stored.base_url == sb.base_url("tradeready") and stored.fields == real


# --- 2. the key handoff cannot be intercepted ------------------------------------------------

WATCHER = r"""
import json, os, sys, time
vault, stop, control, seen_log = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
deadline = time.monotonic() + 120
stolen, seen, others, control_ok = [], set(), set(), False
while time.monotonic() < deadline and not os.path.exists(stop):
    if not control_ok:  # a dumpable process of the same user: its descriptors open
        try:
            os.close(os.open(f"/proc/{control}/fd/0", os.O_RDONLY | os.O_NONBLOCK))
            control_ok = True
        except OSError:
            pass
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid in others:
            continue
        if pid not in seen:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    argv = fh.read().split(b"\0")
            except OSError:
                continue
            if not argv or argv == [b""]:
                continue  # not exec'd yet: look again
            if vault.encode() not in argv:
                others.add(pid)
                continue
            if b"vault.agent" not in argv:
                continue  # `keyward unlock`, or its child between fork and exec: look again
            seen.add(pid)
            with open(seen_log, "a") as log:  # the test locks this agent only once it was seen
                log.write(pid + "\n")
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:  # a channel (pipe, socket), not a file the interpreter opened while starting
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/"):
                    continue
                f = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                data = os.read(f, 64)
                if data:
                    stolen.append(data.hex())
            except OSError:
                pass
            finally:
                os.close(f)
print(json.dumps({"stolen": stolen, "seen": sorted(seen), "control_ok": control_ok}))
"""


def test_a_watcher_of_the_same_user_gets_nothing_while_the_agent_starts(vault: KeywardCLI, short_runtime: Path,
                                                                         tmp_path: Path) -> None:
    """`keyward unlock` and the watcher run with the same capabilities (CAP_SYS_PTRACE
    dropped from both): as two processes of one ordinary user.  The watcher polls
    /proc for the agent and tries to open and read every descriptor it has, as the
    issue's watcher read the key from the agent's key pipe five times out of five."""
    vault_path = os.path.realpath(vault.vault_path)
    stop = tmp_path / "stop-watching"
    control = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], stdin=subprocess.PIPE,
                               preexec_fn=as_another_process_of_this_user)
    seen_log = tmp_path / "agents-seen"
    seen_log.touch()
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER, vault_path, str(stop), str(control.pid), str(seen_log)],
                               stdout=subprocess.PIPE, text=True, preexec_fn=as_another_process_of_this_user)
    base = [sys.executable, "-m", "vault", "--vault", str(vault.vault_path), "--passphrase-file", str(vault.passphrase_file)]
    try:
        for round_ in range(5):
            done = subprocess.run(base + ["unlock", "--json"], env=vault.env, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=as_another_process_of_this_user)
            assert done.returncode == 0, done.stderr
            # The agent lives until `lock`: a watcher starved of CPU by a loaded machine
            # (a full parallel test run) once missed all five.  It gets the time it needs.
            deadline = time.monotonic() + 30
            while len(seen_log.read_text().split()) <= round_ and time.monotonic() < deadline:
                time.sleep(0.02)
            assert vault("lock", passphrase=False).code == 0
    finally:
        stop.touch()
        out, _ = watcher.communicate(timeout=60)
        control.kill()
        control.wait()
    report = json.loads(out)
    assert report["control_ok"], "the watcher cannot read even a dumpable process: the test proves nothing"
    assert report["seen"], "the watcher never saw an agent start: the test proves nothing"
    assert report["stolen"] == []


# --- 3. a tokens-only client cannot widen exposure -----------------------------------------------


def test_a_tokens_only_agent_refuses_every_change_over_the_socket(service: VaultService, runtime: Path) -> None:  # noqa: F811
    from vault.ops.venue_ops import VenueOps

    service.add_account(Account(label="desk", venue="hypersolutions", base_url="http://127.0.0.1:1",
                                fields={"api_key": "k" * 16}))
    ops = VenueOps(service)
    with serving(service, ops, ttl=60, tokens_only=True) as server:
        for op, args in (("set_setting", {"label": "desk", "name": "token_lifetime_s", "value": "86400"}),
                         ("set_key_max_age", {"label": "desk", "days": 3650}),
                         ("remove_account", {"label": "desk"}),
                         ("rotate", {"label": "desk", "rollback": True, "verify": False, "source": ""}),
                         ("import_accounts", {"accounts": [], "policy": "replace"}),
                         ("export_accounts", {"labels": ["desk"], "detail": "encrypted bundle to /tmp/x"}),
                         ("store_account", {"account": {}, "action": "add"})):
            reply = raw(server.sock_path, {"v": PROTOCOL_VERSION, "op": op, **args})
            assert reply["ok"] is False and reply["error"]["type"] == "AgentDeclined", (op, reply)
        assert raw(server.sock_path, {"v": PROTOCOL_VERSION, "op": "setting_rows", "label": "desk"})["ok"] is True
        assert service.get("desk").settings == {} and service.get("desk").generations == []


def raw(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(path))
        send(s, request)
        reply = recv(s, limit=64 << 20)
        assert reply is not None
        return reply


# --- 4. no waiting behind a slow venue, no slots taken by half-open connections ----------------------


class Drip:
    """A server that accepts and answers one byte every few seconds: a hung venue."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                self.sock.settimeout(0.2)
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            for byte in b"HTTP/1.1 200 OK\r\n":
                if self.stop.wait(3):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_a_token_is_served_while_a_check_hangs_on_a_dripping_venue(vault: KeywardCLI, sb: Any, agent: Any) -> None:
    drip = Drip()
    try:
        no_prompt(vault("add", "tradeready", "slow", "--base-url", f"http://127.0.0.1:{drip.port}", "--from-json", "-",
                        input=json.dumps(sandbox_fields(sb, "tradeready"))))
        no_prompt(vault("capture", "powertrade", "desk", "--base-url", sb.base_url("powertrade"),
                        input=json.dumps(sandbox_fields(sb, "powertrade"))))
        agent()
        check = subprocess.Popen([sys.executable, "-m", "vault", "--vault", str(vault.vault_path), "check", "slow"],
                                 env=vault.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            time.sleep(1.0)  # let the check reach the dripping server
            assert check.poll() is None, "the check ended before it could hold anything up"
            for _ in range(3):
                done = vault("token", "desk", passphrase=False, timeout=20)
                assert done.code == 0, done.both
            assert check.poll() is None  # answered while the check was still hanging
        finally:
            check.kill()
            check.wait()
    finally:
        drip.close()


def test_half_open_connections_are_dropped_and_do_not_lock_clients_out(vault: KeywardCLI, sb: Any, agent: Any) -> None:
    no_prompt(vault("capture", "powertrade", "desk", "--base-url", sb.base_url("powertrade"),
                    input=json.dumps(sandbox_fields(sb, "powertrade"))))
    agent()
    path = agent_socket(vault)
    held = []
    try:
        for i in range(100):
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(path))
            if i % 2:
                s.sendall(b"\x00\x00")  # half a length prefix, then nothing
            held.append(s)
        for _ in range(3):
            done = vault("token", "desk", passphrase=False)
            assert done.code == 0, done.both  # a slot, not a passphrase prompt
        # The agent hangs up on a connection that never sends a whole request.
        held[0].settimeout(15)
        assert held[0].recv(1) == b""
        held[1].settimeout(15)
        assert held[1].recv(1) == b""
    finally:
        for s in held:
            s.close()


def test_lock_returns_once_the_agent_is_gone(vault: KeywardCLI, sb: Any, agent: Any) -> None:
    drip = Drip()
    try:
        no_prompt(vault("add", "tradeready", "slow", "--base-url", f"http://127.0.0.1:{drip.port}", "--from-json", "-",
                        input=json.dumps(sandbox_fields(sb, "tradeready"))))
        info = agent()
        check = subprocess.Popen([sys.executable, "-m", "vault", "--vault", str(vault.vault_path), "check", "slow"],
                                 env=vault.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            time.sleep(1.0)
            done = vault("lock", passphrase=False, timeout=30)
            assert done.code == 0 and "stopped and dropped the vault" in done.out, done.both
            assert not alive(info["pid"])  # "locked" means the key is gone, not merely asked
        finally:
            check.kill()
            check.wait()
    finally:
        drip.close()


# --- 6. exec gives the child only what the docs list ---------------------------------------------------


def documented_exec_variables() -> set[str]:
    doc = (REPO / "docs" / "python-api.md").read_text()
    table = doc.split("| variable | value |", 1)[1].split("\n\n", 1)[0]
    names = set()
    for line in table.splitlines():
        cell = line.split("|")[1] if line.startswith("|") else ""
        names.update(part.strip(" `") for part in cell.split(",") if part.strip(" `").startswith("KEYWARD_"))
    return names


def test_exec_gives_the_child_only_the_documented_variables(vault: KeywardCLI, sb: Any, agent: Any) -> None:
    no_prompt(vault("capture", "powertrade", "desk", "--base-url", sb.base_url("powertrade"),
                    input=json.dumps(sandbox_fields(sb, "powertrade"))))
    probe = "import json, os; print(json.dumps(sorted(k for k in os.environ if k.startswith('KEYWARD_'))))"
    extra = {"KEYWARD_PASSPHRASE_FILE": str(vault.passphrase_file), "KEYWARD_VAULT": str(vault.vault_path),
             "KEYWARD_CLIPBOARD": "none"}
    for passphrase in (True, False):
        if not passphrase:
            agent()
        done = vault("exec", "desk", "--", sys.executable, "-c", probe, env=extra, passphrase=passphrase)
        assert done.code == 0, done.both
        seen = set(json.loads(done.out))
        assert seen and seen <= documented_exec_variables(), seen - documented_exec_variables()
        assert not seen & set(extra)


# --- 7. the runtime directory cannot be squatted ----------------------------------------------------


def test_another_user_cannot_stop_unlock_by_squatting_the_temp_dir(vault: KeywardCLI, sb: Any, tmp_path: Path) -> None:
    tmp = Path(f"/tmp/kw-{os.getpid()}-{tmp_path.name[-6:]}")
    tmp.mkdir(mode=0o1777)
    tmp.chmod(0o1777)  # a shared, sticky temp dir like /tmp
    try:
        squat = tmp / f"keyward-{os.getuid()}"
        squat.mkdir(mode=0o755)
        os.chown(squat, 65534, 65534)  # made first by another user (nobody)
        env = {"TMPDIR": str(tmp), "XDG_RUNTIME_DIR": ""}
        no_prompt(vault("capture", "powertrade", "desk", "--base-url", sb.base_url("powertrade"),
                        input=json.dumps(sandbox_fields(sb, "powertrade"))))
        done = vault("unlock", env=env)
        assert done.code == 0, done.both
        try:
            done = vault("token", "desk", passphrase=False, env=env)
            assert done.code == 0, done.both
            made = [p for p in tmp.iterdir() if p != squat]
            assert len(made) == 1 and made[0].name != squat.name and (made[0].stat().st_mode & 0o777) == 0o700
        finally:
            vault("lock", passphrase=False, env=env)
    finally:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
