"""The demo's parts without a broker: the annotator's delay in events, the replay's event ids, the seeded
in-process table, the report, and the options' validation. The whole demo on the embedded broker is in
tests/integration/test_demo_e2e.py."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from activestream import cli
from activestream.datasets import make_stream
from activestream.demo.annotator import LabelRequestView, SimulatedAnnotator, run_annotator
from activestream.demo.replay import event_position, labeled_events, replay
from activestream.demo.report import Curve, SummaryRow, plot_learning_curves, summary_table, verdict
from activestream.demo.session import DemoOptions, _settings, compare_in_process
from activestream.evaluate import prequential, random_sampling
from activestream.messages import Label, LabelRequest, to_json
from activestream.models import make_model
from activestream.transport.memory import MemoryBroker

NOW = datetime(2026, 1, 1, tzinfo=UTC)

# -- the annotator ----------------------------------------------------------------------------------------


def test_a_fixed_delay_answers_exactly_that_many_events_after_the_request_time():
    truth = {f"ev-{p:07d}": p % 2 == 0 for p in range(100)}
    annotator = SimulatedAnnotator(truth, delay=25, fixed=True, seed=3)
    for p in (40, 10, 70):
        annotator.on_request(LabelRequestView(f"r-{p}", f"ev-{p:07d}"), now=p)
    answered = {}
    for now in range(200):
        for label in annotator.due(now):
            answered[label.event_id] = (now, label.label)
    assert answered == {
        "ev-0000010": (35, True),
        "ev-0000040": (65, True),
        "ev-0000070": (95, True),
    }
    assert annotator.waiting == 0


def test_a_zero_delay_answers_at_once():
    annotator = SimulatedAnnotator({"ev-0000005": 1}, delay=0)
    annotator.on_request(LabelRequestView("r", "ev-0000005"), now=5)
    assert [label.label for label in annotator.due(5)] == [1]


def _due_times(seed: int) -> list[float]:
    truth = {f"e-{i}": 0 for i in range(50)}
    annotator = SimulatedAnnotator(truth, delay=100, seed=seed)
    for i in range(50):
        annotator.on_request(LabelRequestView(f"r-{i}", f"e-{i}"), now=0)
    return sorted(item.due for item in annotator._queue)


def test_exponential_delays_are_seeded():
    assert _due_times(1) == _due_times(1)
    assert _due_times(1) != _due_times(2)
    assert 50 < sum(_due_times(1)) / 50 < 200  # a mean of 100


def test_a_noisy_annotator_is_seeded_too():
    truth = {f"e-{i}": i % 3 for i in range(300)}

    def answers(seed: int) -> list:
        annotator = SimulatedAnnotator(truth, delay=0, error_rate=0.3, seed=seed)
        for i in range(300):
            annotator.on_request(LabelRequestView(f"r-{i}", f"e-{i}"), now=i)
        return [label.label for label in annotator.due(300)]

    first = answers(4)
    assert first == answers(4)
    wrong = sum(label != i % 3 for i, label in enumerate(first))
    assert 40 < wrong < 140


def test_a_negative_delay_is_refused():
    with pytest.raises(ValueError, match="delay must be >= 0"):
        SimulatedAnnotator({}, delay=-5, fixed=True)


class _RecordingProducer:
    """Records each label with the stream position it was posted at."""

    def __init__(self, position: dict[str, int]):
        self.position = position
        self.posted: list[tuple[int, Label, bytes | None]] = []

    def produce(self, topic, value, key=None, headers=()):
        self.posted.append((self.position["now"], Label.model_validate_json(value), key))

    def flush(self, timeout_s):
        pass


def test_run_annotator_counts_the_delay_in_events_from_the_requested_event():
    broker = MemoryBroker()
    requests = broker.producer()
    for n, p in enumerate((10, 300)):
        request = LabelRequest(
            request_id=f"r-{n}",
            event_id=f"ev-{p:07d}",
            features={"x": 1.0},
            predicted_label=None,
            probabilities={},
            score=0.5,
            strategy="margin/split",
            reason="informative",
            threshold=0.5,
            model_version=0,
            created_at=NOW,
            expires_at=NOW + timedelta(hours=1),
        )
        requests.produce("label-requests", to_json(request), key=request.event_id.encode())
    requests.produce("label-requests", b"not a request")
    requests.flush(1.0)
    consumer = broker.consumer("annotator")
    consumer.subscribe(["label-requests"])
    state = {"now": 0}
    stop = threading.Event()

    def clock() -> float:  # the stream advances 100 events each time the loop looks
        state["now"] += 100
        if state["now"] >= 1500:
            stop.set()
        return state["now"]

    producer = _RecordingProducer(state)
    truth = {"ev-0000010": "up", "ev-0000300": "down"}
    annotator = SimulatedAnnotator(truth, delay=500, fixed=True)
    posted = run_annotator(
        consumer,
        producer,
        "labels",
        annotator,
        stop,
        clock=clock,
        requested_at=lambda request: event_position(request.event_id) + 1,
    )
    assert posted == 2
    assert annotator.mean_answer_delay == (589 + 599) / 2  # answered at 600 and 900, asked at 11 and 301
    # Due at 11 + 500 and 301 + 500: posted at the first look at or after that position.
    assert [(at, label.event_id, label.label, key) for at, label, key in producer.posted] == [
        (600, "ev-0000010", "up", b"ev-0000010"),
        (900, "ev-0000300", "down", b"ev-0000300"),
    ]


# -- the replay ---------------------------------------------------------------------------------------


def test_replay_keys_each_event_by_its_id_which_carries_its_position():
    broker = MemoryBroker()
    truth: dict = {}
    pairs = list(labeled_events(make_stream("sea_abrupt", n=30, seed=1)))
    assert replay(broker.producer(), "events", pairs, truth) == 30
    assert [event_position(m.key.decode()) for m in broker.messages("events")] == list(range(30))
    assert truth == {event.id: y for event, y in pairs}


# -- the seeded table -------------------------------------------------------------------------------------


def test_the_in_process_table_is_the_same_on_every_run_and_uses_the_configured_delay():
    options = DemoOptions(dataset="sea_abrupt", events=3000, label_delay=200, seed=3, window=500)
    stream = make_stream("sea_abrupt", n=3000, seed=3)
    first = compare_in_process(options, stream, _settings(options, "unused:9092"))
    again = compare_in_process(options, stream, _settings(options, "unused:9092"))
    assert first == again
    assert first.table(options.budget) == again.table(options.budget)
    assert first.label_delay == 200
    assert [row.events for row in first.rows] == [3000, 3000]
    # The random row is random sampling evaluated with the configured delay, not a measured one.
    expected = prequential(
        random_sampling(make_model("logreg", 3), 0.1, seed=3), stream, delay=200, curve_every=250, window=500
    )
    assert (first.random.labels_used, first.random.accuracy) == (expected.labels_used, expected.accuracy)
    assert first.random_curve.events[-1] == 3000
    table = first.table(options.budget)
    assert "activestream (the service's settings, in-process)" in table
    assert "random sampling (in-process)" in table and "vs random" in table and "baseline" in table


# -- the report -------------------------------------------------------------------------------------------


def test_the_verdict_says_ahead_or_behind_and_points_to_the_delay_study_only_when_behind_with_a_delay():
    random = SummaryRow("random sampling", 1000, 101, 0.8250, 0.62)
    ahead, level = SummaryRow("a", 1000, 100, 0.8300, 0.6), SummaryRow("a", 1000, 100, 0.8250, 0.6)
    assert verdict(ahead, random, 500).startswith("activestream is ahead of random sampling by 0.50 points")
    assert "Why the demo loses" not in verdict(ahead, random, 500)
    assert verdict(level, random, 0).startswith("activestream is level with random sampling")
    assert "Why the demo loses" not in verdict(level, random, 0)  # no delay: nothing to blame it on
    behind = verdict(SummaryRow("a", 1000, 100, 0.8200, 0.6), random, 500)
    assert "behind random sampling by 0.50 points" in behind and "labels 500 events late" in behind
    assert "\n" not in behind


def test_the_table_gives_the_gain_over_the_baseline_in_points():
    active = SummaryRow("activestream", 1000, 100, 0.8125, 0.6)
    random = SummaryRow("random sampling", 1000, 101, 0.8250, 0.62)
    lines = summary_table([active, random], 0.1, baseline=random).splitlines()
    assert lines[0].endswith("| vs random |")
    assert lines[2].endswith("|  -1.2 pts |") or lines[2].endswith("|  -1.3 pts |")
    assert lines[3].endswith("|  baseline |")
    assert len({len(line) for line in lines}) == 1  # the columns line up
    assert "vs random" not in summary_table([active, random], 0.1)


def test_the_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    curves = [Curve("a", [250, 500], [0.7, 0.8]), Curve("b", [250, 500], [0.6, 0.7])]
    for drifts in ((), (300,)):
        path = plot_learning_curves(curves, tmp_path / f"curve{len(drifts)}.png", "t", drifts, window=200)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the options ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--label-delay", "-1"], "--label-delay: expected a whole number >= 0, got '-1'"),
        (["--events", "0"], "--events: expected a whole number >= 1, got '0'"),
        (["--budget", "1.5"], "--budget: expected a fraction in (0, 1]"),
        (["--window", "0"], "--window: expected a whole number >= 1"),
        (["--rate", "0"], "--rate: expected a number > 0"),
    ],
)
def test_a_bad_demo_option_is_a_one_line_error(argv, message, capsys):
    assert cli.main(["demo", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err
    assert captured.err.startswith("activestream demo: ")


def test_the_label_delay_is_a_whole_number_of_events(capsys):
    assert cli.main(["demo", "--label-delay", "0.5"]) == 2
    assert "expected a whole number >= 0, got '0.5'" in capsys.readouterr().err
    with pytest.raises(ValueError):
        DemoOptions(label_delay=True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--label-delay", "-1"], "argument --label-delay: expected a number >= 0, got '-1'"),
        (["--error-rate", "2"], "argument --error-rate: expected a probability in [0, 1], got '2'"),
    ],
)
def test_a_bad_annotate_option_is_a_one_line_error(argv, message, capsys):
    # Checked before any broker is contacted (none runs here).
    assert cli.main(["annotate", "--dataset", "sea_abrupt", "--events", "10", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"activestream annotate: {message}") and captured.err.count("\n") == 1
