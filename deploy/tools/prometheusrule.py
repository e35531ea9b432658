"""Writes deploy/k8s/prometheusrule.yaml from deploy/prometheus/alerts.yml: the same groups, as a
PrometheusRule for the Prometheus Operator.

    python deploy/tools/prometheusrule.py           # rewrite the file
    python deploy/tools/prometheusrule.py --check   # exit 1 when it is out of date

The groups are copied as text (indented under ``spec:``), so comments and formatting stay as in
alerts.yml; tests/deploy/test_deploy.py also checks that both parse to the same rules.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[1]
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS_RULE = DEPLOY / "k8s" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by deploy/tools/prometheusrule.py — edit alerts.yml, then run
# `python deploy/tools/prometheusrule.py`. The Prometheus Operator picks PrometheusRules by its
# ruleSelector: add the labels yours selects (kube-prometheus-stack: release: <its release name>).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: activestream
  labels:
    app.kubernetes.io/name: activestream
spec:
"""


def render(alerts_text: str) -> str:
    """The PrometheusRule: ``alerts_text`` from its ``groups:`` line on, indented under ``spec:``."""
    lines = alerts_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = [f"  {line}" if line.strip() else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is out of date")
    args = parser.parse_args(argv)
    wanted = render(ALERTS.read_text())
    current = PROMETHEUS_RULE.read_text() if PROMETHEUS_RULE.exists() else None
    if args.check:
        if current != wanted:
            print(
                f"{PROMETHEUS_RULE} is out of date: run python {Path(__file__).as_posix()}", file=sys.stderr
            )
            return 1
        return 0
    if current != wanted:
        PROMETHEUS_RULE.write_text(wanted)
        print(f"wrote {PROMETHEUS_RULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
