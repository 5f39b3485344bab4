"""Open and save at 10, 1,000 and 10,000 accounts, beside the KDF that every unlock pays.

Reference, measured in this run: one Argon2id derivation at the default parameters
(t=3, m=64 MiB, p=4).  Targets (issue #2): beyond the KDF, open <= 100 ms and save
<= 200 ms at 10,000 accounts; the KDF >= 90% of an unlock at 1,000 accounts.

Issue 14 adds a floor measured in the same run, on the same file: read it, check the
header, decrypt, `json.loads` (what any design that keeps the vault as one JSON document
pays).  Open beyond the KDF within 2x of it at 10,000 accounts.  Open and floor are timed
alternately, so a change in the machine's load hits both.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vault.core import fileformat as ff  # noqa: E402
from vault.core.model import Account  # noqa: E402
from vault.core.service import VaultService, decode_payload  # noqa: E402


def median_ms(fn, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def paired_medians_ms(fns, repeat: int = 9) -> list[float]:
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            samples[i].append((time.perf_counter() - t0) * 1000)
    return [statistics.median(s) for s in samples]


def account(i: int) -> Account:
    return Account(
        label=f"acct-{i:05d}",
        venue="kiiex",
        base_url="https://alphaprod.proxy.kiiex.io/ap",
        env="prod",
        fields={"api_key": os.urandom(16).hex(), "api_secret": os.urandom(32).hex(), "nonce": os.urandom(8).hex(), "user_id": str(i)},
        created_at=time.time(),
    )


def main() -> None:
    kdf = ff.DEFAULT_KDF
    salt = os.urandom(16)
    kdf_ms = median_ms(lambda: ff.derive_kek("benchmark passphrase", salt, kdf), 3)
    print(f"reference: Argon2id {kdf.describe()} = {kdf_ms:.0f} ms")
    print(f"{'accounts':>9} {'file KiB':>9} {'open-KDF ms':>12} {'save ms':>9} {'open/KDF':>9} {'save/KDF':>9} "
          f"{'KDF share of unlock':>20} {'floor ms':>9} {'open/floor':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        # Rollback detection remembers each vault in the state directory: the bench's
        # throwaway vaults are remembered in the throwaway directory, not the user's.
        os.environ["XDG_STATE_HOME"] = str(Path(tmp) / "state")
        for n in (10, 1_000, 10_000):
            path = Path(tmp) / f"v{n}.kw"
            # Build with the floor KDF, then measure the parts of an unlock that are not the KDF.
            svc = VaultService.create(path, "benchmark passphrase", ff.KdfParams(1, 8192, 1))
            svc.transact(lambda data: data.accounts.extend(account(i) for i in range(n)))
            key = svc._key

            def open_beyond_kdf() -> None:
                # What an unlock does besides Argon2id: read, check, decrypt, decode, and
                # the rollback check against the state directory (in VaultService()).
                blob = svc.file.read()
                header = ff.parse(blob)
                VaultService(svc.file, header, key, decode_payload(ff.open_payload(blob, header, key)), time.time)

            def floor() -> None:
                blob = svc.file.read()
                header = ff.parse(blob)
                json.loads(ff.open_payload(blob, header, key))

            def save() -> None:
                svc.transact(lambda data: None)

            open_ms, floor_ms = paired_medians_ms([open_beyond_kdf, floor])
            save_ms = median_ms(save)
            share = kdf_ms / (kdf_ms + open_ms)
            size = path.stat().st_size / 1024
            print(f"{n:>9,} {size:>9.0f} {open_ms:>12.1f} {save_ms:>9.1f} {open_ms / kdf_ms:>9.3f} {save_ms / kdf_ms:>9.3f} "
                  f"{share:>19.1%} {floor_ms:>9.1f} {open_ms / floor_ms:>10.2f}x")
            if n == 10_000:
                def met(ok: bool) -> str:
                    return "met" if ok else "MISSED"

                print(f"  targets at 10,000: open beyond KDF {open_ms:.0f}/100 ms ({open_ms / 100:.2f}x of budget): "
                      f"{met(open_ms <= 100)}; {open_ms / floor_ms:.2f}x decrypt + json.loads (target <= 2.0x): "
                      f"{met(open_ms <= 2 * floor_ms)}; save {save_ms:.0f}/200 ms ({save_ms / 200:.2f}x of budget): "
                      f"{met(save_ms <= 200)}")
            if n == 1_000:
                print(f"  target at 1,000: KDF share {share:.1%} (>= 90%)")
        full_trail(Path(tmp))


def full_trail(tmp: Path) -> None:
    """A vault used for a week by a bot that mints once a minute holds a full audit trail
    (audit.MAX_ENTRIES entries), which every save rewrites and every open decodes.  Its
    cost beside the same 10 accounts with an empty trail, timed alternately; the save is
    what each `keyward token` through the agent pays.  Reported, no target."""
    from vault.core import audit

    services = []
    for name, entries in (("empty", 0), ("full", audit.MAX_ENTRIES - 100)):
        svc = VaultService.create(tmp / f"trail-{name}.kw", "benchmark passphrase", ff.KdfParams(1, 8192, 1))
        svc.transact(lambda data: data.accounts.extend(account(i) for i in range(10)))
        svc.transact(lambda data: [audit.append(data, time.time(), "mint", "acct-00001", "ok", "jwt minted, expires "
                                                "2026-12-08T01:44:16Z") for _ in range(entries)])
        services.append(svc)

    def record(svc: VaultService):
        return lambda: svc.record("mint", "acct-00001", "ok", "jwt minted, expires 2026-12-08T01:44:16Z")

    def opening(svc: VaultService):
        key = svc._key

        def open_beyond_kdf() -> None:
            blob = svc.file.read()
            header = ff.parse(blob)
            VaultService(svc.file, header, key, decode_payload(ff.open_payload(blob, header, key)), time.time)

        return open_beyond_kdf

    save_empty, save_full = paired_medians_ms([record(s) for s in services])
    open_empty, open_full = paired_medians_ms([opening(s) for s in services])
    print(f"a full audit trail ({len(services[1].data.audit):,} entries, 10 accounts) beside an empty one: "
          f"save {save_full:.1f} vs {save_empty:.1f} ms ({save_full / save_empty:.1f}x), "
          f"open beyond the KDF {open_full:.1f} vs {open_empty:.1f} ms ({open_full / open_empty:.0f}x); reported, no target")


if __name__ == "__main__":
    main()
