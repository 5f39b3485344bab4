"""Minting cost: keyward's signing beside the bare library call it wraps.

1. In process, per scheme: the provider's mint (PowerTrade with its key cache warm and
   a token saved on the account, as after the first mint of an unlock) against
   `jwt.encode` with a preloaded key and the same claims (a seconds nonce that rises, as
   the scheme asks); Hyper's HS256 signature against `jwt.encode`; Kiiex's HMAC against
   `hmac.new`.  Target: <= 1.2x.  Also `VenueOps.sign` (what the Python API calls per
   request: lookup, mint, headers) for PowerTrade, against the same `jwt.encode` taking
   iat and nonce from the clock per token, as sign does.
2. Cold processes: `keyward token LABEL` against a minimal script that pays the same
   Argon2id unlock (small KDF: t=1, m=8 MiB, p=1), loads the PEM from a file and mints
   the same token with PyJWT.  `keyward token` also saves the vault (audit entry and
   the token's expiry), which the script does not.  Then checks, with -X importtime,
   that this path imports neither textual nor rich nor the dashboard (exit 1 if it does).

Numbers are printed, not asserted: ratios are against the reference measured in this run.
Run: python benchmarks/bench_mint.py
"""

from __future__ import annotations

import hashlib
import hmac
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jwt  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from vault.core.fileformat import KdfParams  # noqa: E402
from vault.core.model import Account  # noqa: E402
from vault.ops.venue_ops import VenueOps  # noqa: E402
from vault.venues import get_provider  # noqa: E402
from vault.venues.kiiex import signature  # noqa: E402
from vault.venues.powertrade import KeyCache  # noqa: E402
from vault.core.service import VaultService  # noqa: E402

SMALL_KDF = KdfParams(1, 8 * 1024, 1)
PASSPHRASE = "benchmark passphrase"


TARGET = 1.2  # in-process: keyward's mint or sign against the bare library call


def paired_us(ours, ref, number: int, rounds: int = 100) -> tuple[float, float]:
    """Microseconds per call, best of `rounds` alternating runs of `number` calls each:
    alternating keeps a busy neighbour on the machine from favouring either side.  Many
    short runs give each side as many chances at a quiet moment, and which side runs
    first swaps every round, so neither always follows the other."""
    a, b = [], []
    for i in range(rounds):
        if i % 2:
            b.append(timeit.timeit(ref, number=number))
            a.append(timeit.timeit(ours, number=number))
        else:
            a.append(timeit.timeit(ours, number=number))
            b.append(timeit.timeit(ref, number=number))
    return min(a) / number * 1e6, min(b) / number * 1e6


def row(name: str, ours: float, ref: float, unit: str = "us", target: float | None = None) -> None:
    verdict = "" if target is None else f"   (target <= {target:.1f}x: {'met' if ours / ref <= target else 'MISSED'})"
    print(f"  {name:<44} {ours:10.1f} {unit}  vs {ref:10.1f} {unit}   ratio {ours / ref:5.2f}x{verdict}")


def pem_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key, pem.decode()


def in_process() -> None:
    print(f"in-process mint vs the bare library call (target <= {TARGET}x)")
    now = time.time()

    key, pem = pem_key()
    pt = get_provider("powertrade")
    acct = Account(label="pt", venue="powertrade", base_url="https://x", fields={"api_key": "k" * 36, "private_key": pem})
    cache = KeyCache()
    acct.token = pt.mint(acct, now, cache)  # the first mint of an unlock parses the PEM; its token is saved
    nonce = [0]

    def raw_es256() -> str:
        # The scheme's nonce: a timestamp (seconds, keyward's default) that still rises
        # within one second; a bare counter would start again at 1 in the next process.
        nonce[0] = max(int(now), nonce[0] + 1)
        iat = int(now) - 5
        claims = {"sub": "k" * 36, "iat": iat, "exp": iat + 30, "client": "api", "nonce": nonce[0]}
        return jwt.encode(claims, key, algorithm="ES256")

    def raw_es256_now() -> str:  # the same, with iat and nonce from the clock per request (no extra call)
        at = time.time()
        nonce[0] = max(int(at), nonce[0] + 1)
        iat = int(at) - 5
        claims = {"sub": "k" * 36, "iat": iat, "exp": iat + 30, "client": "api", "nonce": nonce[0]}
        return jwt.encode(claims, key, algorithm="ES256")

    row("PowerTrade ES256 (provider.mint, key cached)", *paired_us(lambda: pt.mint(acct, now, cache), raw_es256, 150),
        target=TARGET)

    hy = get_provider("hypersolutions")
    jwt_key = os.urandom(32).hex()
    hacct = Account(label="hy", venue="hypersolutions", base_url="https://x", fields={"api_key": "a" * 32, "jwt_key": jwt_key})
    secret = jwt_key.encode()
    row("Hyper HS256 x-signature (provider.mint)", *paired_us(
        lambda: hy.mint(hacct, now), lambda: jwt.encode({"key": "a" * 32, "exp": int(now) + 15}, secret, algorithm="HS256"), 600),
        target=TARGET)

    api_secret, nonce_s, uid, api_key = os.urandom(16).hex(), "123456789", "1001", os.urandom(16).hex()
    row("Kiiex HMAC-SHA256 signature", *paired_us(
        lambda: signature(api_secret, nonce_s, uid, api_key),
        lambda: hmac.new(api_secret.encode(), (nonce_s + uid + api_key).encode(), hashlib.sha256).hexdigest(), 3000),
        target=TARGET)

    with tempfile.TemporaryDirectory() as tmp:
        service = VaultService.create(Path(tmp) / "v.kw", PASSPHRASE, SMALL_KDF)
        service.add_account(Account(label="pt", venue="powertrade", base_url="https://x",
                                    fields={"api_key": "k" * 36, "private_key": pem}))
        ops = VenueOps(service, notify=lambda m: None)
        ops.token("pt")  # as after `keyward token pt`: the key is parsed and a token is saved on the account
        row("PowerTrade VenueOps.sign (per-request path)", *paired_us(lambda: ops.sign("pt", "/v1/x"), raw_es256_now, 150),
            target=TARGET)
        ops.close()


