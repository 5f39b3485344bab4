"""`keyward monitor` with 1,000 accounts against the sandbox: a /metrics scrape, and the
monitor's idle CPU between cycles.

References, measured in this run:
* the scrape: a bare prometheus_client registry holding the same series (the same names,
  labels and values, as Gauge and Counter objects), served by prometheus_client's own
  HTTP server in a process of its own, scraped by the same client loop, round-robin.
  Target: the monitor's scrape <= 1.5x the reference.
* idle CPU: an idle Python process (`time.sleep`) over the same window.  Target: the
  monitor, after its first cycle and before its next, uses <= 1% of one core.

BENCH_ACCOUNTS (default 1000), BENCH_RUNS (scrapes, default 30), BENCH_IDLE_S (default 40).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vault.core.fileformat import KdfParams  # noqa: E402
from vault.core.model import Account  # noqa: E402
from vault.core.service import VaultService  # noqa: E402
from vault.ops.formats import recognise  # noqa: E402
from vault.sandbox import Sandbox  # noqa: E402
from vault.venues import get_provider  # noqa: E402

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "1000"))
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
IDLE_S = float(os.environ.get("BENCH_IDLE_S", "40"))  # spans a labels refresh (every 30 s)
VENUES = ("powertrade", "tradeready", "hypersolutions", "kiiex")
PASSPHRASE = "benchmark passphrase"
METRICS = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")

# A bare registry with the series of a scrape saved to a file: the reference exporter.
REFERENCE = """\
import sys, time
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.parser import text_string_to_metric_families
registry = CollectorRegistry()
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    labels = sorted({k for s in family.samples for k in s.labels})
    kind = Counter if family.type == "counter" else Gauge
    metric = kind(family.name, family.documentation, labels, registry=registry)
    for s in family.samples:
        if s.name.endswith("_created"):
            continue
        child = metric.labels(**s.labels) if labels else metric
        child.inc(s.value) if kind is Counter else child.set(s.value)
server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
print(server.server_address[1], flush=True)
time.sleep(3600)
"""


def fields_for(sb: Sandbox, venue: str, i: int) -> dict[str, str]:
    raw = sb.issue(venue, **({"display_name": f"bench{i}"} if venue == "tradeready" else {}))
    if venue in ("tradeready", "kiiex"):
        return recognise(raw)[1]
    return {k: str(v) for k, v in raw.items()}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        rest = fh.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def scrape_ms(port: int) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
        resp.read()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="kwbench") as tmp, Sandbox() as sb:
        home = Path(tmp)
        (home / "run").mkdir(mode=0o700)
        vault, passfile = home / "vault.kw", home / "passphrase"
        passfile.write_text(PASSPHRASE + "\n")
        service = VaultService.create(vault, PASSPHRASE, KdfParams(iterations=1, memory_kib=8 * 1024, parallelism=1))
        accounts = []
        for i in range(ACCOUNTS):
            venue = VENUES[i % len(VENUES)]
            provider = get_provider(venue)
            accounts.append(Account(label=f"{venue[:2]}{i:04d}", venue=venue, base_url=sb.base_url(venue),
                                    fields=provider.normalize(fields_for(sb, venue, i)), created_at=time.time()))
        service.transact(lambda data: data.accounts.extend(accounts))
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")}
        env |= {"HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"), "XDG_STATE_HOME": str(home / "state"),
                "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "vault", "--vault", str(vault), "--passphrase-file", str(passfile), "monitor",
               "--listen", "127.0.0.1:0", "--interval", "3600"]
        monitor = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(monitor.stderr), daemon=True).start()
        reference = None
        try:
            port = None
            deadline = time.monotonic() + 120
            while port is None:
                found = [METRICS.search(line) for line in lines]
                port = next((int(m.group(1)) for m in found if m), None)
                if monitor.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the monitor did not start: {''.join(lines)}")
                time.sleep(0.1)
            t0 = time.monotonic()
            while True:  # the first cycle: every account checked once
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
                    text = resp.read().decode()
                done = len(re.findall(r'^keyward_last_check_timestamp_seconds\{', text, re.M))
                if done >= ACCOUNTS:
                    break
                if monitor.poll() is not None or time.monotonic() - t0 > 1800:
                    raise SystemExit(f"the first cycle did not finish ({done}/{ACCOUNTS})")
                time.sleep(1)
            cycle_s = time.monotonic() - t0
            time.sleep(2)  # the last saves and the status file settle

            # Idle CPU between cycles (no scrapes meanwhile), against an idle Python process.
            idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
            time.sleep(0.5)
            m0, i0, w0 = cpu_seconds(monitor.pid), cpu_seconds(idle.pid), time.monotonic()
            time.sleep(IDLE_S)
            m1, i1, w1 = cpu_seconds(monitor.pid), cpu_seconds(idle.pid), time.monotonic()
            idle.kill()
            idle.wait()
            monitor_cpu = (m1 - m0) / (w1 - w0)
            idle_cpu = (i1 - i0) / (w1 - w0)

            # The scrape, against a bare registry holding the same series.
            saved = home / "scrape.prom"
            saved.write_text(text)
            reference = subprocess.Popen([sys.executable, "-c", REFERENCE, str(saved)], stdout=subprocess.PIPE, text=True)
            ref_port = int(reference.stdout.readline())
            samples = {"monitor": [], "reference": []}
            for _ in range(3):  # warm both
                scrape_ms(port), scrape_ms(ref_port)
            for _ in range(RUNS):
                samples["monitor"].append(scrape_ms(port))
                samples["reference"].append(scrape_ms(ref_port))
            mine, ref = statistics.median(samples["monitor"]), statistics.median(samples["reference"])
            series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        finally:
            monitor.terminate()
            monitor.wait(60)
            if reference is not None:
                reference.kill()
                reference.wait()

    ratio = mine / ref
    print(f"{ACCOUNTS} accounts ({', '.join(VENUES)}), {series:,} series; first cycle (every account checked "
          f"and saved once): {cycle_s:.1f} s")
    print(f"/metrics scrape, median of {RUNS}, round-robin:")
    print(f"  bare prometheus_client registry, same series (reference)  {ref:7.1f} ms")
    print(f"  keyward monitor (collector reading its state)             {mine:7.1f} ms   {ratio:.2f}x the reference")
    print(f"idle CPU between cycles, over {IDLE_S:.0f} s:")
    print(f"  idle python process (reference)                          {idle_cpu:7.2%} of one core")
    print(f"  keyward monitor                                          {monitor_cpu:7.2%} of one core")
    met_scrape, met_idle = ratio <= 1.5, monitor_cpu <= 0.01
    print(f"target scrape <= 1.50x the reference: {'met' if met_scrape else 'MISSED'} ({ratio:.2f}x)")
    print(f"target idle <= 1% of one core: {'met' if met_idle else 'MISSED'} ({monitor_cpu:.2%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
