"""The key derivation against two other implementations of Argon2id v1.3.

keyward calls the C library through argon2-cffi-bindings directly (vault.core.fileformat
.derive_kek); argon2-cffi's own wrapper and OpenSSL's Argon2id (through cryptography,
an implementation that shares no code with it) must derive the same bytes."""

from __future__ import annotations

import pytest

from vault.core import fileformat as ff
from vault.core.errors import UnsafeKdfParameters

CASES = [
    ("correct horse battery staple", bytes(range(16)), ff.KdfParams(1, 8 * 1024, 1)),
    ("plinth ochre gambit sundial (benchmark)", b"\xff" * 16, ff.KdfParams(2, 16 * 1024, 2)),
    ("pässwörd ☃ with non-ASCII", b"0123456789abcdef", ff.KdfParams(3, 8 * 1024, 4)),
]


@pytest.mark.parametrize("passphrase,salt,kdf", CASES)
def test_derive_kek_is_argon2id_as_argon2_cffi_derives_it(passphrase: str, salt: bytes, kdf: ff.KdfParams) -> None:
    from argon2.low_level import Type, hash_secret_raw

    expected = hash_secret_raw(passphrase.encode("utf-8"), salt, time_cost=kdf.iterations, memory_cost=kdf.memory_kib,
                               parallelism=kdf.parallelism, hash_len=32, type=Type.ID, version=19)
    assert ff.derive_kek(passphrase, salt, kdf) == expected


