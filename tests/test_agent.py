"""The unlock agent: its socket, its peers, its lifetime, and the CLI around it.

Two layers.  In-process tests drive `AgentServer` over a real Unix socket with a fake
clock and a recording VenueOps stand-in, to pin the rules exactly (who may connect,
what the idle/absolute TTL counts, what an error may carry).  Process tests run the
real thing: `keyward unlock` spawning a detached agent, `keyward token` served by it
against the loopback sandbox, `lock`, TTL expiry, SIGKILL, and what lands on disk.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.conftest import PASSPHRASE, SMALL_KDF, KeywardCLI, Result
from vault.agent import check_private_dir, ensure_private_dir, resolved_vault, socket_name, socket_path, socket_paths
from vault.agent import protocol
from vault.agent.protocol import PROTOCOL_VERSION
from vault.agent.client import AgentClient, connect
from vault.agent.server import AgentServer
from vault.cli.agent_cmds import format_duration, parse_duration
from vault.core.errors import (
    AccountNotFound,
    AgentError,
    AuthRejected,
    InputError,
    KeywardError,
    NoTerminal,
    RateLimited,
    VaultChanged,
)
from vault.core.model import Account, Credentials, Health, Token
from vault.core.service import VaultService

HEAVY = ("textual", "httpx", "jwt", "cryptography", "argon2")


# --- helpers ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class RecordingOps:
    """VenueOps' surface over a real VaultService: looks accounts up (so a reload is
    visible), records every call, returns the real model types."""

    def __init__(self, service: VaultService) -> None:
        self.service = service
        self.calls: list[tuple[str, Any]] = []

    def refresh(self) -> bool:
        return self.service.reload()

    def _creds(self, label: str) -> Credentials:
        acct = self.service.get(label)
        return Credentials(acct.label, acct.venue, acct.base_url, Token("tok-" + label, 1.0, 2.0), {"X-Auth": "tok-" + label})

    def token(self, label: str, *, force: bool = False) -> Credentials:
        self.calls.append(("token", (label, force)))
        return self._creds(label)

    def headers(self, label: str, path: str | None = None) -> Credentials:
        self.calls.append(("headers", label))
        return self._creds(label)

    def check(self, label: str) -> Health:
        self.calls.append(("check", label))
        self.service.get(label)
        return Health(ok=True, checked_at=5.0, latency_ms=1.5, status=200)

    def check_many(self, labels: list[str]) -> dict[str, Health]:
        self.calls.append(("check_many", labels))
        return {label: Health(ok=True, checked_at=5.0) for label in labels}

    def doctor(self, label: str) -> list[str]:
        raise RuntimeError("the private key is -----BEGIN EC PRIVATE KEY----- MHcCAQEE")  # a bug carrying a value

    def login(self, label: str) -> Credentials:
        raise RateLimited("powertrade is rate limiting this key", hint="wait 3s", retry_after=3.0, status=429, code="RATE")

    def exec_env(self, label: str) -> dict[str, str]:
        return {"KEYWARD_TOKEN": "tok-" + label}


def add_account(service: VaultService, label: str = "desk") -> None:
    service.add_account(
        Account(label=label, venue="powertrade", base_url="http://127.0.0.1:1/pt", fields={"api_key": "k"})
    )


@contextmanager
def short_private_dir() -> Iterator[Path]:
    """A 0700 directory with a short path: pytest's (and xdist's) tmp paths can be too
    long for a socket in them, and then the agent would move to the shared temp dir."""
    path = Path(tempfile.mkdtemp(prefix="kwrun", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def runtime() -> Iterator[Path]:
    with short_private_dir() as run, mock.patch.dict(os.environ, {"XDG_RUNTIME_DIR": str(run)}):
        yield run


@contextmanager
def serving(service: VaultService, ops: Any, **kw: Any) -> Iterator[AgentServer]:
    server = AgentServer(service, ops, **kw)
    server.bind()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop("test over")
        thread.join(5)
        server.close()


def raw_exchange(path: Path, message: dict[str, Any]) -> dict[str, Any] | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        try:
            protocol.send(s, message)
        except protocol.ProtocolError:
            pass  # a refused peer may find the socket closed already; the refusal is still queued
        return protocol.recv(s)


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,seconds", [("2s", 2), ("15m", 900), ("8h", 28800), ("1h30m", 5400), ("90", 90), ("1.5m", 90), ("1d", 86400)]
)
def test_durations_accept_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "15x", "-5s", "0s", "8d", "1h-3m", "15 minutes"])
def test_durations_refuse_nonsense_and_out_of_range(text: str) -> None:
    with pytest.raises(InputError):
        parse_duration(text)


def test_durations_print_compactly() -> None:
    assert [format_duration(s) for s in (0.4, 45, 60, 872, 3600, 5400, 90000)] == [
        "0s", "45s", "1m", "14m32s", "1h", "1h30m", "1d1h"
    ]


# --- where the socket lives --------------------------------------------------------------------


def test_socket_path_is_per_vault_and_follows_symlinks(runtime: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.kw", tmp_path / "b.kw"
    link = tmp_path / "link.kw"
    link.symlink_to(a)
    assert socket_path(a).parent == runtime / "keyward"
    assert socket_path(a) != socket_path(b)
    assert socket_path(link) == socket_path(a) == socket_path(tmp_path / "sub" / ".." / "a.kw")
    assert resolved_vault(link) == str(a.resolve())


def test_a_runtime_dir_open_to_others_is_not_used(tmp_path: Path) -> None:
    with short_private_dir() as shared, short_private_dir() as tmp:
        shared.chmod(0o755)
        env = {"XDG_RUNTIME_DIR": str(shared), "TMPDIR": str(tmp), "XDG_STATE_HOME": str(tmp_path / "state")}
        with mock.patch.dict(os.environ, env):
            made = socket_path(tmp_path / "v.kw").parent
            assert made.parent == tmp and made.name.startswith("keyward-") and made.name != f"keyward-{os.getuid()}"
            assert stat.S_IMODE(os.lstat(made).st_mode) == 0o700
        shared.chmod(0o700)
        with mock.patch.dict(os.environ, env):
            assert socket_path(tmp_path / "v.kw").parent == shared / "keyward"


def test_a_caller_without_xdg_runtime_dir_still_finds_the_agent(service: VaultService, runtime: Path) -> None:
    """cron and `sudo -u` drop XDG_RUNTIME_DIR: the client also looks in /run/user/UID."""
    add_account(service)
    with mock.patch("vault.agent.RUN_USER", str(runtime)), serving(service, RecordingOps(service), ttl=60) as server:
        assert server.sock_path.parent == runtime / "keyward"
        with mock.patch.dict(os.environ, {"TMPDIR": "/tmp"}):
            del os.environ["XDG_RUNTIME_DIR"]
            assert runtime / "keyward" / socket_name(service.file.path) in socket_paths(service.file.path)
            client = connect(service.file.path)
            assert client is not None and client.token("desk").account == "desk"
            client.close()


def test_too_long_a_runtime_path_falls_back_to_the_temp_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 90)
    deep.mkdir(mode=0o700)
    with mock.patch.dict(os.environ, {"XDG_RUNTIME_DIR": str(deep), "TMPDIR": "/tmp", "XDG_STATE_HOME": str(tmp_path)}):
        path = socket_path(tmp_path / "v.kw")
        assert socket_paths(tmp_path / "v.kw") == [path]  # a client finds it through the recorded pointer
    try:
        assert path.parent.parent == Path("/tmp") and path.parent.name.startswith("keyward-")
        assert len(os.fsencode(path)) <= 107
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


def test_agent_dir_is_created_0700_and_unsafe_ones_are_refused(tmp_path: Path) -> None:
    made = ensure_private_dir(tmp_path / "keyward")
    assert stat.S_IMODE(os.lstat(made).st_mode) == 0o700

    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o755)
    with pytest.raises(AgentError, match="open to other users"):
        check_private_dir(loose)

    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    (tmp_path / "sym").symlink_to(target)
    with pytest.raises(AgentError, match="not a directory"):
        check_private_dir(tmp_path / "sym")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a directory away")
def test_agent_dir_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o700)
    os.chown(planted, 65534, 65534)
    with pytest.raises(AgentError, match="belongs to uid 65534"):
        check_private_dir(planted)


# --- the protocol ------------------------------------------------------------------------------


def test_typed_errors_cross_the_socket_with_class_code_and_attributes() -> None:
    cases = [
        AccountNotFound("no account labelled 'x'", hint="see `keyward list`"),
        AuthRejected("powertrade refused the signature", hint="check the key", status=401, code="BAD_SIG"),
        RateLimited("slow down", retry_after=2.5, status=429),
        VaultChanged("re-keyed", hint="unlock it again"),
    ]
    for err in cases:
        back = protocol.error_from_wire(json.loads(json.dumps(protocol.error_to_wire(err))))
        assert type(back) is type(err)
        assert (str(back), back.exit_code) == (str(err), err.exit_code)
        for attr in ("status", "code", "retry_after"):
            assert getattr(back, attr, None) == getattr(err, attr, None)


def test_an_unknown_error_type_keeps_its_message_and_exit_code() -> None:
    back = protocol.error_from_wire({"type": "FutureError", "message": "m", "hint": "h", "exit_code": 77})
    assert isinstance(back, KeywardError) and str(back) == "m: h" and back.exit_code == 77
    back = protocol.error_from_wire({"type": "SystemExit", "message": "m", "exit_code": 0})
    assert type(back) is KeywardError  # only KeywardError subclasses are ever instantiated


def test_model_objects_round_trip_and_nothing_else_is_sent() -> None:
    creds = Credentials("desk", "powertrade", "http://x", Token("v", 1.0, 61.0, "jwt"), {"X-Power-Trade": "v"}, {"A": "b"})
    payload = json.loads(json.dumps(protocol.to_wire({"c": creds, "h": [Health(True, 3.0)]})))
    back = protocol.from_wire(payload)
    assert back["c"] == creds and back["h"] == [Health(True, 3.0)]
    with pytest.raises(TypeError):
        protocol.to_wire(Account(label="x", venue="powertrade", base_url="u", fields={"private_key": "s"}))
    with pytest.raises(protocol.ProtocolError):
        protocol.from_wire({"__kw__": "Account", "fields": {}})


def test_frames_refuse_floods_and_garbage() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", protocol.MAX_FRAME + 1))
        with pytest.raises(protocol.ProtocolError, match="too large"):
            protocol.recv(b)
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", 3) + b"{x}")
        with pytest.raises(protocol.ProtocolError, match="not JSON"):
            protocol.recv(b)
    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack(">I", 10) + b"{}")
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(protocol.ProtocolError, match="mid-message"):
            protocol.recv(b)


# --- peers -------------------------------------------------------------------------------------


def test_peer_check_accepts_only_the_same_uid() -> None:
    me = os.getuid()
    assert protocol.same_user(me, me)
    assert not protocol.same_user(me + 1, me)
    assert not protocol.same_user(0, 1000)  # not even root
    assert not protocol.same_user(-1, -1)


def test_peer_credentials_are_the_kernels_record() -> None:
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        pid, uid, gid = protocol.peer_credentials(a)
    assert (pid, uid, gid) == (os.getpid(), os.getuid(), os.getgid())


def test_server_refuses_a_peer_whose_uid_differs(service: VaultService, runtime: Path) -> None:
    add_account(service)
    ops = RecordingOps(service)
    with serving(service, ops, ttl=60) as server, mock.patch.object(AgentServer, "peer_uid", lambda self, conn: os.getuid() + 1):
        assert not server.check_peer(mock.Mock())
        reply = raw_exchange(server.sock_path, {"v": PROTOCOL_VERSION, "op": "token", "label": "desk"})
        assert reply is not None and reply["ok"] is False and reply["error"]["type"] == "AgentError"
        assert "only the user who started it" in reply["error"]["message"]
        assert connect(service.file.path) is None  # the CLI treats it as "no agent" and prompts
    assert ops.calls == []  # nothing was performed for the stranger


def test_server_started_for_another_uid_refuses_us(service: VaultService, runtime: Path) -> None:
    add_account(service)
    ops = RecordingOps(service)
    with serving(service, ops, ttl=60, uid=os.getuid() + 1) as server:
        reply = raw_exchange(server.sock_path, {"v": PROTOCOL_VERSION, "op": "hello"})
        assert reply is not None and reply["ok"] is False
    assert ops.calls == []


def python_for_nobody() -> str | None:
    """An interpreter uid 65534 may run (ours may live under root's 0700 home)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            done = subprocess.run([candidate, "-I", "-c", "pass"], user=65534, group=65534, capture_output=True, timeout=30, cwd="/")
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return candidate
    return None


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_a_real_other_user_is_stopped_by_the_directory_and_by_so_peercred(service: VaultService) -> None:
    python = python_for_nobody()
    if python is None:
        pytest.skip("no python that uid 65534 can run")
    add_account(service)
    ops = RecordingOps(service)
    probe = (
        "import json,socket,struct,sys\n"
        "s=socket.socket(socket.AF_UNIX); s.settimeout(5)\n"
        "try:\n    s.connect(sys.argv[1])\nexcept OSError as e:\n    print('connect', type(e).__name__); sys.exit()\n"
        "m=json.dumps({'v':1,'op':'token','label':'desk'}).encode()\n"
        "try:\n    s.sendall(struct.pack('>I',len(m))+m)\nexcept OSError:\n    pass\n"  # refused before we spoke
        "n=struct.unpack('>I',s.recv(4))[0]; print('reply', s.recv(n).decode())\n"
    )
    run = Path(tempfile.mkdtemp(prefix="kwpeer", dir="/tmp"))  # pytest's tmp_path is closed to others
    try:
        with mock.patch.dict(os.environ, {"XDG_RUNTIME_DIR": str(run)}), serving(service, ops, ttl=60) as server:
            def as_nobody() -> str:
                return subprocess.run(
                    [python, "-I", "-c", probe, str(server.sock_path)], user=65534, group=65534,
                    capture_output=True, text=True, timeout=30, cwd="/",
                ).stdout.strip()

            assert as_nobody() == "connect PermissionError"  # stopped by the 0700 directory
            # Open the directory and the socket up, as a misconfiguration would: SO_PEERCRED still says no.
            os.chmod(run, 0o755)
            os.chmod(server.sock_path.parent, 0o755)
            os.chmod(server.sock_path, 0o666)
            out = as_nobody()
            assert out.startswith("reply "), out
            reply = json.loads(out[len("reply "):])
            assert reply["ok"] is False and "only the user who started it" in reply["error"]["message"]
    finally:
        shutil.rmtree(run, ignore_errors=True)
    assert ops.calls == []


def test_the_agent_process_cannot_dump_core_or_be_traced() -> None:
    probe = (
        "import ctypes, resource\n"
        "from vault.core.hardening import harden_process\n"
        "harden_process()\n"
        "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE))\n"  # PR_GET_DUMPABLE
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "0 (0, 0)", done.stderr


# --- the server in-process ---------------------------------------------------------------------


def test_socket_0600_in_a_0700_dir_and_removed_on_close(service: VaultService, runtime: Path) -> None:
    ops = RecordingOps(service)
    with serving(service, ops, ttl=60) as server:
        path = server.sock_path
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o700
        assert os.listdir(path.parent) == [path.name]  # no temp name, no pid file
    assert not path.exists()
    assert service.locked  # it forgot the vault


def test_operations_return_model_objects_and_typed_errors(service: VaultService, runtime: Path) -> None:
    add_account(service)
    ops = RecordingOps(service)
    with serving(service, ops, ttl=60):
        client = connect(service.file.path)
        assert isinstance(client, AgentClient)
        creds = client.token("desk", force=True)
        assert isinstance(creds, Credentials) and isinstance(creds.token, Token)
        assert creds.token.value == "tok-desk" and creds.headers == {"X-Auth": "tok-desk"}
        assert client.check("desk") == Health(ok=True, checked_at=5.0, latency_ms=1.5, status=200)
        assert client.check_many(["a", "b"]) == {"a": Health(True, 5.0), "b": Health(True, 5.0)}
        assert client.exec_env("desk") == {"KEYWARD_TOKEN": "tok-desk"}
        with pytest.raises(AccountNotFound) as caught:
            client.token("nosuch")
        assert caught.value.exit_code == 22 and "known accounts: desk" in str(caught.value)
        with pytest.raises(RateLimited) as limited:
            client.login("desk")
        assert (limited.value.retry_after, limited.value.status, limited.value.code) == (3.0, 429, "RATE")
        with pytest.raises(AgentError) as bug:
            client.doctor("desk")
        assert "RuntimeError" in str(bug.value) and "PRIVATE KEY" not in str(bug.value)
        client.close()
    assert ("token", ("desk", True)) in ops.calls


def test_bad_requests_get_typed_errors_and_do_not_kill_the_agent(service: VaultService, runtime: Path) -> None:
    add_account(service)
    with serving(service, RecordingOps(service), ttl=60) as server:
        assert raw_exchange(server.sock_path, {"v": 99, "op": "hello"})["error"]["type"] == "AgentError"
        assert "no operation" in raw_exchange(server.sock_path, {"v": PROTOCOL_VERSION, "op": "reveal_key"})["error"]["message"]
        assert raw_exchange(server.sock_path, {"v": PROTOCOL_VERSION, "op": "token", "label": 5})["ok"] is False
        assert raw_exchange(server.sock_path, {"v": PROTOCOL_VERSION, "op": "check_many", "labels": "desk"})["ok"] is False
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(server.sock_path))
            s.sendall(b"\xff\xff\xff\xffgarbage")
            s.settimeout(5)
            try:
                assert s.recv(10) == b""  # dropped without an answer...
            except ConnectionResetError:
                pass  # ...or reset, the unread garbage still queued
        assert raw_exchange(server.sock_path, {"v": PROTOCOL_VERSION, "op": "token", "label": "desk"})["ok"] is True


def test_idle_ttl_counts_from_the_last_operation_but_not_from_status(service: VaultService, runtime: Path) -> None:
    add_account(service)
    clock = FakeClock()
    server = AgentServer(service, RecordingOps(service), ttl=60, clock=clock)
    clock.t += 50
    assert server.remaining() == pytest.approx(10)
    server.dispatch({"v": PROTOCOL_VERSION, "op": "status"})
    assert server.remaining() == pytest.approx(10)  # looking is not using
    assert server.dispatch({"v": PROTOCOL_VERSION, "op": "token", "label": "desk"})["ok"]
    assert server.remaining() == pytest.approx(60)
    server.dispatch({"v": PROTOCOL_VERSION, "op": "token", "label": "nosuch"})
    assert server.remaining() == pytest.approx(60)
    clock.t += 60
    assert server.remaining() <= 0
    server.close()


def test_absolute_ttl_ignores_use(service: VaultService, runtime: Path) -> None:
    add_account(service)
    clock = FakeClock()
    server = AgentServer(service, RecordingOps(service), ttl=60, absolute=True, clock=clock)
    clock.t += 50
    assert server.dispatch({"v": PROTOCOL_VERSION, "op": "token", "label": "desk"})["ok"]
    assert server.remaining() == pytest.approx(10)
    assert server.describe()["mode"] == "absolute"
    server.close()


def test_ttl_expiry_ends_serve_and_forgets(service: VaultService, runtime: Path) -> None:
    ops = RecordingOps(service)
    server = AgentServer(service, ops, ttl=0.3)
    server.bind()
    started = time.monotonic()
    assert server.serve() == "ttl"
    assert time.monotonic() - started >= 0.25
    server.close()
    assert service.locked and not server.sock_path.exists()
    assert server.dispatch({"v": PROTOCOL_VERSION, "op": "token", "label": "desk"}) is None


def test_lock_op_stops_the_server(service: VaultService, runtime: Path) -> None:
    server = AgentServer(service, RecordingOps(service), ttl=60)
    server.bind()
    thread = threading.Thread(target=server.serve)
    thread.start()
    client = connect(service.file.path)
    assert client is not None
    client.lock()
    thread.join(5)
    assert not thread.is_alive() and server.stop_reason == "lock"
    server.close()
    assert service.locked and not server.sock_path.exists()


def test_agent_exits_when_its_socket_is_replaced(service: VaultService, runtime: Path) -> None:
    server = AgentServer(service, RecordingOps(service), ttl=60)
    server.bind()
    os.unlink(server.sock_path)
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(server.sock_path))  # a successor took the name
        assert server.serve() == "socket-gone"
        server.close()
        assert server.sock_path.exists()  # the successor's socket is left alone
    assert service.locked


