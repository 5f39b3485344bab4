"""Talking to a running agent: `connect()` and `AgentClient`.

`AgentClient` has VenueOps' method names and return types (token, headers, sign,
login, forget_session, check, check_many, doctor, exec_env, labels, summary), so a
command written against VenueOps works unchanged against an agent.  This module is on the hot path of every scripted
`keyward token`: stdlib sockets and JSON only, no textual/httpx/jwt/cryptography.

An agent that has died (or dies mid-call) is not an error: with a `fallback` factory
the client switches to local VenueOps, which asks for the passphrase as if no agent
had ever run.
"""

from __future__ import annotations

import os
import sys
from _thread import allocate_lock  # builtin: `threading` would cost the hot path an import

from vault.core.errors import AgentDeclined, AgentError, VaultChanged
from vault.agent import check_private_dir, resolved_vault, socket_paths
from vault.agent.protocol import (
    MAX_REPLY,
    PROTOCOL_VERSION,
    ProtocolError,
    ProtocolTimeout,
    error_from_wire,
    from_wire,
    peer_credentials,
    recv,
    same_user,
    send,
    socket,  # _socket, the C module (see protocol)
)

TYPE_CHECKING = False  # typing costs milliseconds the hot path does not have
if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path
    from typing import Any, Callable

HELLO_TIMEOUT = 5.0
OP_TIMEOUT = 300.0  # logins and health checks go to the network; their own timeouts apply first


def _stderr(message: str) -> None:
    print(f"keyward: {message}", file=sys.stderr, flush=True)  # as VenueOps' default notify


class _AgentTimeout(AgentError):
    """The agent did not answer in time (it may still be working: not a dead agent)."""


class _AgentGone(Exception):
    """The agent closed the connection or stopped being usable (internal).  `reason` is
    the typed error to show when there is nothing to fall back on."""

    def __init__(self, reason: Exception | None = None) -> None:
        super().__init__()
        self.reason = reason


def connect(
    vault_path: str | os.PathLike[str],
    *,
    fallback: Callable[[], Any] | None = None,
    notify: Callable[[str], None] | None = None,
) -> AgentClient | None:
    """A client for the agent holding this vault, or None when no agent answers.

    Never raises for "no agent": a missing or stale socket, an agent that dies while
    answering, a directory or a peer that is not ours (then we do not talk to it at all),
    an agent speaking another protocol version.  The caller falls back to the prompt.
    """
    try:
        candidates = socket_paths(vault_path)
    except AgentError:
        return None
    vault = resolved_vault(vault_path)
    for path in candidates:
        found = _hello(path, vault)
        if found is not None:
            sock, info = found
            return AgentClient(sock, info, fallback=fallback, notify=notify, path=path)
    return None


def _hello(path: Path, vault: str) -> tuple[socket.socket, dict[str, Any]] | None:
    """A connected, verified socket to an agent for `vault` at `path`, or None."""
    try:
        if not os.path.exists(path):
            return None
        check_private_dir(path.parent)
    except (OSError, AgentError):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(HELLO_TIMEOUT)
        sock.connect(str(path))
        if not same_user(peer_credentials(sock)[1], os.getuid()):
            raise ProtocolError("the socket is served by another user")
        send(sock, {"v": PROTOCOL_VERSION, "op": "hello"})
        reply = recv(sock)
        if not reply or reply.get("ok") is not True or not isinstance(reply.get("result"), dict):
            raise ProtocolError("no hello")
        info = reply["result"]
        if info.get("vault") != vault or info.get("v") != PROTOCOL_VERSION:
            raise ProtocolError("another vault or protocol")
    except (OSError, ProtocolError, AgentError):
        sock.close()
        return None
    return sock, info


