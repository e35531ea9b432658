"""The cost and scale benchmark on tiny sizes: it produces rows and files (no timing is asserted)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

from activestream.learner import DEFAULT_MEASURE, DEFAULT_POLICY

DEFAULT_STRATEGY = f"{DEFAULT_MEASURE}/{DEFAULT_POLICY}"
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "cost_scale.py"


@pytest.fixture(scope="module")
def cost_scale():
    spec = importlib.util.spec_from_file_location("cost_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cost_scale"] = module  # dataclasses resolve their module's annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    del sys.modules["cost_scale"]


@pytest.fixture
def tiny(cost_scale):
    return cost_scale.Plan(
        repeats=2,
        warmup=30,
        events=15,
        seconds=0.01,
        features=(3, 5),
        classes=(2, 3),
        committee=(2, 3),
        pending=(10, 40),
        pending_ops=20,
        warm_seconds=0.5,
        min_events=3,
    )


def test_every_section_gives_rows_and_the_report_files(cost_scale, tiny, tmp_path):
    sections = cost_scale.run_sections(tiny)
    counts = {s.name: len(s.rows) for s in sections}
    assert counts == {
        "strategies": len(cost_scale.MEASURES) + len(cost_scale.POLICIES) - 1,
        "features": 2 * len(cost_scale.FEATURE_MEASURES),
        "classes": 2 * len(cost_scale.CLASS_MODELS) - 1,  # the binary logreg at 2 classes only
        "committee": 1 + 2 * len(cost_scale.COMMITTEE_MEASURES),
        "pending": 2,
    }
    committee = next(s.rows for s in sections if s.name == "committee")
    # The no-committee reference:
    assert (committee[0]["strategy"], committee[0]["x"]) == (DEFAULT_STRATEGY, 1)
    md = cost_scale.write_report(sections, tmp_path, quick=True, plan=tiny, waited_load=None)
    assert md.name == "cost_scale_quick.md"
    for name in ("cost_scale_quick.csv", "cost_scale_quick.png", "cost_scale_quick_strategies.png"):
        assert (tmp_path / name).stat().st_size > 0
    text = md.read_text()
    assert "## Headline" in text and DEFAULT_STRATEGY in text and "Pending store 10 → 40 entries" in text
    with (tmp_path / "cost_scale_quick.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(counts.values())
    timed = [r for r in rows if r["section"] != "pending"]
    assert all(float(r["decide_us"]) > 0 and float(r["learn_us"]) > 0 for r in timed)
    assert all(int(r["events"]) >= tiny.min_events for r in timed)


def test_pending_store_figures_per_size(cost_scale):
    times = cost_scale.time_pending(size=50, ops=20, repeats=1)
    assert set(times) == {
        f"{op}_{clock}" for op in ("insert", "insert_full", "join") for clock in ("us", "cpu_us")
    } | {"insert_no_gc_cpu_us"}
    assert min(times.values()) > 0
    store_bytes, payload_bytes = cost_scale.pending_bytes(50)
    assert store_bytes > 0 and payload_bytes > 0


def test_main_writes_a_quick_report_into_out(cost_scale, tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(cost_scale, "QUICK", tiny)
    assert cost_scale.main(["--quick", "--out", str(tmp_path), "--sections", "pending", "strategies"]) == 0
    assert (tmp_path / "cost_scale_quick.md").exists()


def test_waiting_for_the_load_gives_up_after_max_wait(cost_scale):
    assert cost_scale.wait_for_load(below=-1.0, max_wait=0.0) >= 0.0
