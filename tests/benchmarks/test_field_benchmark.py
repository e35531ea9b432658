"""``benchmarks/field.py`` on a tiny slice: its plumbing, its failure paths, and one run of every kind of
peer (ours, scikit-activeml, MOA through capymoa) end to end in a subprocess (the JVM stays out of the
test process)."""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import field  # noqa: E402
import field_peers  # noqa: E402
import field_report  # noqa: E402


def tiny_plan(methods: tuple[str, ...], delays: tuple[int, ...] = (0,)) -> field.Plan:
    return field.Plan(
        lengths={"sea_abrupt": 300},
        learners=("gnb",),
        budgets=(0.1,),
        delays=delays,
        restricted={},
        cost_us=field.COST_US,
        methods=methods,
        entropy_discounts=(1.0, 4.0),
    )


def test_a_slice_runs_in_process_and_reports(tmp_path: Path) -> None:
    plan = tiny_plan(("activestream default", "random"), delays=(0, 50))
    records, skipped, wall, load = field.run_plan(plan, seed=1, jobs=1)
    assert not skipped and wall > 0 and load
    got = {(r.method, r.delay) for r in records}
    for method in ("activestream default", "random", field.ENTROPY, field.CEILING):
        assert {(method, 0), (method, 50)} <= got
    for r in records:
        assert r.n_events == 300
        if r.method == field.CEILING:
            assert r.labels_used == 300
    args = argparse.Namespace(quick=True, seed=1, jobs=1, deadline=None, commit="test")
    field_report.write_outputs(records, skipped, plan, args, wall, load, tmp_path)
    text = (tmp_path / "field_quick.md").read_text()
    assert "#### gnb, delay 50, budget 10%" in text and "activestream default" in text
    with open(tmp_path / "field_quick.csv") as f:
        assert len(list(csv.DictReader(f))) == len(records)
    assert (tmp_path / "field_quick_curves.png").stat().st_size > 0


def test_every_kind_of_peer_end_to_end(tmp_path: Path) -> None:
    methods = "activestream default,skal.VariableUncertainty,moa.VarUncertainty"
    cmd = [sys.executable, str(REPO / "benchmarks" / "field.py"), "--quick", "--jobs", "1"]
    cmd += ["--streams", "sea_abrupt", "--learners", "gnb", "--n", "300", "--methods", methods]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "service"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "field_quick.csv") as f:
        rows = list(csv.DictReader(f))
    by_method = {(r["method"], r["delay"]): r for r in rows}
    for method in methods.split(","):
        for delay in ("0", "500"):
            if method.startswith("skal.") and delay == "500":
                continue  # quick mode runs the slow peers without delay
            row = by_method[method, delay]
            assert int(row["n_events"]) == 300
            assert 0 < float(row["labels_fraction"]) <= 0.25
    # MOA's ALUncertainty enforces its budget on the running fraction of labels used.
    assert float(by_method["moa.VarUncertainty", "0"]["labels_fraction"]) <= 0.1 + 1 / 300


#: Run in a subprocess: MOA's learners at delay 0 through ALUncertainty (deciding with the label in hand)
#: and through the port deciding when the event arrives; every line must agree.
_AT_ASK_SCRIPT = """
import sys
from field import load_stream
from field_peers import MOA_BASE, MoaUncertainty, MoaVarUncertaintyAtAsk, prequential_offer
from activestream.evaluate import prequential
for stream, n in (("sea_abrupt", 1500), ("image_segments", 800)):
    data = load_stream(stream, n, 1)
    classes, features = tuple(sorted({y for _, y in data}, key=repr)), tuple(sorted(data[0][0]))
    for learner in ("gnb", "hat"):
        for budget in (0.05, 0.2):
            moa = MoaUncertainty("VarUncertainty", MOA_BASE[learner], budget, classes, features, 1)
            ours = MoaVarUncertaintyAtAsk(MOA_BASE[learner], budget, classes, features, 1)
            a, b = prequential_offer(moa, data), prequential(ours, data)
            print(stream, learner, budget, a.labels_used, b.labels_used, a.accuracy, b.accuracy)
"""


def test_moa_var_uncertainty_at_ask_makes_aluncertainty_s_decisions_without_delay() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "service"), str(REPO / "benchmarks")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", _AT_ASK_SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.split() for line in done.stdout.splitlines()]
    assert len(lines) == 8
    for stream, learner, budget, labels_moa, labels_port, acc_moa, acc_port in lines:
        assert (labels_moa, acc_moa) == (labels_port, acc_port), (stream, learner, budget)
        assert int(labels_moa) > 0


