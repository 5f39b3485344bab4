"""Shared fixtures: real vaults on disk (small KDF), a real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from vault.core.fileformat import KdfParams
from vault.core.service import VaultService

@pytest.fixture(autouse=True, scope="session")
def loopback_only():
    """Nothing in a test may reach past this machine: an in-process connection to any
    address that is not loopback fails the test.  (CLI subprocesses get a dead loopback
    proxy for https instead: see KeywardCLI.)"""
    import ipaddress
    import socket

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock, address) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
                raise AssertionError(f"a test tried to connect to {host}: only 127.0.0.1 is allowed")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    yield
    socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory, monkeypatch):
    """keyward's state directory (what it remembers of each vault, for rollback
    detection) per test, never the real user's; CLI subprocesses inherit it."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))


# The floor: keeps a KDF run to milliseconds.  Only tests of the defaults use more.
SMALL_KDF = KdfParams(iterations=1, memory_kib=8 * 1024, parallelism=1)
PASSPHRASE = "correct horse battery staple"
REPO = Path(__file__).resolve().parent.parent


T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z: far from the real clock, so nothing passes by accident


class FakeClock:
    """A clock the test moves by hand (for the app, the sandbox and VenueOps alike)."""

    def __init__(self, start: float = T0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def small_kdf() -> KdfParams:
    return SMALL_KDF


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    return tmp_path / "vaultdir" / "vault.kw"


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def service(vault_path: Path) -> VaultService:
    return VaultService.create(vault_path, PASSPHRASE, SMALL_KDF)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


class KeywardCLI:
    """Runs `python -m vault` as a real subprocess against one vault."""

    def __init__(self, vault_path: Path, passphrase_file: Path, home: Path) -> None:
        self.vault_path = vault_path
        self.passphrase_file = passphrase_file
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")
        } | {"HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"), "PYTHONPATH": str(REPO),
             # Should anything try a real venue over https, it meets a dead proxy on
             # loopback instead of leaving the machine.
             "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}

    def __call__(self, *args: str, input: str | None = None, passphrase: bool = True, timeout: float = 60,
                 env: dict[str, str] | None = None) -> Result:
        cmd = [sys.executable, "-m", "vault", "--vault", str(self.vault_path)]
        if passphrase:
            cmd += ["--passphrase-file", str(self.passphrase_file)]
        proc = subprocess.run(
            cmd + list(args),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env | (env or {}),
            stdin=None if input is not None else subprocess.DEVNULL,
            start_new_session=True,  # no controlling terminal: prompts must not hang a test
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def init(self) -> Result:
        return self("init", "--kdf-memory-mib", "8", "--kdf-iterations", "1", "--kdf-parallelism", "1")


@pytest.fixture
def kw(vault_path: Path, passphrase_file: Path, tmp_path: Path) -> KeywardCLI:
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True)
    (home / "run").chmod(0o700)
    return KeywardCLI(vault_path, passphrase_file, home)


# --- venues: a running sandbox, and accounts issued by it ------------------------------


@pytest.fixture
def sandbox():
    """The loopback fake-venue server, fresh per test (its limiter and config are state).
    Every venue rate-limited: the tests of keyward's 429 handling and rate-limit display
    need it on venues that publish no limit (docs/sandbox.md, rate_limit_every_venue)."""
    from vault.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(rate_limit_every_venue=True)) as sb:
        yield sb


@pytest.fixture(scope="module")
def sb():
    """One sandbox shared by a module's tests that leave its config alone (every venue
    rate-limited, as in `sandbox`)."""
    from vault.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(rate_limit_every_venue=True)) as sandbox:
        yield sandbox


@pytest.fixture
def vault(kw):
    """The CLI on a freshly initialised vault."""
    assert kw.init().code == 0
    return kw


def sandbox_fields(sb, venue: str, **issue: object) -> dict[str, str]:
    """One-time credentials from the sandbox, as keyward's canonical field names."""
    from vault.ops.formats import recognise

    if venue == "tradeready":
        issue.setdefault("display_name", "keyward-test")
    raw = sb.issue(venue, **issue)
    if venue in ("tradeready", "kiiex"):
        found, fields, _ = recognise(raw)
        assert found == venue
        return fields
    return {k: str(v) for k, v in raw.items()}


@pytest.fixture
def sandbox_account(service: VaultService, sandbox):
    """`sandbox_account(venue, label, fields=None, settings=None, **issue)`: an account in
    the test vault whose credentials the sandbox issued (or `fields`, for wrong ones)."""
    from vault.core.model import Account
    from vault.venues import get_provider

    def make(venue: str, label: str | None = None, *, fields: dict[str, str] | None = None,
             settings: dict | None = None, **issue: object) -> Account:
        provider = get_provider(venue)
        raw = fields if fields is not None else sandbox_fields(sandbox, venue, **issue)
        acct = Account(label=label or venue, venue=venue, base_url=sandbox.base_url(venue),
                       fields=provider.normalize(raw), settings=dict(settings or {}))
        return service.add_account(acct)

    return make
