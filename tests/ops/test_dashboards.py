"""The Grafana dashboards in dashboards/: well formed, importable anywhere, and every query
answers with data from a real Prometheus scraping ``fleet-metrics demo``.

The Prometheus is the Debian package's server (``.ci/run`` installs it) on a free loopback
port, with its database in a temporary folder, scraping the demo runner every second. A
query passes when Prometheus parses it and returns at least one series; Grafana's own
variables are replaced the way Grafana would (``$__rate_interval`` by a window of several
scrapes, a dashboard variable by its "All" value).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mosquitto import free_port

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "dashboards"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
FLEET_METRICS = str(Path(sys.executable).parent / "fleet-metrics")
# Grafana's $__rate_interval is at least four scrape intervals; 1 s scrapes here.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$__interval": "2s", "$__range": "1m"}
WAIT_FOR_DATA = 90.0

sys.path.insert(0, str(FOLDER))
from build_dashboards import DASHBOARDS, text  # noqa: E402


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(FOLDER.glob("*.json"))
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # inside a collapsed row


def test_files_are_what_the_script_writes() -> None:
    assert set(dashboards()) == set(DASHBOARDS)
    for name, dashboard in DASHBOARDS.items():
        assert (FOLDER / name).read_text(encoding="utf-8") == text(dashboard), (
            "run: python dashboards/build_dashboards.py"
        )


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_takes_its_datasource_from_a_variable(name: str) -> None:
    dashboard = dashboards()[name]
    variables = dashboard["templating"]["list"]
    assert variables[0] == {
        **variables[0],
        "name": "datasource",
        "type": "datasource",
        "query": "prometheus",
    }
    assert "__inputs" not in dashboard  # nothing to map on import
    uids = [dashboard["uid"] for dashboard in dashboards().values()]
    assert len(uids) == len(set(uids))
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for variable in variables[1:]:
        assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["title"] and panel["description"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip(), panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panels_do_not_overlap(name: str) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in panels(dashboards()[name]):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def concrete(expr: str, dashboard: dict[str, Any]) -> str:
    """The query as Grafana sends it with every variable at "All"."""
    for variable in dashboard["templating"]["list"][1:]:
        for form in (f"${{{variable['name']}}}", f"${variable['name']}"):
            expr = expr.replace(form, variable["allValue"])
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a variable Grafana would fill in is left: {expr}"
    return expr


def all_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel or variable, query) for every query Grafana would run."""
    queries = []
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel["targets"]:
                queries.append((name, panel["title"], concrete(target["expr"], dashboard)))
        for variable in dashboard["templating"]["list"][1:]:
            # label_values(metric, label): the series that give the variable its values.
            inner = variable["definition"].removeprefix("label_values(").removesuffix(")")
            metric, label = (part.strip() for part in inner.split(","))
            queries.append((name, f"${variable['name']}", f"count by ({label}) ({metric})"))
    return queries


class Prometheus:
    def __init__(self, workdir: Path, target_port: int) -> None:
        self.port = free_port()
        self.workdir = workdir
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: fleet-metrics\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n",
            encoding="utf-8",
        )
        self.log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str, **params: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as err:  # 400 with a JSON body for a bad query
            answer = json.loads(err.read())
        return answer

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.workdir / "prometheus.log").read_text()
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/-/ready", timeout=1
                ) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        pytest.fail("prometheus did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def demo_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    stderr = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen(
        [FLEET_METRICS, "demo", "--listen", f"127.0.0.1:{port}", "--broker-port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr.close()


@pytest.mark.skipif(not Path(PROMETHEUS).exists(), reason="prometheus is not installed")
def test_every_query_returns_series_from_the_demo(tmp_path: Path, demo_port: int) -> None:
    server = Prometheus(tmp_path, demo_port)
    try:
        server.wait_ready()
        queries = all_queries()
        deadline = time.monotonic() + WAIT_FOR_DATA
        while True:
            empty, broken = [], []
            for dashboard, panel, expr in queries:
                answer = server.get("/api/v1/query", query=expr)
                if answer["status"] != "success":
                    broken.append(f"{dashboard} / {panel}: {expr}\n  {answer.get('error')}")
                elif not answer["data"]["result"]:
                    empty.append(f"{dashboard} / {panel}: {expr}")
            assert broken == [], "\n".join(broken)  # a parse error does not heal by waiting
            if not empty or time.monotonic() > deadline:
                break
            time.sleep(2)
        up = server.get("/api/v1/query", query="up")["data"]["result"]
        assert empty == [], "no series for:\n" + "\n".join(empty) + f"\nup: {up}"
    finally:
        server.stop()