def test_agent_reloads_what_other_processes_saved(service: VaultService, vault_path: Path, runtime: Path) -> None:
    with serving(service, RecordingOps(service), ttl=60):
        other = VaultService.unlock(vault_path, PASSPHRASE)
        add_account(other, "added-elsewhere")
        client = connect(vault_path)
        assert client.token("added-elsewhere").account == "added-elsewhere"


def test_rekey_underneath_ends_the_agent_and_the_client_falls_back(service: VaultService, vault_path: Path, runtime: Path) -> None:
    add_account(service)
    local_calls = []

    class Local:
        def token(self, label: str, *, force: bool = False) -> str:
            local_calls.append(label)
            return "local"

    server = AgentServer(service, RecordingOps(service), ttl=60)
    server.bind()
    thread = threading.Thread(target=server.serve)
    thread.start()
    client = connect(vault_path, fallback=Local)
    VaultService.unlock(vault_path, PASSPHRASE).rekey(PASSPHRASE)
    assert client.token("desk") == "local"
    assert local_calls == ["desk"]
    thread.join(5)
    assert server.stop_reason == "rekeyed"
    server.close()
    assert service.locked


def test_a_dying_agent_mid_session_falls_back_silently(service: VaultService, runtime: Path) -> None:
    add_account(service)
    server = AgentServer(service, RecordingOps(service), ttl=60)
    server.bind()
    thread = threading.Thread(target=server.serve)
    thread.start()
    client = connect(service.file.path, fallback=lambda: SimpleNamespace(headers=lambda label: "local " + label))
    assert client.headers("desk").account == "desk"  # the agent answered
    server.stop("killed")
    thread.join(5)
    server.close()
    assert client.headers("desk") == "local desk"
    nofallback = AgentClient(socket.socket(socket.AF_UNIX), {"pid": 1})
    nofallback.close()
    with pytest.raises(AgentError, match="stopped while answering"):
        nofallback.token("desk")


