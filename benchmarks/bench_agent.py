"""`keyward token LABEL` served by the unlock agent, as a cold process, against references.

References, measured in this run: `python -c pass` (the floor: interpreter start-up) and a
minimal script minting the same PowerTrade ES256 token with PyJWT from a key file on disk
(the alternative a script author would write).  Target (issue: the unlock agent): the
agent path <= 0.5x the PyJWT script, since the client needs only a socket and JSON
while the agent does the signing.  For scale, the same command without an agent (a
passphrase file and one default Argon2id derivation per call) is measured too.

Also reported: the CLI path's import time (`python -X importtime`), and that textual,
httpx, PyJWT, cryptography and argon2 stay out of it when an agent answers.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vault.core import fileformat as ff  # noqa: E402
from vault.sandbox import Sandbox  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
HEAVY = ("textual", "httpx", "jwt", "cryptography", "argon2")
PYJWT_SCRIPT = """\
import sys, time
import jwt
key = open(sys.argv[1]).read()
now = int(time.time())
print(jwt.encode({"sub": sys.argv[2], "iat": now - 5, "exp": now + 25, "client": "api"}, key, algorithm="ES256"))
"""


def medians_ms(cmds: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, float]:
    """Median wall time of each command, run round-robin so that a load change on the
    machine hits every command alike instead of skewing the ratios."""
    samples: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
            samples[name].append((time.perf_counter() - t0) * 1000)
            if done.returncode != 0:
                raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{done.stderr.decode()}")
    return {name: statistics.median(values) for name, values in samples.items()}


def import_profile(cmd: list[str], env: dict[str, str]) -> tuple[float, list[str], list[tuple[int, str]]]:
    """(total import ms, heavy modules imported, the 8 largest cumulative imports)."""
    done = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, raw_name = line[len("import time:"):].split("|")
        top_level = raw_name[1:2] != " "  # nested imports are indented
        rows.append((int(self_us), int(cumulative_us), raw_name.strip(), top_level))
    total_ms = sum(r[0] for r in rows) / 1000
    heavy = sorted({r[2] for r in rows if r[2].split(".")[0] in HEAVY})
    top = sorted(((r[1], r[2]) for r in rows if r[3]), reverse=True)[:8]
    return total_ms, heavy, top


def main() -> None:
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="kwbench") as tmp, Sandbox() as sb:
        home = Path(tmp)
        run = home / "run"
        run.mkdir(mode=0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")}
        env |= {"HOME": str(home), "XDG_RUNTIME_DIR": str(run), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        vault, passfile = home / "vault.kw", home / "passphrase"
        passfile.write_text("plinth ochre gambit sundial (benchmark)\n")
        passfile.chmod(0o600)
        kd = ff.DEFAULT_KDF
        kw = [py, "-m", "vault", "--vault", str(vault)]
        with_pass = kw + ["--passphrase-file", str(passfile)]

        def cli(*args: str, passphrase: bool = True) -> str:
            done = subprocess.run((with_pass if passphrase else kw) + list(args), env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"keyward {' '.join(args)} failed: {done.stderr.strip()}")
            return done.stdout

        cli("init", "--kdf-memory-mib", str(kd.memory_kib // 1024), "--kdf-iterations", str(kd.iterations),
            "--kdf-parallelism", str(kd.parallelism))
        issued = sb.issue("powertrade")
        creds, keyfile = home / "pt.json", home / "pt.pem"
        creds.write_text(json.dumps(issued))
        keyfile.write_text(issued["private_key"])
        cli("add", "powertrade", "desk", "--from-json", str(creds), "--base-url", sb.base_url("powertrade"))

        no_agent = medians_ms({"no agent": with_pass + ["token", "desk"]}, env, max(3, RUNS // 6))["no agent"]
        cli("unlock", "--ttl", "10m")
        try:
            token_cmd = kw + ["token", "desk"]
            assert cli("token", "desk", passphrase=False).count(".") == 2
            cmds = {
                "floor": [py, "-c", "pass"],
                "pyjwt": [py, "-c", PYJWT_SCRIPT, str(keyfile), issued["api_key"]],
                "agent": token_cmd,
            }
            script = Path(py).with_name("keyward")
            if script.exists():
                cmds["console"] = [str(script), "--vault", str(vault), "token", "desk"]
            m = medians_ms(cmds, env, RUNS)
            floor, pyjwt, agent, console = m["floor"], m["pyjwt"], m["agent"], m.get("console")
            imports_ms, heavy, top = import_profile(token_cmd, env)
        finally:
            cli("lock", passphrase=False)

    ratio = agent / pyjwt
    print(f"cold runs, round-robin: median of {RUNS} each (no-agent path: {max(3, RUNS // 6)})")
    print(f"  python -c pass (floor)                         {floor:7.1f} ms")
    print(f"  PyJWT script, key file on disk (reference)     {pyjwt:7.1f} ms")
    print(f"  python -m vault token desk, agent running      {agent:7.1f} ms   {ratio:.2f}x PyJWT, {agent - floor:+.1f} ms over the floor")
    if console is not None:
        print(f"  keyward token desk (console script), agent     {console:7.1f} ms   {console / pyjwt:.2f}x PyJWT")
    print(f"  keyward token desk, no agent ({kd.describe()})  {no_agent:7.1f} ms   {no_agent / agent:.0f}x the agent path")
    print(f"CLI path imports (-X importtime, self times summed): {imports_ms:.1f} ms; largest:")
    for cumulative_us, name in top:
        print(f"    {cumulative_us / 1000:6.1f} ms  {name}")
    print(f"heavy modules on the agent path: {', '.join(heavy) if heavy else 'none'} (must be none: {', '.join(HEAVY)})")
    met = ratio <= 0.5 and not heavy
    print(f"target <= 0.50x PyJWT with no heavy import: {'met' if met else 'MISSED'} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
