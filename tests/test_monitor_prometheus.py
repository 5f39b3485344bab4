"""The monitor with real Prometheus parts: promtool on the printed rules (and the shipped
rule unit tests, tests/test_monitor_rules.yml), and a real Prometheus server scraping a
real `keyward monitor` against the sandbox and answering PromQL.

Needs Debian's `prometheus` package (prometheus and promtool); .ci/run installs it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.test_monitor import checks, monitors, poll  # noqa: F401  (monitors is a fixture)

HERE = Path(__file__).resolve().parent
INSTALL = "install Debian's prometheus package: apt-get update && apt-get install -y prometheus"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason=f"promtool not found: {INSTALL}")
needs_prometheus = pytest.mark.skipif(PROMETHEUS is None, reason=f"prometheus not found: {INSTALL}")


@pytest.fixture
def rules(kw, tmp_path) -> Path:
    r = kw("monitor", "--print-alert-rules", passphrase=False)
    assert r.code == 0, r.err
    path = tmp_path / "alerts.yml"
    path.write_text(r.out)
    return path


@needs_promtool
def test_promtool_accepts_the_printed_rules(rules):
    done = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


@needs_promtool
def test_every_alert_passes_its_promtool_unit_test(rules):
    shipped = (HERE / "test_monitor_rules.yml").read_text()
    tested = {line.split(":", 1)[1].strip() for line in shipped.splitlines() if line.strip().startswith("alertname:")}
    printed = {line.split(":", 1)[1].strip() for line in rules.read_text().splitlines()
               if line.strip().startswith("- alert:")}
    assert printed == tested, f"alerts without a unit test: {printed - tested}"
    (rules.parent / "test_monitor_rules.yml").write_text(shipped)
    done = subprocess.run([PROMTOOL, "test", "rules", "test_monitor_rules.yml"], cwd=rules.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
    except OSError:
        return []
    assert body["status"] == "success", body
    return body["data"]["result"]


@needs_prometheus
def test_a_real_prometheus_scrapes_the_monitor_and_answers_promql(kw, sandbox, sandbox_account, monitors, rules, tmp_path):
    sandbox_account("kiiex", "spot")
    sandbox_account("powertrade", "desk")
    m = monitors(kw, "--listen", "127.0.0.1:0", "--interval", "1")
    port = m.wait_started()
    web = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {rules}\n"
        f"scrape_configs:\n  - job_name: keyward\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
    prom = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{web}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        success = poll(lambda: query(web, "keyward_check_success") if prom.poll() is None else
                       pytest.fail(f"prometheus exited: {prom.stderr.read()}"),
                       timeout=60, every=0.5, what="Prometheus to scrape keyward_check_success")
        assert {(r["metric"]["account"], r["metric"]["venue"], r["value"][1]) for r in success} == {
            ("spot", "kiiex", "1"), ("desk", "powertrade", "1")}
        expiry = query(web, "keyward_token_expiry_timestamp_seconds")
        assert [(r["metric"]["account"], r["metric"]["job"]) for r in expiry] == [("spot", "keyward")]
        assert float(expiry[0]["value"][1]) > time.time()
        assert query(web, 'up{job="keyward"}')[0]["value"][1] == "1"
        # The rules loaded, and none fires on a healthy monitor.
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/rules", timeout=5) as resp:
            groups = json.loads(resp.read())["data"]["groups"]
        assert sum(len(g["rules"]) for g in groups) == 9
        assert query(web, 'ALERTS{alertstate="firing",alertname=~"Keyward.*"}') == []
    finally:
        prom.terminate()
        try:
            prom.wait(20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
    assert m.terminate() == 0