def test_no_agent_means_none_not_an_error(service: VaultService, runtime: Path) -> None:
    assert connect(service.file.path) is None
    ensure_private_dir(runtime / "keyward")
    stale = socket_path(service.file.path)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))  # bound, never listening: what a SIGKILLed agent leaves
    assert connect(service.file.path) is None


def test_an_agent_for_another_vault_behind_the_same_name_is_not_used(service: VaultService, tmp_path: Path, runtime: Path) -> None:
    other = VaultService.create(tmp_path / "other.kw", PASSPHRASE, SMALL_KDF)
    # An agent for `other` listening where `service`'s agent would (a hash collision).
    with serving(other, RecordingOps(other), ttl=60, sock_path=socket_path(service.file.path)):
        assert connect(service.file.path) is None


def test_the_agent_has_no_operation_that_runs_a_command_line(service: VaultService, runtime: Path) -> None:
    """Protocol 2 is typed operations only: "run" (protocol 1 ran CLI commands from argv)
    is unknown, and so is anything else outside the documented table."""
    from vault.agent.server import OPERATIONS

    add_account(service)
    assert "run" not in OPERATIONS
    with serving(service, RecordingOps(service), ttl=60):
        client = connect(service.file.path)
        for op in ("run", "exec", "eval", "shell"):
            with pytest.raises(AgentError, match="has no operation"):
                client._call(op, argv=["list"])
        assert client.token("desk").token.value == "tok-desk"  # and it keeps serving


