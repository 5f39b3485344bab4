"""keyward against a venue that misbehaves on purpose (tests/hostile_server.py).

Every call runs in a subprocess whose address space is capped (RLIMIT_AS): the real CLI,
or the CLI's main() in a child forked from a bounded process with keyward loaded (FORKS).
A body or a gzip bomb held in memory makes the process fail loudly instead of slowly
eating the machine.  The vault's request deadline is set to a few seconds, so
a dripping venue ends a call quickly; the subprocess timeout is the bound the test
asserts ("it ended"), never a wall-clock figure.

For every misbehaviour, against all four venues: `check --all`, `login` and `token` of
the session venues, `doctor` of every account, the unlock agent, and `vault.auth`; then
`list`, `list --json` and `export --encrypted` must still work.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, REPO, SMALL_KDF
from tests.hostile_server import MODES, HostileVenue

MEMORY_LIMIT = 1 << 30  # 1 GiB of address space for each keyward process
DEADLINE_S = 3  # the vault's request_deadline_s in these tests
SHORTEST_DEADLINE_S = 1  # the lowest request_deadline_s a vault obeys (vault.core.model)
RUN_TIMEOUT = 60  # a call that has not ended by then has no working deadline
CLI_EXIT_CODES = {0, 1, 30, 31, 32, 33, 34, 35, 37, 38, 39}  # healthy, unhealthy, or a typed venue error

SECRETS = {
    "tr_key": "ak_live_hostile_key_0123456789",
    "tr_secret": "sk_live_hostile_secret_0123456789",
    "hy_key": "hy_hostile_api_key_0123456789",
    "hy_jwt": "hy_hostile_jwt_key_0123456789_abcdefghijklmnop",
    "kx_secret": "kiiex_hostile_secret_0123456789",
    "kx_nonce": "kiiex_hostile_nonce_98765",
}


def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


PT_PEM = _pem()


def accounts(base_url: str) -> list:
    from vault.core.model import Account
    from vault.venues import get_provider

    raw = {
        "pt": ("powertrade", {"api_key": "pt-hostile-key", "private_key": PT_PEM}),
        "tr": ("tradeready", {"api_key": SECRETS["tr_key"], "api_secret": SECRETS["tr_secret"]}),
        "hy": ("hypersolutions", {"api_key": SECRETS["hy_key"], "jwt_key": SECRETS["hy_jwt"]}),
        "kx": ("kiiex", {"api_key": "kiiex-hostile-apikey", "api_secret": SECRETS["kx_secret"],
                         "nonce": SECRETS["kx_nonce"], "user_id": "7"}),
    }
    return [Account(label=label, venue=venue, base_url=base_url, fields=get_provider(venue).normalize(fields),
                    created_at=1.0)
            for label, (venue, fields) in raw.items()]


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


class Bounded:
    """The CLI (or a Python snippet) in a subprocess under RLIMIT_AS."""

    def __init__(self, kw) -> None:
        self.kw = kw
        # glibc reserves 64 MiB of address space per malloc arena (one per thread, up to
        # 8 per core): keep that reservation from counting as a blow-up.
        self.env = kw.env | {"MALLOC_ARENA_MAX": "2"}

    def cli(self, *args: str, stdin: bytes | None = None, timeout: float = RUN_TIMEOUT, passphrase: bool = True):
        cmd = [sys.executable, "-m", "vault", "--vault", str(self.kw.vault_path)]
        if passphrase:
            cmd += ["--passphrase-file", str(self.kw.passphrase_file)]
        return self._run(cmd + list(args), stdin, timeout)

    def python(self, code: str, timeout: float = RUN_TIMEOUT):
        return self._run([sys.executable, "-c", code], None, timeout)

    def _run(self, cmd: list[str], stdin: bytes | None, timeout: float):
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=self.env,
                              stdin=None if stdin is not None else subprocess.DEVNULL, start_new_session=True,
                              preexec_fn=limit_memory, cwd=REPO)
        return Run(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))

    def together(self, *cmds: list[str], timeout: float = RUN_TIMEOUT) -> list[Run]:
        """Several commands at once, each under the memory bound: the calls of a mode are
        independent, and against a stalling venue each waits out its deadline, so running
        them side by side keeps the suite's wall time down."""
        return [self.finish(proc, timeout) for proc in [self.start(cmd) for cmd in cmds]]

    def start(self, cmd: list[str]) -> subprocess.Popen:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                env=self.env, start_new_session=True, preexec_fn=limit_memory, cwd=REPO)

    def finish(self, proc: subprocess.Popen, timeout: float = RUN_TIMEOUT) -> Run:
        out, err = proc.communicate(timeout=timeout)
        return Run(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Run(code={self.code}, out={self.out[-600:]!r}, err={self.err[-600:]!r})"


def assert_clean(run: Run, codes: set[int] = CLI_EXIT_CODES) -> None:
    """Ended with an expected code; one line per error; no traceback, no secret, no escape."""
    both = run.out + run.err
    assert run.code in codes, run
    assert "Traceback" not in both and "internal error" not in both and "MemoryError" not in both, run
    for value in SECRETS.values():
        assert value not in both, f"a secret reached the output: {run!r}"
    assert "BEGIN PRIVATE KEY" not in both
    assert "\x1b" not in both and "\x07" not in both and "\x9b" not in both, run
    if run.code not in (0, 1):
        lines = [line for line in run.err.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("keyward: "), run
        assert len(lines[-1]) < 600, run


@pytest.fixture(scope="module")
def hv():
    with HostileVenue() as server:
        yield server


def hostile_vault(path: Path, base_url: str, deadline_s: float) -> None:
    """A vault at `path`: one account per venue on the hostile venue, a short deadline."""
    from vault.core.service import VaultService

    service = VaultService.create(path, PASSPHRASE, SMALL_KDF)
    for acct in accounts(base_url):
        service.add_account(acct)
    service.transact(lambda data: setattr(data.settings, "request_deadline_s", deadline_s))


def set_deadline(path: Path, deadline_s: float) -> None:
    from vault.core.service import VaultService

    VaultService.unlock(path, PASSPHRASE).transact(lambda data: setattr(data.settings, "request_deadline_s", deadline_s))


@pytest.fixture
def hostile(kw, hv, vault_path: Path):
    """A vault of four accounts, one per venue, all pointing at the hostile venue."""
    hostile_vault(vault_path, hv.base_url, DEADLINE_S)
    hv.mode = "normal"
    yield Bounded(kw)
    hv.mode = "normal"


def still_works(b: Bounded, tmp: Path) -> None:
    """What finding 1 broke for good: the vault's everyday commands afterwards."""
    for args in (("list",), ("list", "--json"), ("audit",)):
        run = b.cli(*args)
        assert run.code == 0, (args, run)
        assert_clean(run, {0})
    rows = json.loads(b.cli("list", "--json").out)
    assert {r["label"] for r in rows} == {"pt", "tr", "hy", "kx"}
    bundle_pass = tmp / "bundle-pass"
    bundle_pass.write_text("another long bundle passphrase\n")
    target = tmp / f"out-{os.getpid()}-{len(list(tmp.iterdir()))}.kwb"
    run = b.cli("export", "--encrypted", str(target), "--bundle-passphrase-file", str(bundle_pass))
    assert run.code == 0 and target.exists(), run


# --- finding 1: one header breaks the vault's commands for good ---------------------------


@pytest.mark.parametrize("mode", ["ratelimit_ms", "ratelimit_inf", "ratelimit_negative", "usage_poison",
                                  "date_year_9999"])
def test_a_poisoned_rate_limit_header_never_breaks_a_later_command(hostile, hv, mode, tmp_path) -> None:
    hv.mode = mode
    run = hostile.cli("check", "--all", "--json")
    assert_clean(run)
    rows = json.loads(run.out)
    for row in rows:
        rl = row.get("rate_limit")
        if rl and rl.get("reset_at") is not None:
            assert rl["reset_at"][:2] in ("20", "21"), row  # a real date, not year 58000
        if rl:
            for key in ("limit", "remaining"):
                assert rl[key] is None or (isinstance(rl[key], int) and 0 <= rl[key] < 10 ** 12), row
        if mode == "date_year_9999":  # dropped, and said so
            assert "ignored the venue's Date" in row["message"], row
    hv.mode = "normal"
    run = hostile.cli("check", "--all")
    assert_clean(run, {0})
    still_works(hostile, tmp_path)


def test_a_vault_poisoned_by_the_old_version_opens_and_works(hostile, hv, vault_path, tmp_path) -> None:
    """Values the current version stored from a poisoned header: repaired on load."""
    from vault.core.model import Health, RateLimit, Token
    from vault.core.service import VaultService

    service = VaultService.unlock(vault_path, PASSPHRASE)

    def stored(cls, **values):
        """An object as the old version stored it: no validation on the way in."""
        obj = object.__new__(cls)
        obj.__dict__.update(values)
        return obj

    def poison(data) -> None:
        inf, nan = float("inf"), float("nan")
        a, b, c, d = (data.find(x) for x in ("pt", "tr", "hy", "kx"))
        a.rate_limit = stored(RateLimit, limit=None, remaining=None, reset_at=1796111000000.0, observed_at=1.0)
        b.rate_limit = stored(RateLimit, limit=None, remaining=None, reset_at=inf, observed_at=nan)
        b.token = stored(Token, value="eyJ.old.bearer", issued_at=nan, expires_at=inf, kind="bearer")
        c.rate_limit = stored(RateLimit, limit=10 ** 400, remaining=-3, reset_at=-inf, observed_at=1.0)
        c.health = stored(Health, ok=True, checked_at=inf, latency_ms=nan, message="ok", status=200, skew_s=-inf)
        d.history = [10 ** 400, -1, 5]
        d.health = stored(Health, ok=False, checked_at=1.0, latency_ms=None, message="\x1b]52;c;aGk=\x07bad",
                          status=None, skew_s=1e308)
        d.token = stored(Token, value="s" * (10 << 20), issued_at=1.0, expires_at=2.0, kind="session")

    service.transact(poison)
    for args in (("list",), ("list", "--json"), ("show", "tr"), ("show", "hy", "--json"), ("key-age",)):
        run = hostile.cli(*args)
        assert_clean(run, {0})
    run = hostile.cli("check", "--all", "--json")
    assert_clean(run, {0})
    still_works(hostile, tmp_path)


# --- finding 2: no size or time bound -----------------------------------------------------


@pytest.mark.parametrize("mode", ["huge_body", "gzip_bomb", "drip_body", "huge_chunked"])
def test_a_body_too_big_or_too_slow_ends_in_a_typed_error(hostile, hv, vault_path, mode) -> None:
    if mode == "drip_body":
        # Only the deadline ends a drip, whatever its length: the shortest one the vault
        # accepts.  (The size caps keep DEADLINE_S, well clear of their own bound.)
        set_deadline(vault_path, SHORTEST_DEADLINE_S)
    hv.mode = mode
    run = hostile.cli("check", "tr", "--json")
    assert_clean(run)
    assert run.code == 1, run  # unhealthy, said why
    row = json.loads(run.out)[0]
    assert row["ok"] is False
    assert ("MiB" in row["message"] or "deadline" in row["message"]) and "'tr'" in row["message"], row
    run = hostile.cli("login", "tr")
    assert_clean(run)
    assert run.code in (38, 39), run


# --- the suite: every misbehaviour, all four venues, every way in --------------------------

SUITE_DEADLINE_S = SHORTEST_DEADLINE_S
# Answers a venue could give that are well-formed underneath their poison: a call may
# succeed.  Every other mode must leave every account's check failing, said why.
WELL_FORMED = {"ratelimit_ms", "ratelimit_inf", "ratelimit_negative", "usage_poison", "date_year_1",
               "date_year_9999", "absurd_expiry", "wrong_shape", "large_token"}

# A bounded process that loads keyward once, then runs batches of calls, each call in a
# child forked from it (a real process, under the same memory bound, that costs a fork
# rather than an interpreter start): a CLI command through vault.cli.main.main exactly as
# `python -m vault` does, or vault.auth's signing flow for one account.  The calls of a
# batch run side by side: against a stalling venue each waits out its deadline, so a
# batch costs one deadline (two for doctor), not one per call.  One batch per line on
# stdin (JSON), its results on one line of stdout; a child that died (a signal, an
# uncaught exception) is reported with code -1.
FORKS = r"""
import contextlib, gc, importlib, io, json, os, sys, traceback
vault_path, passphrase_file = sys.argv[1], sys.argv[2]
import httpx, vault
from vault.cli.main import build_parser, main
from vault.core.errors import KeywardError
from vault.core.service import VaultService
from vault.net.http import make_client
from vault.ops.venue_ops import VenueOps
from vault.venues import get_provider
# What the calls import and set up on first use, done once here rather than in each
# child: every command's module, the venues' signing, the vault's KDF and cipher, an
# HTTP client.  (A module missing from the list costs speed, nothing else.)
build_parser()
for venue in ("powertrade", "tradeready", "hypersolutions", "kiiex"):
    get_provider(venue)
for name in ("jwt", "cryptography.x509", "cryptography.hazmat.primitives.asymmetric.ec", "encodings.idna",
             "getpass", "vault.api", "vault.agent.client", "vault.cli.fast", "vault.core.text", "vault.ops.views"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
VaultService.unlock(vault_path, open(passphrase_file).read().rstrip("\n"))
make_client().close()
gc.freeze()  # the children's collector leaves this process's objects (and their pages) alone


def cli(args, passphrase=True):
    out, err = io.StringIO(), io.StringIO()
    given = ["--passphrase-file", passphrase_file] if passphrase else []
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--vault", vault_path, *given, *args])
    return {"args": args, "code": code, "out": out.getvalue(), "err": err.getvalue()}


def signed(label, path):
    ops = VenueOps(VaultService.unlock(vault_path, open(passphrase_file).read().rstrip("\n")), notify=lambda m: None)
    auth = vault.auth(label, ops=ops)
    flow = auth.sync_auth_flow(httpx.Request("GET", auth.base_url + path))
    try:
        request = next(flow)
        code, text = 0, "signed " + ",".join(sorted(request.headers))
    except KeywardError as exc:
        code, text = exc.exit_code, "keyward: " + str(exc)
    return {"args": ["vault.auth", label], "code": code, "out": "", "err": text}


def run(kind, *call):
    fn = {"cli": cli, "signed": signed}[kind]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one call, its result on the pipe, and out
        os.close(r)
        try:
            result = fn(*call)
        except BaseException:
            result = {"args": [kind, *call], "code": -1, "out": "", "err": f"{kind}{call}: " + traceback.format_exc()}
        data = json.dumps(result).encode()
        while data:
            data = data[os.write(w, data):]
        os._exit(0)
    os.close(w)
    return pid, r, [kind, *call]


for line in sys.stdin:
    children = [run(*call) for call in json.loads(line)]
    results = []
    for pid, r, call in children:
        with os.fdopen(r, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not data:  # killed, or died before answering
            results.append({"args": call, "code": -1, "out": "",
                            "err": f"{call}: its process ended with status {os.waitstatus_to_exitcode(status)}"})
        else:
            results.append(json.loads(data))
    print(json.dumps(results), flush=True)
"""


class Forks:
    """FORKS for one vault, started under the memory bound; `run(calls)` is one batch."""

    def __init__(self, b: Bounded) -> None:
        import tempfile

        self.log = tempfile.TemporaryFile()  # its own stderr: read on failure, never a full pipe
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FORKS, str(b.kw.vault_path), str(b.kw.passphrase_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=b.env, start_new_session=True,
            preexec_fn=limit_memory, cwd=REPO, text=True)

    def run(self, calls: list[list], timeout: float = RUN_TIMEOUT) -> list[dict]:
        import select

        self.proc.stdin.write(json.dumps(calls) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        assert line, f"no answer to {calls} within {timeout} s: {self.stderr()}"
        results = json.loads(line)
        assert len(results) == len(calls), results
        return results

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-2000:]

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # it and any child still waiting on a venue
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.log.close()


def bounded_vault(root: Path, base_url: str) -> Bounded:
    """A hostile_vault() under `root` with its passphrase file and private home, run
    through Bounded (the agent's socket lives in that home: one agent per vault)."""
    from tests.conftest import KeywardCLI

    path = root / "vaultdir" / "vault.kw"
    hostile_vault(path, base_url, SUITE_DEADLINE_S)
    passphrase = root / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    passphrase.chmod(0o600)
    home = root / "home"
    (home / "run").mkdir(parents=True)
    (home / "run").chmod(0o700)
    return Bounded(KeywardCLI(path, passphrase, home))


@pytest.fixture(scope="module")
def suite_vault(tmp_path_factory, hv):
    """One vault for the whole suite: four accounts on the hostile venue, a short deadline."""
    return bounded_vault(tmp_path_factory.mktemp("hostile-suite"), hv.base_url)


@pytest.fixture(scope="module")
def suite_forks(suite_vault):
    forks = Forks(suite_vault)
    yield forks
    forks.close()


# Login, token, doctor and vault.auth: every way in but `check`, for all four venues.
SUITE_CALLS = [["cli", args] for args in (
    ["login", "tr"], ["login", "kx"], ["token", "tr", "--force"], ["token", "kx", "--force"],
    ["doctor", "pt"], ["doctor", "tr"], ["doctor", "hy"], ["doctor", "kx"])]
SUITE_CALLS += [["signed", label, path] for label, path in (
    ("tr", "/api/v1/agents/a1"), ("kx", "/GetUserAccounts"), ("hy", "/usage"), ("pt", "/v1/position/funds"))]


def fresh_start(b: Bounded) -> None:
    """No cached session and no recorded failed login: every call below reaches the venue."""
    from vault.core.service import VaultService
    from vault.ops.venue_ops import LOGIN_FAILED_AT, LOGIN_FAILURE

    service = VaultService.unlock(b.kw.vault_path, PASSPHRASE)

    def clear(data) -> None:
        for acct in data.accounts:
            acct.token = None
            acct.settings.pop(LOGIN_FAILED_AT, None)
            acct.settings.pop(LOGIN_FAILURE, None)

    service.transact(clear)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_misbehaviour_ends_typed_bounded_and_leaves_the_vault_working(suite_vault, suite_forks, hv, mode) -> None:
    b = suite_vault
    fresh_start(b)
    hv.mode = mode
    # check: all four venues at once, through the real `python -m vault`; beside it, each
    # in a bounded child of suite_forks, login, token, doctor and vault.auth.
    check = b.start([sys.executable, "-m", "vault", "--vault", str(b.kw.vault_path),
                     "--passphrase-file", str(b.kw.passphrase_file), "check", "--all", "--json"])
    results = suite_forks.run(SUITE_CALLS)
    run = b.finish(check)
    assert_clean(run, {0, 1})
    rows = {row["label"]: row for row in json.loads(run.out)}
    assert set(rows) == {"pt", "tr", "hy", "kx"}, run
    if mode not in WELL_FORMED:
        assert not any(row["ok"] for row in rows.values()), rows
        assert run.code == 1
    for row in rows.values():
        assert row["message"] and "\n" not in row["message"], row
    for result in results:
        one = Run(result["code"], result["out"], result["err"])
        assert_clean(one, CLI_EXIT_CODES)
        if mode not in WELL_FORMED and result["args"][0] in ("login", "token") or (
            mode not in WELL_FORMED and result["args"] in (["vault.auth", "tr"], ["vault.auth", "kx"])
        ):
            assert one.code != 0, (result, mode)
    hv.mode = "normal"
    run = b.cli("list", "--json")
    assert_clean(run, {0})
    assert {r["label"] for r in json.loads(run.out)} == {"pt", "tr", "hy", "kx"}


def agent_through_modes(b: Bounded, server: HostileVenue, modes: list[str]) -> None:
    """Start the unlock agent of `b`'s vault (under the memory bound), put `server` in each
    of `modes` in turn, and have the agent log in, issue a token and check; after each
    mode, the same agent must still answer."""
    run = b.cli("unlock", "--ttl", "10m")
    assert run.code == 0, run
    agent = json.loads(b.cli("status", "--json").out)
    assert agent["running"] is True and agent["pid"], agent
    forks = Forks(b)
    # No passphrase given: only the agent can serve these.  All three at once: against a
    # stalling venue each waits out the deadline, and the agent serves them side by side
    # (token) or in its one slow lane.
    calls = [["cli", args, False] for args in (["token", "tr", "--force"], ["login", "kx"], ["check", "--all", "--json"])]
    try:
        for mode in modes:
            server.mode = mode
            for result in forks.run(calls):
                run = Run(result["code"], result["out"], result["err"])
                assert_clean(run, CLI_EXIT_CODES)
                if mode not in WELL_FORMED:
                    assert run.code != 0, (mode, result["args"], run)
            server.mode = "normal"
            [result] = forks.run([["cli", ["status", "--json"], False]])
            status = json.loads(result["out"])
            assert status["running"] is True and status["pid"] == agent["pid"], (mode, status)  # the same agent
        run = b.cli("list", passphrase=False)
        assert_clean(run, {0})
    finally:
        forks.close()
        b.cli("lock")
        server.mode = "normal"


def test_the_agent_survives_every_misbehaviour(hv, tmp_path) -> None:
    """The unlock agent (started under the same memory bound) logs in and checks for
    every mode, answers each with a typed error, and is still there afterwards.

    The modes are shared between two agents, each on its own vault and its own hostile
    venue (a venue has one mode at a time), running side by side: every mode still meets
    an agent, and the deadlines the stalling modes wait out overlap."""
    from concurrent.futures import ThreadPoolExecutor

    modes = sorted(MODES)
    with HostileVenue() as other, ThreadPoolExecutor(2) as pool:
        shards = [(hv, modes[0::2]), (other, modes[1::2])]
        futures = [pool.submit(agent_through_modes, bounded_vault(tmp_path / f"agent-{i}", server.base_url),
                               server, shard)
                   for i, (server, shard) in enumerate(shards)]
        for future in futures:
            future.result()