@pytest.mark.parametrize("passphrase,salt,kdf", CASES)
def test_derive_kek_is_argon2id_as_openssl_derives_it(passphrase: str, salt: bytes, kdf: ff.KdfParams) -> None:
    try:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        oracle = Argon2id(salt=salt, length=32, iterations=kdf.iterations, lanes=kdf.parallelism,
                          memory_cost=kdf.memory_kib)
        expected = oracle.derive(passphrase.encode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - an OpenSSL older than 3.2 has no Argon2
        pytest.skip(f"this cryptography/OpenSSL has no Argon2id ({type(exc).__name__})")
    assert ff.derive_kek(passphrase, salt, kdf) == expected


def test_parameters_outside_the_bounds_never_reach_the_library() -> None:
    with pytest.raises(UnsafeKdfParameters):
        ff.derive_kek("x", bytes(16), ff.KdfParams(0, 8 * 1024, 1))


# --- the KDF started ahead of its caller (vault.core.kdf.derive_ahead) --------------------------


@pytest.fixture
def counted_argon2(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each real Argon2id run, by the name of the thread it ran on."""
    import threading

    from vault.core import kdf

    runs: list[str] = []
    real = kdf._argon2id

    def counted(secret: bytes, salt: bytes, params: ff.KdfParams) -> bytes:
        runs.append(threading.current_thread().name)
        return real(secret, salt, params)

    monkeypatch.setattr(kdf, "_argon2id", counted)
    monkeypatch.setattr(kdf, "_pending", None)
    return runs


@pytest.mark.parametrize("passphrase,salt,kdf", CASES)
def test_a_derivation_started_ahead_is_used_once_and_derives_the_same_key(
        counted_argon2: list[str], passphrase: str, salt: bytes, kdf: ff.KdfParams) -> None:
    from argon2.low_level import Type, hash_secret_raw

    expected = hash_secret_raw(passphrase.encode("utf-8"), salt, time_cost=kdf.iterations, memory_cost=kdf.memory_kib,
                               parallelism=kdf.parallelism, hash_len=32, type=Type.ID, version=19)
    from vault.core.kdf import derive_ahead

    derive_ahead(passphrase, salt, kdf)
    assert ff.derive_kek(passphrase, salt, kdf) == expected
    assert counted_argon2 == ["keyward-kdf"]  # ran once, on its own thread
    assert ff.derive_kek(passphrase, salt, kdf) == expected  # taken once: the next call derives again
    assert counted_argon2 == ["keyward-kdf", "keyward-kdf"]  # (from the main thread too, see below)


@pytest.mark.parametrize("change", ["passphrase", "salt", "cost"])
def test_a_derivation_ahead_for_other_inputs_is_never_used(counted_argon2: list[str], change: str) -> None:
    from vault.core.kdf import derive_ahead

    passphrase, salt, kdf = CASES[0]
    derive_ahead(passphrase, salt, kdf)
    asked = {"passphrase": ("correct horse battery stapler", salt, kdf),
             "salt": (passphrase, bytes(16), kdf),
             "cost": (passphrase, salt, ff.KdfParams(2, 8 * 1024, 1))}[change]
    from argon2.low_level import Type, hash_secret_raw

    p, s, k = asked
    expected = hash_secret_raw(p.encode("utf-8"), s, time_cost=k.iterations, memory_cost=k.memory_kib,
                               parallelism=k.parallelism, hash_len=32, type=Type.ID, version=19)
    assert ff.derive_kek(*asked) == expected
    assert len(counted_argon2) == 2  # the one ahead, dropped, and the one asked for


def test_unlock_ahead_starts_nothing_for_a_cost_over_budget_or_out_of_bounds_or_unknown(counted_argon2: list[str]) -> None:
    from vault.core import kdf

    header, _key, blob = ff.encrypt_new(b"{}", "correct horse battery staple", ff.KdfParams(1, 8 * 1024, 1))
    counted_argon2.clear()
    tight = ff.KdfBudget(4 * 1024, 4 * 1024, "test")
    ff.unlock_ahead(blob, "correct horse battery staple", budget=tight)
    ff.unlock_ahead(blob[:8] + b"\x09" + blob[9:], "correct horse battery staple")  # a version it cannot read
    ff.unlock_ahead(blob[:9] + b"\x07" + blob[10:], "correct horse battery staple")  # an unknown KDF
    ff.unlock_ahead(blob[:10] + (1 << 20).to_bytes(4, "big") + blob[14:], "correct horse battery staple")  # t too high
    ff.unlock_ahead(b"not a vault", "correct horse battery staple")
    assert kdf._pending is None and counted_argon2 == []
    ff.unlock_ahead(blob, "correct horse battery staple")
    assert kdf._pending is not None
    assert ff.unlock(blob, "correct horse battery staple")[2] == b"{}"
    assert counted_argon2 == ["keyward-kdf"]


def test_off_the_main_thread_the_kdf_runs_on_the_callers_thread(counted_argon2: list[str]) -> None:
    """Only the main thread gets signals: anywhere else (the agent's connections, the
    dashboard's workers) a thread more would buy nothing."""
    import threading

    passphrase, salt, params = CASES[0]
    worker = threading.Thread(target=ff.derive_kek, args=(passphrase, salt, params), name="some-worker")
    worker.start()
    worker.join()
    assert counted_argon2 == ["some-worker"]


@pytest.mark.parametrize("caller", ["cli", "service"])
def test_ctrl_c_during_the_kdf_ends_the_command_at_once(tmp_path, caller: str) -> None:
    """Argon2id runs in C and looks at no signal: run on the main thread, a Ctrl-C waited
    for the whole derivation.  On its own thread (started ahead by the CLI, or by
    derive_kek for any caller on the main thread: the Python API, passwd, import), the
    main thread waits in a join that a signal interrupts.  A vault file whose header asks
    for 12 GiB-passes (about 10 s here, within the vault budget) is interrupted half a
    second in."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import hashlib

    from vault.core.service import VaultService

    from .conftest import PASSPHRASE, REPO, SMALL_KDF

    path = tmp_path / "vault.kw"
    VaultService.create(path, PASSPHRASE, SMALL_KDF).lock()
    blob = bytearray(path.read_bytes())
    blob[10:22] = b"".join(n.to_bytes(4, "big") for n in (24, 512 * 1024, 1))  # t, m (KiB), p
    blob[-32:] = hashlib.sha256(bytes(blob[:-32])).digest()  # the checksum is no seal: anyone can recompute it
    path.write_bytes(bytes(blob))
    assert ff.parse(bytes(blob)).kdf == ff.KdfParams(24, 512 * 1024, 1)
    passfile = tmp_path / "pass"
    passfile.write_text(PASSPHRASE + "\n")
    passfile.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {
        "PYTHONPATH": str(REPO), "XDG_STATE_HOME": str(tmp_path / "state")}
    command = {
        "cli": ["-m", "vault", "--vault", str(path), "--passphrase-file", str(passfile), "list"],
        "service": ["-c", "import sys; from vault.core.service import VaultService\ntry:\n"
                    f"    VaultService.unlock({str(path)!r}, {PASSPHRASE!r})\n"
                    "except KeyboardInterrupt:\n    sys.exit('keyward: interrupted; nothing was changed')"],
    }[caller]
    child = subprocess.Popen([sys.executable, *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    try:
        _out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    waited = time.monotonic() - signalled
    assert child.returncode == (130 if caller == "cli" else 1) and "interrupted; nothing was changed" in err, err
    assert waited < 3.0, f"the command ended {waited:.1f} s after Ctrl-C: it waited for the KDF"


# What a cold command loads before the KDF starts is paid in full: nothing overlaps it.
# Everything else (the model, the service, cryptography) loads while Argon2id runs.
LOADED_WHILE_THE_KDF_RUNS = ("dataclasses", "inspect", "typing", "json", "cryptography", "vault.core.model",
                             "vault.core.service", "vault.net.http", "vault.ops.venue_ops")
AT_KDF_START_PROBE = r"""
import sys
already = set(sys.modules)  # (what the interpreter's own start-up loaded is not keyward's doing)
from vault.core import kdf

real = kdf.derive_ahead

def probe(*args, **kwargs):
    real(*args, **kwargs)
    sys.stderr.write("\nKW_AT_KDF_START=" + repr(sorted(set(sys.modules) - already)) + "\n")  # (no json: it is on the list)

kdf.derive_ahead = probe
from vault.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", [["show", "acct", "--reveal"], ["list", "--json"]])
def test_a_cold_command_starts_the_kdf_before_it_loads_the_model_or_the_ciphers(tmp_path, command: list[str]) -> None:
    """The KDF starts as soon as the passphrase and the header's cost are known; what
    loads before that adds to every cold command's time, one for one.  Importing
    `dataclasses` alone (it imports `inspect`) was ~8 ms of that: the command's Context
    and the file header's values are plain classes and named tuples for this reason."""
    import ast
    import os
    import subprocess
    import sys

    from vault.core.model import Account
    from vault.core.service import VaultService

    from .conftest import PASSPHRASE, REPO, SMALL_KDF

    path = tmp_path / "vault.kw"
    service = VaultService.create(path, PASSPHRASE, SMALL_KDF)
    service.add_account(Account(label="acct", venue="kiiex", base_url="https://alphaprod.proxy.kiiex.io/ap",
                                fields={"api_key": "k" * 32, "api_secret": "s" * 64, "user_id": "7", "nonce": "1"}))
    service.lock()
    passfile = tmp_path / "pass"
    passfile.write_text(PASSPHRASE + "\n")
    passfile.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")} | {
        "PYTHONPATH": str(REPO), "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-c", AT_KDF_START_PROBE, "--vault", str(path), "--passphrase-file",
                           str(passfile), *command], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stderr.rsplit("KW_AT_KDF_START=", 1)[1].strip()))
    assert "vault.core.fileformat" in loaded  # (the probe ran where the KDF starts)
    early = sorted(name for name in LOADED_WHILE_THE_KDF_RUNS if name in loaded)
    assert not early, f"loaded before the KDF started: {early}"