# --- the fast path's argument reading ----------------------------------------------------------


def test_fast_path_reads_only_what_it_understands(tmp_path: Path) -> None:
    from vault.cli.fast import plan

    with mock.patch.dict(os.environ, {"KEYWARD_VAULT": str(tmp_path / "env.kw")}):
        assert plan(["--vault", "/v.kw", "token", "desk"]) == ("/v.kw", "token", "desk", frozenset())
        assert plan(["--vault=/a.kw", "--vault", "/b.kw", "headers", "desk", "--curl"]) == (
            "/b.kw", "headers", "desk", frozenset({"--curl"}))
        assert plan(["--passphrase-file", "/p", "token", "desk"]) == (str(tmp_path / "env.kw"), "token", "desk", frozenset())
        assert plan(["--vault", "~/v.kw", "token", "d", "--force"]) == (os.path.expanduser("~/v.kw"), "token", "d",
                                                                        frozenset({"--force"}))
        for other in ([], ["--vault"], ["--vault", "/v.kw"], ["add", "kiiex", "x"], ["exec", "desk", "--", "env"], ["token", "-h"],
                      ["--vau", "/v.kw", "token", "desk"], ["-h"], ["--vault", "", "token", "desk"], ["check", "desk"],
                      ["--vault", "/v.kw", "list", "--json"], ["token", "desk", "--json"], ["token"], ["token", "a", "b"],
                      ["headers", "desk", "--json", "--curl"], ["token", "desk", "--bogus"], ["token", "desk", "--copy"]):
            assert plan(other) is None, other


