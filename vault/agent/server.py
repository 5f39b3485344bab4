"""The agent process: one unlocked vault behind a Unix socket, for one user, for a while.

Started by `keyward unlock` as ``python -m vault.agent`` with the vault's data key on a
pipe (vault.agent.launch).  It:

- listens on ``<runtime dir>/agent-<hash of the vault path>.sock``, the directory 0700
  and the socket 0600, and answers only peers whose SO_PEERCRED uid is its own;
- performs VenueOps' operations (token, headers, sign, login, check, check_many,
  doctor, exec_env, labels, summary) and returns their results, never the data key or
  an account's stored fields; every write is the service's own locked, atomic transact,
  and it reloads first whenever another process saved (`changed_on_disk()`);
- exits, dropping the vault, when its TTL runs out (idle by default, or absolute), on
  `lock`, on SIGTERM/SIGINT/SIGHUP, when the vault is re-keyed or deleted under it, or
  when its socket is removed or replaced (another agent took over): an agent nobody can
  reach must not keep secrets in memory;
- writes nothing but its socket: no log, no pid file, stdout and stderr on /dev/null.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

from vault.core.errors import AgentDeclined, AgentError, KeywardError, VaultChanged
from vault.agent import ensure_private_dir, resolved_vault, socket_path
from vault.core.hardening import harden_process
from vault.agent.protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    failure,
    ok,
    peer_credentials,
    recv,
    same_user,
    send,
)

TICK_S = 0.25  # how often the TTL, the socket and the vault file are checked
CLIENT_IDLE_S = 60.0  # an answered client's connection that sends nothing for this long is closed
FRAME_S = 2.0  # a new connection's first request, and any request once begun, must arrive within this
MAX_CLIENTS = 256  # half-open connections die within FRAME_S, so legitimate clients find a slot
KEY_TIMEOUT_S = 30.0  # how long the agent waits for its key
DROP_WAIT_S = 2.0  # how long an exit lets operations in flight finish before the key is dropped anyway
MAX_LABELS = 1000


def boottime() -> float:
    """Seconds on a clock that keeps running through suspend: a laptop closed overnight
    must come back with its agent expired (CLOCK_MONOTONIC stops during suspend)."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return time.monotonic()


