"""The long-run benchmark on a few thousand events: its report's structure and verdicts (no timing)."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "long_run.py"


@pytest.fixture(scope="module")
def long_run():
    spec = importlib.util.spec_from_file_location("long_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["long_run"] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    del sys.modules["long_run"]


@pytest.fixture(scope="module")
def run(long_run):
    return long_run.long_run(3000, delay=200)


def test_the_service_decides_every_event_and_learns_every_label_it_asked(run):
    assert run.samples[0]["events"] == 0 and run.samples[-1]["events"] == 3000
    assert sum(size for _, size, _, _ in run.decides) == 3000
    asked = run.counts["label requests"]
    assert 0.05 * 3000 < asked < 0.2 * 3000  # the default budget is 10%
    assert run.counts["labels learned"] == asked == len(run.label_ns) == run.samples[-1]["closed_ids"]
    assert all(s["rss_mb"] > 0 and s["metrics_kb"] > 0 for s in run.samples)


def test_the_report_has_the_figures_the_verdicts_and_the_files(long_run, run, tmp_path):
    args = argparse.Namespace(delay=200, stream="hyperplane", seed=1, trace=False)
    md = long_run.write_outputs(run, args, {"cpu": "test"}, tmp_path, "long_run_test")
    text = md.read_text()
    for heading in ("## Machine", "## Memory", "## Decide latency"):
        assert heading in text
    assert "**p99 decide < 1 ms: " in text and ("**flat**" in text or "**grows**" in text)
    with (tmp_path / "long_run_test.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(run.samples)
    assert (tmp_path / "long_run_test.png").stat().st_size > 0


def _samples(rss: list[float], n: int) -> list[dict[str, float]]:
    return [{"events": i * n / (len(rss) - 1), "rss_mb": mb} for i, mb in enumerate(rss)]


def test_flat_means_second_half_growth_below_five_percent_of_mid_stream(long_run):
    # Growth in the first half (warming up) does not count; 100 MB at mid-stream allows < 5 MB after it.
    flat = long_run.memory_verdict(_samples([50, 80, 90, 100, 101, 102, 103], 600), 600)
    assert flat["flat"] and flat["rss_10"] == 80 and flat["rss_50"] == 100 and flat["rss_100"] == 103
    assert flat["growth_mb"] == pytest.approx(3.0) and flat["slope_mb_per_100k"] == pytest.approx(1000.0)
    grows = long_run.memory_verdict(_samples([50, 80, 100, 103, 106], 400), 400)
    assert not grows["flat"] and grows["growth_share"] == pytest.approx(0.06)


def test_the_target_is_the_per_event_p99_weighted_by_events(long_run):
    # 99 calls of 500 events at 20 µs an event (18 on the CPU), one at 1.5 ms an event (a full GC, say).
    decides = [(10_000_000, 500, 0, 9_000_000)] * 99 + [(750_000_000, 500, 1, 700_000_000)]
    verdict = long_run.decide_verdict(decides)
    assert verdict["per_event_p99_us"] == pytest.approx(20.0) and verdict["met"]
    assert verdict["per_event_cpu_p99_us"] == pytest.approx(18.0)
    assert verdict["per_event_max_us"] == pytest.approx(1500.0) and verdict["gc_calls"] == 1
    assert verdict["batch_p99_us"] == pytest.approx(10_000.0) and verdict["batch_max_us"] == 750_000
    # A small slow call weighs less than a big one in the per-event quantiles.
    slow = long_run.decide_verdict([(1_000_000, 100, 0, 0)] * 97 + [(300_000_000, 200, 0, 0)] * 3)
    assert slow["per_event_p99_us"] == pytest.approx(1500.0) and not slow["met"]