@pytest.mark.parametrize("env", [{}, {"XDG_DATA_HOME": "/data/home", "XDG_STATE_HOME": "/state/home"},
                                 {"XDG_DATA_HOME": "   ", "XDG_STATE_HOME": " "}, {"XDG_DATA_HOME": "", "XDG_STATE_HOME": ""}])
def test_default_paths_are_platformdirs_answers(env: dict[str, str], tmp_path: Path) -> None:
    """The fast path's vault path, the storage layer's and the state directory follow the
    XDG rule written out in vault.core.dirs: the same answers platformdirs gives."""
    import platformdirs

    from vault.cli.fast import default_vault_path
    from vault.core.storage import default_vault_path as real, state_dir

    base = {k: v for k, v in os.environ.items() if k not in ("XDG_DATA_HOME", "XDG_STATE_HOME", "KEYWARD_VAULT")}
    with mock.patch.dict(os.environ, base | {"HOME": str(tmp_path)} | env, clear=True):
        expected = Path(platformdirs.user_data_dir("keyward", appauthor=False)) / "vault.kw"
        assert default_vault_path() == str(real()) == str(expected)
        assert state_dir() == Path(platformdirs.user_state_dir("keyward", appauthor=False))


# --- real processes ----------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def agent_socket(kw: KeywardCLI) -> Path:
    with mock.patch.dict(os.environ, {"XDG_RUNTIME_DIR": kw.env["XDG_RUNTIME_DIR"]}):
        return socket_path(kw.vault_path)


def assert_jwt(token: str, issued: dict[str, str]) -> None:
    """Signed by the account's key, for the account's API key (verified here, with PyJWT)."""
    key = serialization.load_pem_private_key(issued["private_key"].encode(), None).public_key()
    claims = jwt.decode(token, key, algorithms=["ES256"], leeway=10)
    assert claims["sub"] == issued["api_key"]


NO_PASSPHRASE = "no passphrase: there is no terminal to ask on"


@pytest.fixture
def desk(kw: KeywardCLI, sandbox: Any, tmp_path: Path) -> SimpleNamespace:
    assert kw.init().code == 0
    issued = sandbox.issue("powertrade")
    creds = tmp_path / "issued.json"
    creds.write_text(json.dumps(issued))
    creds.chmod(0o600)
    done = kw("add", "powertrade", "desk", "--from-json", str(creds), "--base-url", sandbox.base_url("powertrade"))
    assert done.code == 0, done.both
    return SimpleNamespace(issued=issued, creds=creds)


@pytest.fixture
def short_runtime(kw: KeywardCLI) -> Iterator[Path]:
    """The CLI's XDG_RUNTIME_DIR, short enough for the agent's socket to live in it."""
    with short_private_dir() as run:
        kw.env["XDG_RUNTIME_DIR"] = str(run)
        yield run