REFERENCE_SCRIPT = """
import sys, time
from argon2.low_level import Type, hash_secret_raw
import jwt
from cryptography.hazmat.primitives import serialization
hash_secret_raw(open(sys.argv[1]).readline().strip().encode(), b"0" * 16, time_cost=1, memory_cost=8192,
                parallelism=1, hash_len=32, type=Type.ID, version=19)
key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
now = int(time.time()) - 5
print(jwt.encode({"sub": sys.argv[3], "iat": now, "exp": now + 30, "client": "api", "nonce": int(time.time() * 1000)},
                 key, algorithm="ES256"))
"""


def cold_processes(runs: int = 9) -> None:
    print(f"\ncold process: `keyward token` vs a minimal PyJWT script (median of {runs}, small KDF in both)")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        key, pem = pem_key()
        (tmpdir / "key.pem").write_text(pem)
        (tmpdir / "pass").write_text(PASSPHRASE + "\n")
        (tmpdir / "ref.py").write_text(REFERENCE_SCRIPT)
        vault_path = tmpdir / "vault.kw"
        service = VaultService.create(vault_path, PASSPHRASE, SMALL_KDF)
        service.add_account(Account(label="pt", venue="powertrade", base_url="https://api.rest.test.power.trade",
                                    env="test", fields={"api_key": "bench-key", "private_key": pem}))
        # Bytecode caching on, as for an installed keyward (this machine may disable it,
        # which would make every run recompile keyward's sources but not PyJWT's).
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_") and k != "PYTHONDONTWRITEBYTECODE"}
        env |= {"HOME": str(tmpdir), "XDG_RUNTIME_DIR": str(tmpdir)}  # no unlock agent: a true cold run
        ours = [sys.executable, "-m", "vault", "--vault", str(vault_path), "--passphrase-file", str(tmpdir / "pass"), "token", "pt"]
        ref = [sys.executable, str(tmpdir / "ref.py"), str(tmpdir / "pass"), str(tmpdir / "key.pem"), "bench-key"]

        def timed(cmd: list[str]) -> float:
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
            elapsed = (time.perf_counter() - t0) * 1000
            jwt.decode(out.strip(), key.public_key(), algorithms=["ES256"], options={"verify_exp": False, "verify_iat": False})
            return elapsed

        timed(ours), timed(ref)  # warm the OS file cache (and bytecode cache) for both
        a, b = [], []
        for _ in range(runs):  # alternating, for the same reason as paired_us
            a.append(timed(ours))
            b.append(timed(ref))
        a, b = statistics.median(a), statistics.median(b)
        row("keyward token (unlock + mint + audit save)", a, b, "ms")

        # The CLI path must not load the dashboard: -X importtime lists every module.
        probe = subprocess.run([sys.executable, "-X", "importtime", *ours[1:]], capture_output=True, text=True, env=env)
        modules = [line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if line.startswith("import time:")]
        heavy = sorted({m.split(".")[0] for m in modules if m.split(".")[0] in ("textual", "rich", "tui")})
        print(f"  modules imported by `keyward token`: {len(modules)}; textual/rich/tui among them: {heavy or 'none'}")
        if probe.returncode != 0 or heavy:
            raise SystemExit("`keyward token` failed or imported the dashboard's modules")


if __name__ == "__main__":
    in_process()
    cold_processes()