def test_a_broken_peer_fails_the_run(tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "benchmarks" / "field.py"), "--quick", "--jobs", "1"]
    cmd += ["--streams", "sea_abrupt", "--n", "100", "--methods", "no.such.method", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "unknown methods" in done.stderr


def test_unknown_streams_and_moa_strategies_are_refused() -> None:
    args = field.parse_args(["--streams", "nowhere"])
    with pytest.raises(SystemExit, match="unknown streams"):
        field.select(field.QUICK, args)
    with pytest.raises(ValueError, match="unknown MOA strategy"):
        field_peers.MoaUncertainty("Fixed", "bayes.NaiveBayes", 0.1, (0, 1), ("a",), 1)


def test_tasks_past_the_deadline_are_skipped_and_listed() -> None:
    (task, *_) = field.make_tasks(tiny_plan(("random",)), seed=1, deadline=time.time() - 1)
    records, skipped = field.run_task(task)
    assert records == [] and skipped == [(task, run) for run in task.runs]


def test_sub_grids_restrict_only_their_methods() -> None:
    plan = field.FULL
    runs = [(t, r) for t in field.make_tasks(plan, seed=1) for r in t.runs]
    pal = {
        (t.stream, t.learner, t.delay, r.budget) for t, r in runs if r.method == "skal.StreamProbabilisticAL"
    }
    assert pal == {(s, "logreg", 0, 0.10) for s in field.STREAMS}
    default = [(t, r) for t, r in runs if r.method == "activestream default"]
    assert len(default) == len(field.STREAMS) * len(field.LEARNERS) * len(field.DELAYS) * len(field.BUDGETS)
    moa = {t.learner for t, r in runs if r.method.startswith("moa.")}
    assert moa == {"hat", "gnb"}  # MOA has no logistic regression
    moa_ceiling = {
        (t.stream, t.learner, t.delay) for t, r in runs if (r.method, r.budget) == ("moa.ALRandom", 1.0)
    }
    assert len(moa_ceiling) == len(field.STREAMS) * 2 * len(field.DELAYS)


class Echo:
    """Predicts the last label it was offered; uses every second label offered."""

    def __init__(self) -> None:
        self.offers: list[int] = []
        self.last = None

    def predict_one(self, x: dict) -> object:
        return self.last

    def offer_one(self, x: dict, y: object) -> bool:
        self.offers.append(x["i"])
        self.last = y
        return len(self.offers) % 2 == 1


def test_offers_arrive_delay_events_later_and_all_count() -> None:
    learner = Echo()
    stream = [({"i": i}, i % 2 == 0) for i in range(10)]
    result = field_peers.prequential_offer(learner, stream, delay=3, curve_every=5)
    assert learner.offers == list(range(10))  # the last 3 offered after the stream ends
    assert result.n_events == 10 and result.labels_used == 5
    assert [p.n_events for p in result.curve] == [5, 10]


def test_seed_aggregation_reads_journals_and_csvs_and_reports(tmp_path: Path) -> None:
    import doctest
    import pickle

    import field_seeds

    assert doctest.testmod(field_seeds).failed == 0

    def rec(method: str, learner: str, delay: int, acc: float, labels: int) -> field.Record:
        return field.Record("sea_abrupt", learner, delay, 0.05, method, "x", 1000, labels, acc, 0.5, 1.0)

    one = [rec("random", "gnb", 0, 0.80, 60), rec("activestream default", "gnb", 0, 0.78, 50)]
    one += [rec("random", "hat", 0, 0.70, 60), rec("moa.ALRandom", "hat", 0, 0.72, 50)]
    one += [rec("moa.VarUncertainty", "hat", 0, 0.75, 50), rec(field.CEILING, "gnb", 0, 0.9, 1000)]
    two = [rec("random", "gnb", 0, 0.76, 40), rec("activestream default", "gnb", 0, 0.79, 50)]
    field_report.write_csv(one, tmp_path / "field.csv")
    with open(tmp_path / "s2.pkl", "wb") as f:  # a --save journal: one pickle per finished task
        pickle.dump(two[:1], f)
        pickle.dump(two[1:], f)
    assert len(field_seeds.read_records(tmp_path / "s2.pkl")) == 2
    back = field_seeds.read_records(tmp_path / "field.csv")
    fields = [(r.method, r.learner, r.delay, r.budget, r.accuracy, r.labels_used) for r in one]
    assert sorted(
        (r.method, r.learner, r.delay, r.budget, r.accuracy, r.labels_used) for r in back
    ) == sorted(fields)

    out = tmp_path / "out"
    argv = ["--seeds", f"1={tmp_path / 'field.csv'}", f"2={tmp_path / 's2.pkl'}", "--out", str(out)]
    assert field_seeds.main([*argv, "--note", "test runs"]) == 0
    with open(out / "field_seeds.csv") as f:
        rows = {(r["method"], r["delay"]): r for r in csv.DictReader(f) if r["budget"] == "0.05"}
    ours = rows["activestream default", "0"]
    assert ours["seeds"] == "2" and ours["seed_means_pp"] == "-2.000;3.000" and ours["mean_pp"] == "0.500"
    assert (ours["wins"], ours["losses"], ours["cells"]) == ("1", "1", "2")
    assert ours["baseline_labels_fraction"] == "0.05000"
    # MOA's strategy against MOA's random sampling; MOA's random sampling against river's.
    assert rows["moa.VarUncertainty", "0"]["mean_pp"] == "3.000"
    assert rows["moa.ALRandom", "0"]["mean_pp"] == "2.000"
    assert ("random", "0") not in rows and not any(m == field.CEILING for m, _ in rows)
    text = (out / "field_seeds.md").read_text()
    assert "## Budget 5%" in text and "test runs" in text and "sea_abrupt" in text


def test_seed_arguments_are_checked() -> None:
    import field_seeds

    with pytest.raises(SystemExit, match="SEED=PATH"):
        field_seeds.parse_seeds(["seven=a.csv"])
    with pytest.raises(SystemExit, match="SEED=PATH"):
        field_seeds.parse_seeds(["1="])