@pytest.fixture
def agent(kw: KeywardCLI, short_runtime: Path) -> Iterator[Any]:
    """Starts agents with `keyward unlock`; stops whatever is left at the end."""
    pids: list[int] = []

    def start(*extra: str) -> dict[str, Any]:
        done = kw("unlock", "--json", *extra)
        assert done.code == 0, done.both
        info = json.loads(done.out)
        assert info["running"] is True and alive(info["pid"])
        pids.append(info["pid"])
        return info

    yield start
    kw("lock", passphrase=False)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_unlock_then_every_token_command_needs_no_passphrase(kw: KeywardCLI, desk: SimpleNamespace, agent: Any) -> None:
    info = agent("--ttl", "10m")
    assert info["mode"] == "idle" and info["ttl_s"] == 600

    done = kw("token", "desk", passphrase=False)
    assert done.code == 0, done.both
    assert_jwt(done.out.strip(), desk.issued)

    done = kw("token", "desk", "--json", passphrase=False)
    assert done.code == 0, done.both
    assert_jwt(json.loads(done.out)["headers"]["X-Power-Trade"], desk.issued)

    done = kw("headers", "desk", passphrase=False)
    assert done.code == 0 and done.out.startswith("X-Power-Trade: ")
    assert_jwt(done.out.split(": ", 1)[1].strip(), desk.issued)

    done = kw("check", "desk", passphrase=False)  # the agent's token, accepted by the venue
    assert done.code == 0, done.both
    assert done.out.split()[:2] == ["desk", "ok"]

    done = kw("doctor", "desk", passphrase=False)
    assert done.code == 0 and "ok: the health call answered HTTP 200" in done.out

    done = kw("exec", "desk", "--", sys.executable, "-c", "import os; print(os.environ['KEYWARD_TOKEN'])", passphrase=False)
    assert done.code == 0, done.both
    assert_jwt(done.out.strip(), desk.issued)

    done = kw("token", "nosuch", passphrase=False)  # the same typed error, code and one line as without an agent
    assert done.code == 22
    assert done.err == "keyward: no account labelled 'nosuch': known accounts: desk\n"

    done = kw("status", "--json", passphrase=False)
    status = json.loads(done.out)
    assert done.code == 0 and status["running"] and status["pid"] == info["pid"] and 0 < status["remaining_s"] <= 600
    assert status["vault"] == resolved_vault(kw.vault_path)


def test_socket_0600_in_a_0700_directory_and_nothing_else(
    kw: KeywardCLI, desk: SimpleNamespace, agent: Any, short_runtime: Path
) -> None:
    agent()
    sock = agent_socket(kw)
    assert sock.parent == short_runtime / "keyward"
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
    assert stat.S_IMODE(os.lstat(sock.parent).st_mode) == 0o700
    assert os.listdir(sock.parent) == [sock.name]


def test_unlock_twice_keeps_the_running_agent(kw: KeywardCLI, desk: SimpleNamespace, agent: Any) -> None:
    first = agent()
    done = kw("unlock", "--ttl", "1h", passphrase=False)  # no passphrase needed to learn it runs
    assert done.code == 0 and done.out.startswith("already unlocked: agent pid %d" % first["pid"])


