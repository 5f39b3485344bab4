"""The agent's wire format: length-prefixed JSON over a Unix stream socket.

A frame is a 4-byte big-endian length then that many bytes of UTF-8 JSON.  Requests are
objects ``{"v": 1, "op": "token", "label": "desk", ...}``; responses are
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"type", "message", "hint",
"exit_code", ...}}``, where ``type`` names a vault.core.errors class so the client raises the
same typed error (and the CLI exits with the same code) as a local call would.  Either
may carry ``"notices": [...]``: the one-line warnings VenueOps would have printed to the
caller's stderr (a rate-limit wait, clock skew), which the client prints there.

Results that are vault.core.model dataclasses (and tuples) travel tagged (``{"__kw__":
"Credentials", ...}``) and are rebuilt on the other side, so `AgentClient.token()` returns the same
`Credentials` object `VenueOps.token()` does.  Stdlib only: the client imports this.
"""

from __future__ import annotations

import json
import struct
from time import monotonic as _monotonic

# The C module behind `socket`: the same socket objects and constants, without
# socket.py's enum set-up (about 2 ms of the hot path).  The server uses `socket` itself.
try:
    import _socket as socket
except ImportError:  # pragma: no cover
    import socket  # type: ignore[no-redef]

from vault.core import errors as _errors
from vault.core.errors import AgentError, KeywardError

TYPE_CHECKING = False  # typing and dataclasses cost milliseconds the hot path does not have
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

PROTOCOL_VERSION = 2  # 2: typed operations only (1 ran CLI commands through "run")
MAX_FRAME = 1 << 20  # 1 MiB: a request; far above any, small enough to refuse a flood
# A reply: `list` or `audit` of a large vault runs to megabytes; the client reads only from
# an agent of its own uid, so a larger bound costs nothing in safety.
MAX_REPLY = 64 << 20
_LEN = struct.Struct(">I")
_TAG = "__kw__"
# Only these types cross the socket as objects; anything else is a bug, not data.
WIRE_TYPES = ("Token", "Credentials", "Health", "RateLimit")


class ProtocolError(Exception):
    """The connection broke or carried garbage: the transport failed, not the operation."""


class ProtocolTimeout(ProtocolError):
    """No answer in time: the agent may still be working, so this is not a dead agent."""


# --- peer credentials --------------------------------------------------------------------

_PEERCRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end, as the kernel recorded it at
    connect() (or listen()) time: the peer cannot lie about it."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        raise AgentError("this system has no SO_PEERCRED", hint="the unlock agent runs on Linux only")
    pid, uid, gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, option, _PEERCRED.size))
    return pid, uid, gid


def same_user(peer_uid: int, own_uid: int) -> bool:
    """The agent's whole access rule: only its own uid, not even root (root can read the
    agent's memory anyway, and has no reason to ask it for tokens)."""
    return peer_uid == own_uid and peer_uid >= 0


# --- frames ------------------------------------------------------------------------------


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    if len(data) > MAX_REPLY:
        raise ProtocolError("message too large")
    try:
        sock.sendall(_LEN.pack(len(data)) + data)
    except OSError as exc:
        raise ProtocolError(f"send failed ({type(exc).__name__})") from None


def _read_exact(sock: socket.socket, n: int, *, eof_ok: bool = False, deadline: float | None = None) -> bytes | None:
    chunks = []
    got = 0
    while got < n:
        if deadline is not None:
            left = deadline - _monotonic()
            if left <= 0:
                raise ProtocolTimeout("the message did not arrive in time")
            sock.settimeout(left)
        try:
            chunk = sock.recv(min(n - got, 65536))
        except TimeoutError:
            raise ProtocolTimeout("no answer in time") from None
        except OSError as exc:
            raise ProtocolError(f"receive failed ({type(exc).__name__})") from None
        if not chunk:
            if eof_ok and got == 0:
                return None
            raise ProtocolError("connection closed mid-message")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(sock: socket.socket, *, deadline: float | None = None, limit: int = MAX_FRAME) -> dict[str, Any] | None:
    """The next message, or None when the peer closed the connection between messages.
    With `deadline` (time.monotonic()), the whole message must have arrived by then: the
    agent's guard against a client that sends a frame one byte at a time."""
    head = _read_exact(sock, _LEN.size, eof_ok=True, deadline=deadline)
    if head is None:
        return None
    (length,) = _LEN.unpack(head)
    if length > limit:
        raise ProtocolError("message too large")
    body = _read_exact(sock, length, deadline=deadline)
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("message is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    return message


# --- errors ------------------------------------------------------------------------------


def error_to_wire(err: KeywardError) -> dict[str, Any]:
    """A typed error as JSON.  Messages and hints are secret-free by the errors module's
    contract; extra attributes are the venue's status/code and a retry delay."""
    out: dict[str, Any] = {
        "type": type(err).__name__,
        "message": err.message,
        "hint": err.hint,
        "exit_code": err.exit_code,
    }
    for attr in ("status", "code", "retry_after"):
        if hasattr(err, attr):
            value = getattr(err, attr)
            out[attr] = value if value is None or isinstance(value, (int, float, str)) else str(value)
    return out


def error_from_wire(raw: Any) -> KeywardError:
    """The same error class the agent raised (a KeywardError carrying the agent's exit
    code if this side does not know the class)."""
    if not isinstance(raw, dict):
        return AgentError("the agent sent a malformed error", hint="run `keyward lock`, then `keyward unlock`")
    cls = getattr(_errors, str(raw.get("type", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, KeywardError)):
        cls = KeywardError
    err = cls.__new__(cls)
    KeywardError.__init__(err, str(raw.get("message") or "the agent reported an error"), hint=_opt_str(raw.get("hint")))
    for attr in ("status", "code", "retry_after"):
        if attr in raw:
            setattr(err, attr, raw[attr])
    exit_code = raw.get("exit_code")
    if isinstance(exit_code, int) and exit_code != cls.exit_code:
        err.exit_code = exit_code
    return err


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def ok(result: Any = None, notices: list[str] | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"ok": True, "result": to_wire(result)}
    if notices:
        reply["notices"] = list(notices)
    return reply


def failure(err: KeywardError, notices: list[str] | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"ok": False, "error": error_to_wire(err)}
    if notices:
        reply["notices"] = list(notices)
    return reply


# --- values ------------------------------------------------------------------------------


def to_wire(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    if isinstance(value, tuple):  # check_many's (label, Health) pairs stay pairs
        return {_TAG: "tuple", "items": [to_wire(v) for v in value]}
    if type(value).__name__ in WIRE_TYPES and type(value).__module__ == "vault.core.model":
        from dataclasses import fields

        out = {_TAG: type(value).__name__}
        for f in fields(value):
            out[f.name] = to_wire(getattr(value, f.name))
        return out
    raise TypeError(f"cannot send a {type(value).__name__} to a client")


def from_wire(value: Any) -> Any:
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        tag = value.get(_TAG)
        if tag is None:
            return {k: from_wire(v) for k, v in value.items()}
        if tag == "tuple" and isinstance(value.get("items"), list):
            return tuple(from_wire(v) for v in value["items"])
        if tag not in WIRE_TYPES:
            raise ProtocolError(f"unknown object type {tag!r}")
        from dataclasses import fields

        from vault.core import model

        cls = getattr(model, tag)
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: from_wire(v) for k, v in value.items() if k in names})
        except TypeError:
            raise ProtocolError(f"malformed {tag}") from None
    return value