class AgentServer:
    """The socket server.  `ops` is a VenueOps (or anything with its methods)."""

    def __init__(
        self,
        service: Any,
        ops: Any,
        *,
        ttl: float,
        absolute: bool = False,
        dashboard: bool = False,
        tokens_only: bool = False,
        vault_path: str | os.PathLike[str] | None = None,
        sock_path: Path | None = None,
        uid: int | None = None,
        clock: Callable[[], float] = boottime,
    ) -> None:
        if ttl <= 0:
            raise AgentError("the agent's TTL must be positive", hint="pass e.g. --ttl 15m")
        self._service = service
        self._ops = ops
        self.vault = resolved_vault(vault_path if vault_path is not None else service.file.path)
        self.sock_path = sock_path if sock_path is not None else socket_path(self.vault)
        self.uid = os.getuid() if uid is None else uid
        self.ttl = float(ttl)
        self.absolute = absolute
        self.dashboard = dashboard and not tokens_only
        self.tokens_only = tokens_only
        if tokens_only:
            ops.releases_secrets = False  # vault.ops.account_ops: no reveal, copy or export
        self._clock = clock
        self.started = clock()
        self.started_wall = time.time()
        self._last_used = self.started
        self._op_lock = threading.Lock()
        self._local = threading.local()  # each connection thread's notices
        self._slow_notices: list[str] | None = None
        self._inflight = 0
        self._count_lock = threading.Lock()
        # A plain flag plus a self-pipe, not an Event: stop() runs inside signal handlers,
        # where taking a lock the interrupted code may hold would deadlock.
        self._stop_flag = False
        self.stop_reason: str | None = None
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._listener: socket.socket | None = None
        self._sock_id: tuple[int, int] | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def __repr__(self) -> str:
        return f"AgentServer(vault={self.vault!r}, socket={str(self.sock_path)!r})"

    # --- lifecycle --------------------------------------------------------------------

    def bind(self) -> None:
        """Listen on the socket path, atomically: bind and chmod under a temporary name,
        listen, then rename over the final name.  A client never sees a socket that is not
        yet 0600 or not yet listening, and two agents racing for one vault end with the
        last one serving and the other noticing it was replaced and exiting."""
        ensure_private_dir(self.sock_path.parent)
        if peer_credential_option() is None:
            raise AgentError("this system has no SO_PEERCRED", hint="the unlock agent runs on Linux only")
        # No longer than the final name, which was checked to fit in sun_path.
        tmp = self.sock_path.with_name(f".{os.getpid()}-{os.urandom(4).hex()}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            listener.bind(str(tmp))  # in our 0700 directory: nobody else can reach it meanwhile
            os.chmod(tmp, 0o600)
            listener.listen(64)
            st = os.stat(tmp)
            os.rename(tmp, self.sock_path)
        except OSError as exc:
            listener.close()
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise AgentError(
                f"cannot listen on {self.sock_path}: {exc.strerror or exc}", hint="check the directory"
            ) from None
        listener.setblocking(False)
        self._listener = listener
        self._sock_id = (st.st_dev, st.st_ino)

    def stop(self, reason: str) -> None:
        """Ask the serve loop to exit.  Safe from a signal handler and from any thread."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop_flag = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    @property
    def stopping(self) -> bool:
        return self._stop_flag

    def remaining(self) -> float:
        base = self.started if self.absolute else self._last_used
        return base + self.ttl - self._clock()

    def serve(self) -> str:
        """Accept connections until a reason to stop; returns it (ttl, lock, signal, ...)."""
        assert self._listener is not None, "bind() first"
        while not self.stopping:
            if self.remaining() <= 0:
                self.stop("ttl")
                break
            if not self._socket_is_ours():
                self.stop("socket-gone")
                break
            if not self._vault_exists():
                self.stop("vault-gone")
                break
            timeout = max(0.0, min(TICK_S, self.remaining()))
            try:
                ready, _, _ = select.select([self._listener, self._wake_r], [], [], timeout)
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
            if self._listener in ready:
                self._accept()
        return self.stop_reason or "stopped"

    def close(self) -> None:
        """Stop listening, remove our socket (not a successor's), drop the vault."""
        self.stop(self.stop_reason or "closed")
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._socket_is_ours():
            try:
                os.unlink(self.sock_path)
            except FileNotFoundError:
                pass
        # Operations in flight get a moment to finish; a check hanging on a slow venue does
        # not keep the key in memory after `lock`: it finds the vault locked instead.
        deadline = time.monotonic() + DROP_WAIT_S
        while self._inflight and time.monotonic() < deadline:
            time.sleep(0.02)
        got = self._op_lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
        try:
            for drop in (getattr(self._ops, "close", None), getattr(self._service, "lock", None)):
                if drop is not None:
                    drop()  # parsed keys, HTTP connections, then the data key and the data
            self._service = None
            self._ops = None
        finally:
            if got:
                self._op_lock.release()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def _socket_is_ours(self) -> bool:
        try:
            st = os.stat(self.sock_path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._sock_id

    def _vault_exists(self) -> bool:
        service = self._service
        return service is None or Path(service.file.path).exists()

    # --- connections ------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError:
            return  # EMFILE and friends: the client retries or falls back
        if not self._slots.acquire(blocking=False):
            conn.close()
            return
        conn.setblocking(True)
        threading.Thread(target=self._serve_connection, args=(conn,), name="keyward-agent-conn", daemon=True).start()

    def peer_uid(self, conn: socket.socket) -> int:
        return peer_credentials(conn)[1]

    def check_peer(self, conn: socket.socket) -> bool:
        """SO_PEERCRED: the kernel's record of who connected.  Fails closed."""
        try:
            return same_user(self.peer_uid(conn), self.uid)
        except (OSError, KeywardError):
            return False

    def _serve_connection(self, conn: socket.socket) -> None:
        established = False
        try:
            if not self.check_peer(conn):
                refusal = AgentError(
                    "this agent serves only the user who started it", hint="start your own with `keyward unlock`"
                )
                conn.settimeout(FRAME_S)
                send(conn, failure(refusal))
                return
            while not self.stopping:
                # A new connection must ask something at once; a client that has been
                # answered may keep its connection idle (a bot between two requests).
                # Either way a request, once begun, must arrive whole within FRAME_S: a
                # half-open or dripping connection costs a thread for seconds, not minutes.
                wait = CLIENT_IDLE_S if established else FRAME_S
                ready, _, _ = select.select([conn, self._wake_r], [], [], wait)
                if conn not in ready:
                    return
                request = recv(conn, deadline=time.monotonic() + FRAME_S)
                if request is None:
                    return
                reply = self.dispatch(request)
                if reply is None:  # shutting down: no answer, the client falls back
                    return
                conn.settimeout(CLIENT_IDLE_S)
                send(conn, reply)
                established = True
        except ProtocolError:
            return
        except Exception:  # a bug must cost this connection, not the agent (and print nothing)
            return
        finally:
            conn.close()
            self._slots.release()

    # --- operations -------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "v": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "vault": self.vault,
            "mode": "absolute" if self.absolute else "idle",
            "ttl_s": self.ttl,
            "remaining_s": max(0.0, round(self.remaining(), 3)),
            "started_at": self.started_wall,
            "dashboard": self.dashboard,
            "tokens_only": self.tokens_only,
        }

    def dispatch(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """One request to one reply (None: close without one, the client falls back).
        Never raises; never puts a secret in an error."""
        op = request.get("op")
        if self.stopping:  # on the way out: look like the dead agent we are about to be
            return ok(None) if op == "lock" else None
        if request.get("v") != PROTOCOL_VERSION:
            return failure(
                AgentError(
                    f"the agent speaks protocol {PROTOCOL_VERSION}, the client {str(request.get('v'))[:20]!r}",
                    hint="run `keyward lock`, then `keyward unlock` with this keyward",
                )
            )
        if op in ("hello", "status"):  # looking is not using: the idle timer keeps running
            return ok(self.describe())
        if op == "lock":
            self.stop("lock")
            return ok(None)
        if op == "open_vault":
            return self._open_vault()
        operation = _OPERATIONS.get(op) if isinstance(op, str) else None
        if operation is None:
            return failure(
                AgentError(f"the agent has no operation {str(op)[:40]!r}", hint="run `keyward lock` and retry")
            )
        if self.tokens_only and not operation.tokens_only:
            # The caller's CLI falls back to the passphrase, as if no agent ran.
            return failure(AgentDeclined(
                f"this agent serves tokens only ({op} changes the vault or hands out stored secrets)",
                hint="the command asks for the passphrase instead",
            ))
        # Operations that may wait on the network for any account, or change the vault,
        # run one at a time (like ssh-agent); tokens, headers and reads do not queue
        # behind them: a check hanging on a slow venue must not stall every bot.
        lane = self._op_lock if operation.slow else contextlib.nullcontext()
        with lane:
            return self._run(op, operation, request)

    def _run(self, op: str, operation: Operation, request: dict[str, Any]) -> dict[str, Any] | None:
        ops = self._ops
        if self.stopping or ops is None:
            return None
        notices: list[str] = []
        self._local.notices = notices
        if operation.slow:
            self._slow_notices = notices  # check_many's worker threads report here
        with self._count_lock:
            self._inflight += 1
        try:
            ops.refresh()  # pick up another process's save before reading
            reply = ok(operation.handler(ops, request), notices)
        except VaultChanged as err:
            self.stop("rekeyed")  # our data key no longer opens the vault
            return failure(err, notices)
        except KeywardError as err:
            return failure(err, notices)
        except Exception as exc:  # a bug: say which kind, never the value
            return failure(
                AgentError(
                    f"the agent hit an internal error ({type(exc).__name__}) in {op}",
                    hint="retry; if it persists, `keyward lock` and report it",
                ),
                notices,
            )
        finally:
            with self._count_lock:
                self._inflight -= 1
            self._local.notices = None
            if operation.slow:
                self._slow_notices = None
        self._last_used = self._clock()
        return reply

    def _open_vault(self) -> dict[str, Any]:
        """The data key, for the dashboard, and only when `keyward unlock --dashboard`
        said so: the dashboard must decrypt accounts to show and edit them, which no
        token operation can do for it.  Recorded in the audit trail."""
        if not self.dashboard:
            return failure(
                AgentError(
                    "this agent does not open the vault for the dashboard",
                    hint="type the passphrase, or start the agent with `keyward unlock --dashboard`",
                )
            )
        with self._op_lock:
            if self.stopping or self._service is None or self._service.locked:
                return None
            try:
                self._ops.refresh()
                self._service.record("open", None, "ok", "dashboard opened through the unlock agent")
            except KeywardError as err:
                return failure(err)
            self._last_used = self._clock()
            return ok({"key": self._service._key.hex()})

    def notice(self, message: str) -> None:
        """VenueOps' `notify`: collected for the reply of the operation in flight (its
        check_many workers call it from their own threads, inside that operation)."""
        notices = getattr(self._local, "notices", None)
        if notices is None:
            notices = self._slow_notices
        if notices is not None:
            notices.append(str(message))


# --- the operation table -------------------------------------------------------------------


def _label(request: dict[str, Any]) -> str:
    label = request.get("label")
    if not isinstance(label, str) or not label or len(label) > 256:
        raise AgentError("the request names no valid account label", hint="pass a label")
    return label


def _opt_label(request: dict[str, Any]) -> str | None:
    return None if request.get("label") is None else _label(request)


def _int(request: dict[str, Any], key: str) -> int:
    value = request.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not -(2**31) <= value < 2**31:
        raise AgentError(f"the request's {key} is not a whole number", hint=f"pass {key} as a number")
    return value


def _opt_int(request: dict[str, Any], key: str) -> int | None:
    return None if request.get(key) is None else _int(request, key)


def _opt_text(request: dict[str, Any], key: str, limit: int) -> str | None:
    return None if request.get(key) is None else _text(request, key, limit)


def _detail(request: dict[str, Any], key: str) -> str:
    """An audit detail a client asks the agent to record: only the phrases keyward's own
    commands write (vault.ops.account_ops.AUDIT_DETAILS), never free text a client made
    up, and never a control character (the trail is printed to terminals)."""
    from vault.ops.account_ops import audit_detail_allowed

    value = _text(request, key, 300)
    if not audit_detail_allowed(value):
        raise AgentError(f"the request's {key} is not one keyward writes", hint="use keyward's own commands")
    return value


def _labels(request: dict[str, Any]) -> list[str]:
    labels = request.get("labels")
    if not isinstance(labels, list) or len(labels) > MAX_LABELS or not all(isinstance(x, str) for x in labels):
        raise AgentError("the request's labels are not a list of strings", hint="pass account labels")
    return labels


def _path(request: dict[str, Any]) -> str | None:
    path = request.get("path")
    if path is not None and (not isinstance(path, str) or len(path) > 4096):
        raise AgentError("the request's path is not a string", hint="pass a URL path like /v1/orders")
    return path


def _session_value(request: dict[str, Any]) -> str | None:
    """forget_session's optional token: only that session is dropped, not a newer one."""
    value = request.get("value")
    if value is not None and (not isinstance(value, str) or len(value) > 65536):
        raise AgentError("the request's session value is not a string", hint="pass the token the request carried")
    return value


def _account(raw: Any) -> Any:
    """An Account sent as `Account.to_dict()` (vault.ops.account_ops checks its content)."""
    from vault.core.model import Account

    if not isinstance(raw, dict):
        raise AgentError("the request carries no account object", hint="pass the account to store")
    try:
        return Account.from_dict(raw)
    except (TypeError, ValueError, AttributeError, KeyError):
        raise AgentError("the request's account is malformed", hint="check the input") from None


def _accounts(request: dict[str, Any]) -> list[Any]:
    raw = request.get("accounts")
    if not isinstance(raw, list) or len(raw) > MAX_LABELS:
        raise AgentError("the request's accounts are not a list", hint="pass the accounts")
    return [_account(a) for a in raw]


def _text(request: dict[str, Any], key: str, limit: int = 200) -> str:
    value = request.get(key, "")
    if not isinstance(value, str) or len(value) > limit:
        raise AgentError(f"the request's {key} is not a short text", hint=f"pass {key} as text")
    return value


def _fields(request: dict[str, Any]) -> dict[str, str] | None:
    fields = request.get("fields")
    if fields is not None and not (
        isinstance(fields, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    ):
        raise AgentError("the request's fields are not text", hint="pass the credential fields")
    return fields


def _decisions(request: dict[str, Any]) -> dict[str, str]:
    decisions = request.get("decisions") or {}
    if not isinstance(decisions, dict) or not all(isinstance(v, str) for v in decisions.values()):
        raise AgentError("the request's decisions are not a map of labels to answers", hint="pass them as given")
    return decisions


def _kdf(ops: Any) -> list[int]:
    kdf = ops.vault_kdf()
    return [kdf.iterations, kdf.memory_kib, kdf.parallelism]


class Operation:
    """One typed operation: its handler, whether it may wait on the network for an
    arbitrary account (the "slow" lane, one at a time), and whether an agent started
    with --tokens-only serves it."""

    __slots__ = ("handler", "slow", "tokens_only")

    def __init__(self, handler: Callable[[Any, dict[str, Any]], Any], *, slow: bool, tokens_only: bool) -> None:
        self.handler = handler
        self.slow = slow
        self.tokens_only = tokens_only


def _fast(handler: Callable[[Any, dict[str, Any]], Any]) -> Operation:
    """Served in any mode, never queued behind another account's network operation:
    tokens, headers and signatures (short-lived, what a request carries) and reads of
    non-secret state."""
    return Operation(handler, slow=False, tokens_only=True)


def _slow_read(handler: Callable[[Any, dict[str, Any]], Any]) -> Operation:
    """Served in any mode, one at a time: health checks and logins go to the network."""
    return Operation(handler, slow=True, tokens_only=True)


def _change(handler: Callable[[Any, dict[str, Any]], Any]) -> Operation:
    """Changes the vault (accounts, generations, settings) or hands stored secrets out:
    never in a --tokens-only agent, one at a time."""
    return Operation(handler, slow=True, tokens_only=False)


# What the agent does: a fixed set of typed operations, each calling VenueOps (the same
# service the CLI calls in its own process) with parameters validated here as untrusted.
# There is no operation that runs a command line, returns the data key or the passphrase
# (the dashboard's "open_vault" aside, which `keyward unlock --dashboard` must ask for),
# or moves where a stored secret is sent without the passphrase (see _import_accounts).
# docs/agent.md lists them with the modes that allow each.
_OPERATIONS: dict[str, Operation] = {
    "token": _fast(lambda ops, r: ops.token(_label(r), force=r.get("force") is True)),
    "headers": _fast(lambda ops, r: ops.headers(_label(r), _path(r))),
    "sign": _fast(lambda ops, r: ops.sign(_label(r), _path(r), force_login=r.get("force_login") is True)),
    "forget_session": _fast(lambda ops, r: ops.forget_session(_label(r), _session_value(r))),
    "exec_env": _fast(lambda ops, r: ops.exec_env(_label(r))),
    "record_copy": _fast(lambda ops, r: _record_copy(ops, r)),
    "labels": _fast(lambda ops, r: ops.labels()),
    "summary": _fast(lambda ops, r: ops.summary(_label(r))),
    "list_rows": _fast(lambda ops, r: ops.list_rows()),
    "account_detail": _fast(lambda ops, r: ops.account_detail(_label(r), reveal=r.get("reveal") is True)),
    "audit_log": _fast(lambda ops, r: ops.audit_log(_opt_label(r), _opt_int(r, "limit"), _opt_text(r, "expect_head", 64))),
    "key_ages": _fast(lambda ops, r: ops.key_ages(_opt_label(r))),
    "setting_rows": _fast(lambda ops, r: ops.setting_rows(_label(r))),
    "public_key": _fast(lambda ops, r: ops.public_key(_label(r))),
    "login": _slow_read(lambda ops, r: ops.login(_label(r))),
    "check": _slow_read(lambda ops, r: ops.check(_label(r))),
    "check_many": _slow_read(lambda ops, r: ops.check_many(_labels(r))),
    "doctor": _slow_read(lambda ops, r: ops.doctor(_label(r))),
    "rotation_mode": _slow_read(lambda ops, r: ops.rotation_mode(_label(r))),
    "vault_kdf": _slow_read(lambda ops, r: _kdf(ops)),
    "store_account": _change(lambda ops, r: ops.store_account(
        _account(r.get("account")), action=_text(r, "action"), detail=_detail(r, "detail"), keep_both=r.get("keep_both") is True
    )),
    "remove_account": _change(lambda ops, r: ops.remove_account(_label(r))),
    "record_failure": _change(lambda ops, r: ops.record_failure(_text(r, "action"), _labels(r), _detail(r, "detail"))),
    "bundle_conflicts": _change(lambda ops, r: ops.bundle_conflicts(_accounts(r))),
    "import_accounts": _change(lambda ops, r: _import_accounts(ops, r)),
    "fields_for_copy": _change(lambda ops, r: ops.fields_for_copy(_label(r))),
    "export_accounts": _change(lambda ops, r: [a.to_dict() for a in ops.export_accounts(_labels(r), _detail(r, "detail"))]),
    "rotate": _change(lambda ops, r: ops.rotate(
        _label(r), _fields(r), rollback=r.get("rollback") is True, verify=r.get("verify") is not False,
        source=_detail(r, "source"),
    )),
    "set_setting": _change(lambda ops, r: ops.set_setting(_label(r), _text(r, "name", 64), _opt_text(r, "value", 4096))),
    "set_key_max_age": _change(lambda ops, r: ops.set_key_max_age(_opt_label(r), _int(r, "days"))),
}


def _record_copy(ops: Any, request: dict[str, Any]) -> int:
    """The caller copied a token or headers this agent handed out: the audit entry
    (vault.ops.clipboard.record_copy; only "copy", for an account that exists).  Returns the
    vault's clipboard_clear_seconds, which the caller's clearing uses."""
    from vault.ops.clipboard import record_copy

    return record_copy(ops.service, _label(request), request.get("what"))


def _import_accounts(ops: Any, request: dict[str, Any]) -> Any:
    """A bundle merged through the agent may not move an existing account to another
    base URL: the credentials stored for one host would then go to another (the way a
    crafted bundle plus a rollback once exfiltrated a stored secret).  That needs the
    passphrase, so the caller's CLI does it itself after asking for it."""
    accounts = _accounts(request)
    policy = _text(request, "policy")
    decisions = _decisions(request)
    moved = [c["label"] for c in ops.bundle_conflicts(accounts) if "location" in c["differs"]]
    replacing = [label for label in moved if (decisions.get(label) if policy == "ask" else policy) == "replace"]
    if replacing:
        raise AgentDeclined(
            f"replacing {', '.join(replacing[:3])} would change where its credentials are sent",
            hint="the passphrase confirms it",
        )
    return ops.import_accounts(accounts, policy, decisions)


OPERATIONS = frozenset(_OPERATIONS) | {"hello", "status", "lock", "open_vault"}


def peer_credential_option() -> int | None:
    return getattr(socket, "SO_PEERCRED", None)


# --- the process -----------------------------------------------------------------------------


def read_key(fd: int) -> bytes:
    """The 32-byte data key from the launcher's end of a socket pair, then EOF.

    A socket, not a pipe: /proc/PID/fd/N of a socket cannot be opened, by anyone, so
    no other process can read the key out of the channel.  And the launcher sends the
    key only after this process says it is hardened (non-dumpable, no core files):
    before that, a process of the same user could ptrace it or take the descriptor."""
    import stat

    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        raise AgentError("the agent's key channel is not a socket", hint="start it with `keyward unlock`")
    chan = socket.socket(fileno=fd)
    try:
        chan.settimeout(KEY_TIMEOUT_S)
        chan.sendall(b"H")  # hardened: the launcher may send the key now
        chunks, total = [], 0
        while total <= 64:
            chunk = chan.recv(65 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError:
        raise AgentError("the agent did not receive a data key", hint="start it with `keyward unlock`") from None
    finally:
        chan.close()
    key = b"".join(chunks)
    if len(key) != 32:
        raise AgentError("the agent did not receive a data key", hint="start it with `keyward unlock`")
    return key


def open_with_key(path: Path, key: bytes, clock: Callable[[], float] = time.time):
    """The unlocked vault from its data key: no passphrase, no KDF run."""
    from vault.core import fileformat as ff
    from vault.core.errors import CorruptVault
    from vault.core.service import VaultService, decode_payload
    from vault.core.storage import VaultFile

    vfile = VaultFile(path)
    blob = vfile.read()
    header = ff.parse(blob)
    try:
        plaintext = ff.open_payload(blob, header, key)
    except CorruptVault:
        raise VaultChanged("the vault was re-keyed while the agent started", hint="run `keyward unlock` again") from None
    return VaultService(vfile, header, key, decode_payload(plaintext), clock)


def _report(ready, message: dict[str, Any]) -> None:
    if ready is None:
        return
    try:
        ready.write(json.dumps(message).encode("utf-8") + b"\n")
        ready.close()
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vault.agent", description="keyward's unlock agent (start it with `keyward unlock`)")
    parser.add_argument("--vault", required=True)
    parser.add_argument("--ttl", type=float, required=True, help="seconds")
    parser.add_argument("--absolute", action="store_true")
    parser.add_argument("--dashboard", action="store_true")
    parser.add_argument("--tokens-only", action="store_true")
    parser.add_argument("--key-fd", type=int, required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    args = parser.parse_args(argv)

    os.umask(0o077)
    harden_process()  # before the key exists in this process: see read_key
    try:
        ready = os.fdopen(args.ready_fd, "wb", buffering=0)
    except OSError:
        return 2
    server: AgentServer | None = None
    try:
        key = read_key(args.key_fd)
        service = open_with_key(Path(args.vault), key)
        from vault.ops.venue_ops import VenueOps

        # Warnings (rate-limit waits, clock skew) go back to the caller, not to /dev/null.
        ops = VenueOps(service, notify=lambda message: server.notice(message) if server else None)
        server = AgentServer(
            service, ops, ttl=args.ttl, absolute=args.absolute, vault_path=args.vault, dashboard=args.dashboard,
            tokens_only=args.tokens_only,
        )
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: server.stop("signal"))  # type: ignore[union-attr]
        server.bind()
    except KeywardError as err:
        _report(ready, failure(err))
        if server is not None:
            server.close()
        return 1
    except Exception as exc:
        _report(ready, failure(AgentError(f"the agent failed to start ({type(exc).__name__})", hint="rerun with KEYWARD_DEBUG=1")))
        if os.environ.get("KEYWARD_DEBUG"):
            raise
        return 70
    _report(ready, ok(server.describe()))
    try:
        server.serve()
    finally:
        server.close()
    return 0