def test_wrong_passphrase_is_reported_at_once_and_starts_nothing(
    kw: KeywardCLI, desk: SimpleNamespace, tmp_path: Path, short_runtime: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    done = kw("--passphrase-file", str(wrong), "unlock", passphrase=False)
    assert done.code == 13 and done.err.startswith("keyward: wrong passphrase")
    assert "Traceback" not in done.both
    assert not agent_socket(kw).exists()
    assert kw("status", passphrase=False).code == 1


def test_unlock_without_a_vault_says_so(kw: KeywardCLI) -> None:
    done = kw("unlock")
    assert done.code == 11 and "no vault at" in done.err and "keyward init" in done.err


def test_lock_ends_the_agent_and_commands_prompt_again(kw: KeywardCLI, desk: SimpleNamespace, agent: Any) -> None:
    info = agent()
    done = kw("lock", passphrase=False)
    assert done.code == 0 and f"agent pid {info['pid']} stopped" in done.out
    assert wait_until(lambda: not alive(info["pid"]))
    assert not agent_socket(kw).exists()
    done = kw("token", "desk", passphrase=False)
    assert done.code == NoTerminal.exit_code and NO_PASSPHRASE in done.err
    assert kw("status", passphrase=False).code == 1
    assert kw("lock", passphrase=False).out.startswith("no agent holds")


def test_idle_ttl_expires_and_the_agent_exits_and_forgets(kw: KeywardCLI, desk: SimpleNamespace, agent: Any) -> None:
    started = time.monotonic()
    info = agent("--ttl", "2s")
    assert wait_until(lambda: not alive(info["pid"]), timeout=20)
    assert time.monotonic() - started >= 1.5  # it lived its TTL, no less
    assert not agent_socket(kw).exists()  # and cleaned up after itself
    assert kw("status", passphrase=False).code == 1
    done = kw("token", "desk", passphrase=False)
    assert done.code == NoTerminal.exit_code and NO_PASSPHRASE in done.err


def test_use_extends_an_idle_ttl_but_not_an_absolute_one(kw: KeywardCLI, desk: SimpleNamespace, agent: Any) -> None:
    idle = agent("--ttl", "3s")
    started = time.monotonic()
    while True:  # steady use, a call every half second, until past the 3 s TTL
        time.sleep(0.5)
        assert kw("token", "desk", passphrase=False).code == 0
        if time.monotonic() - started >= 4:
            break
    assert alive(idle["pid"])
    assert kw("lock", passphrase=False).code == 0

    started = time.monotonic()
    hard = agent("--ttl", "2s", "--absolute")
    assert hard["mode"] == "absolute"
    while alive(hard["pid"]) and time.monotonic() - started < 20:
        kw("token", "desk", passphrase=False)
        time.sleep(0.3)
    assert not alive(hard["pid"])
    assert 1.5 <= time.monotonic() - started < 20


def test_a_killed_agent_leaves_the_cli_working_by_prompt(kw: KeywardCLI, desk: SimpleNamespace, agent: Any) -> None:
    info = agent()
    os.kill(info["pid"], signal.SIGKILL)
    assert wait_until(lambda: not alive(info["pid"]))
    assert agent_socket(kw).exists()  # SIGKILL leaves the socket behind

    done = kw("token", "desk", passphrase=False)
    assert done.code == NoTerminal.exit_code and done.err.count("\n") == 1 and NO_PASSPHRASE in done.err
    done = kw("token", "desk")  # the passphrase file: the normal path
    assert done.code == 0, done.both
    assert_jwt(done.out.strip(), desk.issued)
    done = kw("check", "desk")
    assert done.code == 0, done.both
    assert kw("status", passphrase=False).code == 1

    again = agent()  # a new agent takes the stale name over
    assert again["pid"] != info["pid"]
    assert kw("token", "desk", passphrase=False).code == 0

    os.kill(again["pid"], signal.SIGKILL)
    assert wait_until(lambda: not alive(again["pid"]))
    done = kw("lock", passphrase=False)
    assert done.code == 0 and "removed the socket a killed agent left" in done.out
    assert not agent_socket(kw).exists()


def test_sigterm_is_a_clean_lock(kw: KeywardCLI, desk: SimpleNamespace, agent: Any) -> None:
    info = agent()
    os.kill(info["pid"], signal.SIGTERM)
    assert wait_until(lambda: not alive(info["pid"]))
    assert not agent_socket(kw).exists()


def test_unlock_in_a_pipe_returns_at_once_and_the_agent_is_detached(kw: KeywardCLI, desk: SimpleNamespace, agent: Any) -> None:
    cmd = " ".join(shlex.quote(c) for c in [
        sys.executable, "-m", "vault", "--vault", str(kw.vault_path), "--passphrase-file", str(kw.passphrase_file),
        "unlock", "--ttl", "10m",
    ])
    started = time.monotonic()
    # stdout through cat, stderr captured: both pipes must reach EOF, so any pipe the agent
    # kept would hang this until the timeout.
    done = subprocess.run(["bash", "-c", cmd + " | cat"], env=kw.env, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.PIPE, start_new_session=True)
    assert done.returncode == 0 and done.stdout.startswith("unlocked "), done.stdout + done.stderr
    assert time.monotonic() - started < 20
    pid = json.loads(kw("status", "--json", passphrase=False).out)["pid"]
    try:
        for fd in (0, 1, 2):
            assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
        assert os.getsid(pid) == pid  # its own session: no controlling terminal
        limits = Path(f"/proc/{pid}/limits").read_text()
        assert re.search(r"Max core file size\s+0\s+0\s", limits)  # no core dump can hold the key
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        for secret in (PASSPHRASE.encode(), str(kw.passphrase_file).encode()):
            assert secret not in cmdline and secret not in environ
    finally:
        kw("lock", passphrase=False)


def _snapshot(root: Path, skip: set[Path]) -> dict[str, bytes]:
    out = {}
    for path in root.rglob("*"):
        if path in skip or path.is_dir() or path.is_symlink():
            continue
        out[str(path.relative_to(root))] = b"" if path.is_socket() else path.read_bytes()
    return out


def test_no_secret_is_written_to_disk(
    kw: KeywardCLI, desk: SimpleNamespace, agent: Any, tmp_path: Path, short_runtime: Path, sandbox: Any
) -> None:
    stored = VaultService.unlock(kw.vault_path, PASSPHRASE).get("desk").fields["private_key"]
    skip = {desk.creds, kw.passphrase_file}
    sock = agent_socket(kw)
    assert sock.parent == short_runtime / "keyward"
    before = _snapshot(tmp_path, skip) | {"run/" + k: v for k, v in _snapshot(short_runtime, skip).items()}
    tokens = []
    agent()
    runtime_files = set(os.listdir(sock.parent))
    for args in (("token", "desk"), ("token", "desk", "--json"), ("headers", "desk"), ("check", "desk"), ("doctor", "desk")):
        done = kw(*args, passphrase=False)
        assert done.code == 0, done.both
        tokens += re.findall(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", done.out)
    # Writes through the agent too: the new secrets reach the vault's encrypted file only.
    more = sandbox.issue("hypersolutions")
    done = kw("capture", "hypersolutions", "hs", "--base-url", sandbox.base_url("hypersolutions"),
              input=json.dumps(more), passphrase=False)
    assert done.code == 0, done.both
    newer = sandbox.issue("hypersolutions")
    done = kw("rotate", "hs", input=json.dumps(newer), passphrase=False)
    assert done.code == 0, done.both
    assert os.listdir(sock.parent) == [sock.name] and runtime_files == {sock.name}
    assert kw("lock", passphrase=False).code == 0
    after = _snapshot(tmp_path, skip) | {"run/" + k: v for k, v in _snapshot(short_runtime, skip).items()}
    assert set(after) == set(before)  # no new file anywhere: no log, no pid file, no cache
    assert os.listdir(sock.parent) == []
    secrets = [PASSPHRASE.encode(), *(t.encode() for t in set(tokens))]
    secrets += [v.encode() for v in (more["api_key"], more["jwt_key"], newer["api_key"], newer["jwt_key"])]
    for pem in (stored, desk.issued["private_key"]):
        secrets += [line.encode() for line in pem.splitlines() if line and not line.startswith("-----")]
    assert len(tokens) >= 4
    for name, content in after.items():
        for secret in secrets:
            assert secret not in content, f"a secret reached {name}"
    # The agent's writes are the vault's own encrypted saves: its mints are in the audit trail.
    audit = VaultService.unlock(kw.vault_path, PASSPHRASE).data.audit
    assert sum(1 for e in audit if e.action == "mint" and e.account == "desk") >= 3


def test_saves_by_other_processes_reach_the_agent(kw: KeywardCLI, desk: SimpleNamespace, agent: Any, sandbox: Any) -> None:
    agent()
    assert kw("token", "desk", passphrase=False).code == 0
    done = kw("add", "powertrade", "second", "--from-json", str(desk.creds), "--base-url", sandbox.base_url("powertrade"))
    assert done.code == 0, done.both  # an ordinary write, with the passphrase, while the agent runs
    done = kw("token", "second", passphrase=False)
    assert done.code == 0, done.both
    assert_jwt(done.out.strip(), desk.issued)
    listed = json.loads(kw("list", "--json").out)
    assert {row["label"] for row in listed} == {"desk", "second"}
    assert all(row["token"] is not None for row in listed)  # the agent's saves did not lose the add


def test_rekey_underneath_ends_the_agent_and_the_cli_prompts(kw: KeywardCLI, desk: SimpleNamespace, agent: Any) -> None:
    info = agent()
    done = kw("rekey")
    assert done.code == 0, done.both
    assert "agent held the old key and has been stopped" in done.err  # said, not left to be found
    assert wait_until(lambda: not alive(info["pid"]))
    done = kw("token", "desk", passphrase=False)
    assert done.code == NoTerminal.exit_code and NO_PASSPHRASE in done.err
    done = kw("token", "desk")
    assert done.code == 0, done.both


def _imported(kw: KeywardCLI, *args: str) -> tuple[set[str], Result]:
    cmd = [sys.executable, "-X", "importtime", "-m", "vault", "--vault", str(kw.vault_path), *args]
    proc = subprocess.run(cmd, env=kw.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          start_new_session=True)
    names = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    rest = "".join(line + "\n" for line in proc.stderr.splitlines() if not line.startswith("import time:"))
    return names, Result(proc.returncode, proc.stdout, rest)


def test_the_agent_path_imports_no_heavy_module(kw: KeywardCLI, desk: SimpleNamespace, agent: Any) -> None:
    agent()
    for args in (("token", "desk"), ("headers", "desk", "--json"), ("check", "desk"), ("doctor", "desk"), ("status",)):
        names, done = _imported(kw, *args)
        assert done.code == 0, (args, done.both)
        heavy = sorted(n for n in names if n.split(".")[0] in HEAVY)
        assert heavy == [], (args, heavy)
    names, done = _imported(kw, "token", "desk")
    assert_jwt(done.out.strip(), desk.issued)
    assert "argparse" not in names or "vault.cli.token_cmds" not in names  # the fast path skips the CLI
    assert "vault.cli.token_cmds" not in names and "vault.core.model" not in names
    # Without an agent the same command does load them: the check above can fail.
    kw("lock", passphrase=False)
    names, done = _imported(kw, "--passphrase-file", str(kw.passphrase_file), "token", "desk")
    assert done.code == 0 and {"jwt", "cryptography"} <= {n.split(".")[0] for n in names}


def _dashboard_context(kw: KeywardCLI, short_runtime: Path, monkeypatch: pytest.MonkeyPatch):
    import argparse
    import io

    from vault.cli.context import Context

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_runtime))
    monkeypatch.delenv("KEYWARD_PASSPHRASE_FILE", raising=False)
    return Context(argparse.Namespace(vault=str(kw.vault_path), passphrase_file=None), stderr=io.StringIO())


