"""The label-cost benchmark's own arithmetic: where a profile sample of the label path falls.

The runs themselves (the loop in memory, py-spy from the hand-built app's virtual environment) are the
benchmark's; this checks what its report makes of them.
"""

from __future__ import annotations

import doctest
import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "label_cost.py"
LOOP = "<module> (label_cost.py:1);measure (label_cost.py:59);Service.run_once (activestream/service.py:257)"
LABEL = (
    f"{LOOP};Feeder.feed (feeding.py:43);Feeder._handle_label (feeding.py:92);Engine.on_label (engine.py:164)"
)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("label_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["label_cost"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["label_cost"]


def test_samples_fall_in_the_part_of_the_label_path_they_are_in(bench):
    watch = f"{LABEL};Trainer._learn (learning.py:324);DriftWatch.learn (watch.py:105)"
    shares = bench.label_profile(
        "\n".join(
            [
                f"{watch};Arm.learn_one (arms.py:107);ActiveArm._learn (arms.py:200);GLM._fit (base.py:1) 20",
                f"{watch};Arm.learn_one (arms.py:107);Arm.predict_one (arms.py:90) 10",
                f"{watch};DriftAdaptiveClassifier._review_champion (adaptive.py:300) 5",
                f"{LABEL};Trainer._learn (l.py:340);StoppingMonitor.check_stability (stopping.py:266) 10",
                f"{LABEL};Trainer.join (learning.py:128);PendingStore.join (join.py:218) 5",
                f"{LABEL};Trainer._count (learning.py:310);Metrics.learned (metrics.py:341) 5",
                f"{LABEL};parse_label (messages.py:90) 5",
                f"{LABEL} 5",
                f"{LOOP};Feeder.feed (feeding.py:43);Feeder._handle_events (feeding.py:63) 35",
                "<module> (label_cost.py:1);measure (label_cost.py:46) 99",  # the stream: not the loop's
            ]
        )
    )
    assert {part: round(share * 100) for part, share in shares.items()} == {
        "drift arms: learning (river's calls, the active arm's detector)": 20,
        "drift arms: predicting the label's event (prequential accuracy)": 10,
        "drift arms: the rest (accuracy estimates, champion's review)": 5,
        "stopping criteria's stability check": 10,
        "pending store and closed requests": 5,
        "label metrics": 5,
        "parsing the label": 5,
        "the rest of handling a label": 5,
        "events (not handling a label)": 35,
    }


def test_the_docstring_examples_hold(bench):
    assert doctest.testmod(bench).failed == 0