class AgentClient:
    """VenueOps, answered by the agent.  One connection, many requests."""

    def __init__(
        self,
        sock: socket.socket,
        info: dict[str, Any],
        *,
        fallback: Callable[[], Any] | None = None,
        notify: Callable[[str], None] | None = None,
        path: Path | None = None,
    ) -> None:
        self._sock: socket.socket | None = sock
        self.path = path  # the socket it answered on
        self.info = info  # the agent's hello: pid, vault, mode, ttl_s, remaining_s
        self._fallback = fallback
        self.notify = notify or _stderr  # what VenueOps would have printed, printed here
        self._local: Any = None
        # One connection, one request at a time: threads sharing a client (vault.auth in
        # a threaded bot) must not interleave frames.  The agent serialises anyway.
        self._io = allocate_lock()
        self._falling_back = allocate_lock()

    def __repr__(self) -> str:
        return f"AgentClient(pid={self.info.get('pid')!r}, vault={self.info.get('vault')!r})"

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Hang up (the agent keeps running); close the local fallback's resources too."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        local_close = getattr(self._local, "close", None)
        if callable(local_close):
            local_close()

    @property
    def pid(self) -> int:
        return int(self.info["pid"])

    # --- VenueOps' interface ----------------------------------------------------------

    def token(self, label: str, *, force: bool = False):
        return self._op(lambda ops: ops.token(label, force=force), "token", label=label, force=bool(force))

    def headers(self, label: str, path: str | None = None):
        if path is None:
            return self._op(lambda ops: ops.headers(label), "headers", label=label)
        return self._op(lambda ops: ops.headers(label, path), "headers", label=label, path=path)

    def login(self, label: str):
        return self._op(lambda ops: ops.login(label), "login", label=label)

    def check(self, label: str):
        return self._op(lambda ops: ops.check(label), "check", label=label)

    def check_many(self, labels):
        labels = list(labels)
        return self._op(lambda ops: ops.check_many(labels), "check_many", labels=labels)

    def sign(self, label: str, path: str | None = None, *, force_login: bool = False):
        return self._op(
            lambda ops: ops.sign(label, path, force_login=force_login),
            "sign", label=label, path=path, force_login=bool(force_login),
        )

    def forget_session(self, label: str, value: str | None = None) -> None:
        return self._op(lambda ops: ops.forget_session(label, value), "forget_session", label=label, value=value)

    def labels(self) -> list[str]:
        return self._op(lambda ops: ops.labels(), "labels")

    def summary(self, label: str) -> dict[str, Any]:
        return self._op(lambda ops: ops.summary(label), "summary", label=label)

    def doctor(self, label: str) -> list[str]:
        return self._op(lambda ops: ops.doctor(label), "doctor", label=label)

    def exec_env(self, label: str) -> dict[str, str]:
        return self._op(lambda ops: ops.exec_env(label), "exec_env", label=label)

    def record_copy(self, label: str, what: str) -> int:
        """The "copy" audit entry for a token or headers this agent handed out; returns
        the vault's clipboard_clear_seconds."""
        from vault.ops.clipboard import record_copy

        return self._op(lambda ops: record_copy(ops.service, label, what), "record_copy", label=label, what=what)

    # --- account changes (vault.ops.account_ops) -----------------------------------------

    def store_account(self, acct: Any, *, action: str = "add", detail: str = "", keep_both: bool = False) -> str:
        return self._op(
            lambda ops: ops.store_account(acct, action=action, detail=detail, keep_both=keep_both),
            "store_account", account=acct.to_dict(), action=action, detail=detail, keep_both=bool(keep_both),
        )

    def remove_account(self, label: str) -> None:
        return self._op(lambda ops: ops.remove_account(label), "remove_account", label=label)

    def record_failure(self, action: str, labels: list[str], detail: str) -> None:
        labels = list(labels)
        return self._op(lambda ops: ops.record_failure(action, labels, detail), "record_failure",
                        action=action, labels=labels, detail=detail)

    def bundle_conflicts(self, incoming: list[Any]) -> list[dict[str, Any]]:
        return self._op(lambda ops: ops.bundle_conflicts(incoming), "bundle_conflicts",
                        accounts=[a.to_dict() for a in incoming])

    def import_accounts(self, incoming: list[Any], policy: str, decisions: dict[str, str] | None = None) -> list[dict[str, str]]:
        return self._op(lambda ops: ops.import_accounts(incoming, policy, decisions), "import_accounts",
                        accounts=[a.to_dict() for a in incoming], policy=policy, decisions=dict(decisions or {}))

    def account_detail(self, label: str, *, reveal: bool = False) -> dict[str, Any]:
        return self._op(lambda ops: ops.account_detail(label, reveal=reveal), "account_detail",
                        label=label, reveal=bool(reveal))

    def fields_for_copy(self, label: str) -> dict[str, Any]:
        return self._op(lambda ops: ops.fields_for_copy(label), "fields_for_copy", label=label)

    def export_accounts(self, labels: list[str], detail: str) -> list[Any]:
        from vault.core.model import Account

        labels = list(labels)
        got = self._op(lambda ops: ops.export_accounts(labels, detail), "export_accounts", labels=labels, detail=detail)
        return [a if isinstance(a, Account) else Account.from_dict(a) for a in got]

    def vault_kdf(self) -> Any:
        from vault.core.fileformat import KdfParams

        got = self._op(lambda ops: ops.vault_kdf(), "vault_kdf")
        return got if isinstance(got, KdfParams) else KdfParams(*got)

    def rotation_mode(self, label: str) -> str:
        return self._op(lambda ops: ops.rotation_mode(label), "rotation_mode", label=label)

    def rotate(self, label: str, fields: dict[str, str] | None = None, *, rollback: bool = False,
               verify: bool = True, source: str = "") -> dict[str, Any]:
        return self._op(
            lambda ops: ops.rotate(label, fields, rollback=rollback, verify=verify, source=source),
            "rotate", label=label, fields=fields, rollback=bool(rollback), verify=bool(verify), source=source,
        )

    # --- vault reads and settings (vault.ops.vault_reads) ------------------------------

    def list_rows(self) -> list[dict[str, Any]]:
        return self._op(lambda ops: ops.list_rows(), "list_rows")

    def audit_log(self, label: str | None = None, limit: int | None = None, expect_head: str | None = None) -> dict[str, Any]:
        return self._op(lambda ops: ops.audit_log(label, limit, expect_head), "audit_log",
                        label=label, limit=limit, expect_head=expect_head)

    def key_ages(self, label: str | None = None) -> list[dict[str, Any]]:
        return self._op(lambda ops: ops.key_ages(label), "key_ages", label=label)

    def set_key_max_age(self, label: str | None, days: int) -> None:
        return self._op(lambda ops: ops.set_key_max_age(label, days), "set_key_max_age", label=label, days=days)

    def setting_rows(self, label: str) -> list[dict[str, Any]]:
        return self._op(lambda ops: ops.setting_rows(label), "setting_rows", label=label)

    def set_setting(self, label: str, name: str, value: Any = None) -> list[str]:
        return self._op(lambda ops: ops.set_setting(label, name, value), "set_setting", label=label, name=name, value=value)

    def public_key(self, label: str) -> dict[str, Any]:
        return self._op(lambda ops: ops.public_key(label), "public_key", label=label)

    # --- the agent itself -------------------------------------------------------------

    def open_vault(self) -> bytes:
        """The data key, from an agent started with --dashboard (else AgentError)."""
        return bytes.fromhex(self._call("open_vault")["key"])

    def status(self) -> dict[str, Any]:
        """pid, vault, mode (idle|absolute), ttl_s, remaining_s; does not count as use."""
        try:
            self.info = self._call("status")
        except _AgentGone:
            raise AgentError("the unlock agent is not running", hint="start one with `keyward unlock`") from None
        return self.info

    def lock(self) -> None:
        """Ask the agent to drop the vault and exit (an agent already gone is locked too)."""
        try:
            self._call("lock")
        except _AgentGone:
            pass
        self.close()

    # --- plumbing ---------------------------------------------------------------------

    def _op(self, local: Callable[[Any], Any], op: str, **args: Any) -> Any:
        if self._local is None:
            try:
                return self._call(op, **args)
            except _AgentGone as gone:
                if self._fallback is None:
                    raise gone.reason or AgentError(
                        "the unlock agent stopped while answering",
                        hint="run the command again (without an agent it asks for the passphrase)",
                    ) from None
                with self._falling_back:  # one unlock, however many threads saw the agent go
                    if self._local is None:
                        self._local = self._fallback()
        return local(self._local)

    def _call(self, op: str, **args: Any) -> Any:
        with self._io:
            return from_wire(self._call_locked(op, **args))

    def call_raw(self, op: str, **args: Any) -> Any:
        """One operation's result as it came off the wire (tagged dicts, not model
        objects): the CLI fast path reads a token without importing dataclasses.  No
        fallback: an agent that is gone raises AgentError, which the caller handles."""
        try:
            with self._io:
                return self._call_locked(op, **args)
        except _AgentGone as gone:
            raise gone.reason or AgentError("the unlock agent stopped while answering", hint="run the command again") from None

    def _call_locked(self, op: str, **args: Any) -> Any:
        sock = self._sock
        if sock is None:
            raise _AgentGone()
        try:
            sock.settimeout(OP_TIMEOUT)
            send(sock, {"v": PROTOCOL_VERSION, "op": op, **args})
            reply = recv(sock, limit=MAX_REPLY)
            if reply is None:
                raise ProtocolError("closed")
            notices = reply.get("notices")
            if isinstance(notices, list):
                for notice in notices:
                    self.notify(str(notice))
            if reply.get("ok") is True:
                return reply.get("result")
            err = error_from_wire(reply.get("error"))
        except ProtocolTimeout:
            self.close()
            raise _AgentTimeout(
                f"the unlock agent did not answer within {OP_TIMEOUT:.0f}s",
                hint="check `keyward status`; `keyward lock` stops it",
            ) from None
        except ProtocolError:
            self.close()
            raise _AgentGone() from None
        if isinstance(err, VaultChanged):
            # The vault was re-keyed under the agent, which has now exited: carry on
            # without it, exactly as if it had died.
            self.close()
            raise _AgentGone(err)
        if isinstance(err, AgentDeclined) and self._fallback is not None:
            # A --tokens-only agent: this one operation (a reveal, an export, any change
            # to the vault) is done locally, after the passphrase, as if no agent ran;
            # the connection stays for the rest.
            raise _AgentGone(err)
        raise err
