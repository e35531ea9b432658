"""The monitoring stack against a live service: ``activestream run`` on the embedded broker, scraped by a
real Prometheus server loading ``alerts.yml``.

Checks that the exposition passes ``promtool check metrics``, that Prometheus scrapes the service and
answers queries on its metrics, that every alert rule evaluates without error on the real series, and
that every metric name the alerts and the dashboard use is exposed (with HELP/TYPE at least, also before
its first observation). Needs promtool and prometheus (``deploy/tools/fetch-prometheus.sh``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from deploytools import (
    ALERTS,
    JOB,
    PROMETHEUS_METRICS,
    deploy_metric_names,
    prometheus_server,
    promtool,
    run,
)

import activestream

pytestmark = [pytest.mark.broker, pytest.mark.slow]

EVENTS = 40
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float, on_timeout: Callable[[], str]) -> T:
    """Poll ``probe`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except Exception as error:
            last_error = error
        time.sleep(0.3)
    pytest.fail(
        f"timed out after {timeout_s:g} s waiting for {what} (last error: {last_error})\n{on_timeout()}"
    )


def stop_process(process: subprocess.Popen[Any], timeout_s: float = 20.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def service_command() -> list[str]:
    """``activestream run``: the console script of this environment, else the same entry point via python."""
    script = Path(sys.executable).parent / "activestream"
    if script.is_file():
        return [str(script), "run"]
    return [sys.executable, "-c", "import sys; from activestream.cli import main; sys.exit(main(['run']))"]


@pytest.fixture
def service(broker, unique_name, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``activestream run`` with EVENTS events waiting on its events topic; yields its port and log."""
    from activestream.messages import Event, to_json
    from activestream.transport.kafka import KafkaAdminAdapter, KafkaProducerAdapter

    topics = {name: unique_name(name) for name in ("events", "requests", "labels", "dead-letters")}
    admin = KafkaAdminAdapter(bootstrap_servers=broker.bootstrap_servers)
    try:
        admin.ensure_topics(list(topics.values()), partitions=1)
    finally:
        admin.close()
    producer = KafkaProducerAdapter(bootstrap_servers=broker.bootstrap_servers)
    try:
        for i in range(EVENTS):
            event = Event(id=f"ev-{i}", features={"x": float(i % 7), "y": float(i % 3)})
            producer.produce(topics["events"], to_json(event), key=event.id.encode())
        producer.flush(10.0)
    finally:
        producer.close()

    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACTIVESTREAM_")}
    # The package as this test imports it (an editable install, or PYTHONPATH=service made absolute).
    source = Path(activestream.__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(
        [str(source), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    )
    env.update(
        {
            "ACTIVESTREAM_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "ACTIVESTREAM_GROUP_ID": unique_name("group"),
            "ACTIVESTREAM_EVENTS_TOPIC": topics["events"],
            "ACTIVESTREAM_REQUESTS_TOPIC": topics["requests"],
            "ACTIVESTREAM_LABELS_TOPIC": topics["labels"],
            "ACTIVESTREAM_DEAD_LETTER_TOPIC": topics["dead-letters"],
            "ACTIVESTREAM_CREATE_TOPICS": "false",
            "ACTIVESTREAM_METRICS_HOST": "127.0.0.1",
            "ACTIVESTREAM_METRICS_PORT": str(port),
            "ACTIVESTREAM_SESSION_TIMEOUT_MS": "6000",
            "ACTIVESTREAM_HEARTBEAT_INTERVAL_MS": "1000",
            "ACTIVESTREAM_POLL_TIMEOUT_SECONDS": "0.2",
            "ACTIVESTREAM_HEALTH_CHECK_INTERVAL_SECONDS": "1",
            "ACTIVESTREAM_CHECKPOINT_INTERVAL_SECONDS": "1",
            "ACTIVESTREAM_CHECKPOINT_PATH": str(tmp_path / "state" / "activestream.ckpt"),
        }
    )
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            service_command(), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    try:
        yield {
            "port": port,
            "log": log,
            "process": process,
            "checkpoint": Path(env["ACTIVESTREAM_CHECKPOINT_PATH"]),
        }
    finally:
        stop_process(process)


@pytest.fixture
def prometheus(service, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server scraping the service every second and evaluating alerts.yml; yields its URL."""
    binary = prometheus_server()
    port = free_port()
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text())
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{service['port']}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    log = tmp_path / "prometheus.log"
    command = [
        str(binary),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("Prometheus to be ready", lambda: http_get(f"{url}/-/ready"), 30, lambda: tail(log))
        yield url
    finally:
        stop_process(process)


def scrape(port: int) -> str:
    return http_get(f"http://127.0.0.1:{port}/metrics")


def events_counted(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("activestream_events_total{")
    )


def query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = json.loads(http_get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def exposed_names(text: str) -> set[str]:
    """Every name in a text exposition: samples, and HELP/TYPE lines (also of families without samples)."""
    names = set()
    for line in text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            name = line.split()[2]
            names |= {name, f"{name}_total"}
        elif line and not line.startswith("#"):
            names.add(line.split("{")[0].split(" ")[0])
    return names


def test_prometheus_scrapes_the_live_service(service, prometheus) -> None:
    port, log = service["port"], service["log"]
    process = service["process"]

    def counted_scrape() -> str | None:
        if process.poll() is not None:
            pytest.fail(f"activestream run exited with {process.returncode}:\n{tail(log)}")
        text = scrape(port)
        return text if events_counted(text) >= EVENTS else None

    text = wait_for(f"the service to count {EVENTS} events", counted_scrape, 45, lambda: tail(log))

    # The exposition passes promtool's checks (format and naming conventions).
    linted = run([promtool(), "check", "metrics"], input=text, timeout=30)
    assert linted.returncode == 0, f"promtool check metrics:\n{linted.stdout}{linted.stderr}"

    # Every metric the alerts and the dashboard use is exposed.
    used = {name for name in deploy_metric_names() if name not in PROMETHEUS_METRICS}
    names = exposed_names(text)
    missing = sorted(name for name in used if name not in names)
    assert not missing, f"used by alerts.yml or the dashboard but not exposed: {missing}"

    # Prometheus scrapes the target and answers queries on the service's metrics.
    up = wait_for(
        "the target to be up", lambda: query(prometheus, f'up{{job="{JOB}"}} == 1'), 30, lambda: tail(log)
    )
    assert up[0]["metric"]["instance"] == f"127.0.0.1:{port}"
    running = wait_for("activestream_up", lambda: query(prometheus, "activestream_up"), 15, lambda: tail(log))
    assert [float(series["value"][1]) for series in running] == [1.0]
    outcomes = wait_for(
        "the events to be counted",
        lambda: (
            (r := query(prometheus, "activestream_events_total"))
            and sum(float(s["value"][1]) for s in r) >= EVENTS
            and r
        ),
        15,
        lambda: tail(log),
    )
    assert {series["metric"]["outcome"] for series in outcomes} >= {"asked", "discarded", "invalid"}

    # Every alert rule evaluates on the real series without error (no bad vector matching, say).
    def evaluated_rules() -> list[dict[str, Any]] | None:
        groups = json.loads(http_get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return (
            rules if rules and all(rule.get("lastEvaluation", "").startswith("2") for rule in rules) else None
        )

    rules = wait_for("the alert rules to be evaluated", evaluated_rules, 15, lambda: "")
    unhealthy = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not unhealthy, f"alert rules failing on live data: {unhealthy}"

    # With the target up and the loop running, the down alert is inactive (not even pending).
    def down_state() -> str | None:
        groups = json.loads(http_get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
        (down,) = [rule for group in groups for rule in group["rules"] if rule["name"] == "ActivestreamDown"]
        return "inactive" if down["state"] == "inactive" else None

    wait_for("ActivestreamDown to be inactive", down_state, 15, lambda: "")

    # SIGTERM drains: the service stops cleanly and leaves its checkpoint.
    assert stop_process(process) == 0, tail(log)
    assert service["checkpoint"].is_file(), tail(log)