def test_dashboard_opens_from_an_agent_started_with_dashboard(
    kw: KeywardCLI, desk: SimpleNamespace, agent: Any, short_runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vault.cli.app_cmds import service_from_agent

    info = agent("--dashboard")
    assert info["running"]
    ctx = _dashboard_context(kw, short_runtime, monkeypatch)
    service = service_from_agent(ctx)
    assert service is not None and [a.label for a in service.accounts] == ["desk"]
    assert service.get("desk").fields["api_key"] == desk.issued["api_key"]
    service.add_account(Account("from-dashboard", "kiiex", "https://x", {"api_key": "k"}))  # it can write too
    reopened = VaultService.unlock(kw.vault_path, PASSPHRASE)
    assert [e.action for e in reopened.data.audit if e.action == "open"] == ["open"]
    assert reopened.data.find("from-dashboard") is not None


def test_a_plain_agent_does_not_hand_the_vault_to_the_dashboard(
    kw: KeywardCLI, desk: SimpleNamespace, agent: Any, short_runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vault.cli.app_cmds import service_from_agent

    agent()
    ctx = _dashboard_context(kw, short_runtime, monkeypatch)
    assert service_from_agent(ctx) is None
    assert "keyward unlock --dashboard" in ctx.stderr.getvalue()
    audit = VaultService.unlock(kw.vault_path, PASSPHRASE).data.audit
    assert "open" not in [e.action for e in audit]


def test_vault_commands_run_in_the_agent_and_a_reveal_is_audited(kw: KeywardCLI, desk: SimpleNamespace, agent: Any) -> None:
    agent()
    done = kw("list", "--json", passphrase=False)
    assert done.code == 0 and [row["label"] for row in json.loads(done.out)] == ["desk"]
    done = kw("show", "desk", passphrase=False)
    assert done.code == 0 and "private_key" in done.out
    assert desk.issued["private_key"].splitlines()[1] not in done.out
    done = kw("setting", "desk", "token_lifetime_s", "20", passphrase=False)
    assert done.code == 0, done.both
    done = kw("audit", "desk", "--json", passphrase=False)
    trail = json.loads(done.out)
    assert done.code == 0 and trail["intact"]
    assert ("setting", "token_lifetime_s=20") in [(e["action"], e["detail"]) for e in trail["entries"]]
    assert "reveal" not in [e["action"] for e in trail["entries"]]
    # An explicit reveal is one of the requests the CLI allows: the agent answers it, and
    # the trail records it before the secret is shown.
    done = kw("show", "desk", "--reveal", "--json", passphrase=False)
    assert done.code == 0 and json.loads(done.out)["fields"]["private_key"] == desk.issued["private_key"]
    trail = json.loads(kw("audit", "desk", "--json", passphrase=False).out)
    assert [e["action"] for e in trail["entries"]][-1] == "reveal"
    done = kw("remove", "desk", "--yes", passphrase=False)
    assert done.code == 0
    assert json.loads(kw("list", "--json", passphrase=False).out) == []
