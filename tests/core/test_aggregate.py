"""Several annotators: majority and weighted votes, the tie rule, agreement history, ballots."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activestream.aggregate import AnnotatorHistory, LabelAggregator, Vote, consensus


def votes(*pairs):
    return [Vote(annotator, label, at) for at, (annotator, label) in enumerate(pairs)]


def test_majority_wins():
    result = consensus(votes(("a", 1), ("b", 0), ("c", 1)), AnnotatorHistory())
    assert (result.label, result.votes, result.unanimous, result.tie_rule) == (1, 3, False, None)
    assert result.support == pytest.approx(2 / 3)


def test_unanimous():
    result = consensus(votes(("a", "x"), ("b", "x")), AnnotatorHistory())
    assert result.unanimous and result.support == 1.0


def test_a_tie_goes_to_the_annotator_with_the_best_history_then_to_the_earliest_vote():
    history = AnnotatorHistory()
    assert consensus(votes(("a", 1), ("b", 0)), history).label == 1  # earliest
    for _ in range(3):
        history.record("b", True)
    result = consensus(votes(("a", 1), ("b", 0)), history)
    assert (result.label, result.tie_rule) == (0, "history")


def test_labels_of_different_json_types_are_different_answers():
    result = consensus(votes(("a", 1), ("b", True), ("c", True)), AnnotatorHistory())
    assert result.label is True and not result.unanimous


def test_weighted_vote_lets_a_reliable_annotator_outvote_two_unreliable_ones():
    history = AnnotatorHistory()
    for _ in range(50):
        history.record("expert", True)
        history.record("noisy1", False)
        history.record("noisy2", False)
    ballot = votes(("noisy1", 0), ("noisy2", 0), ("expert", 1))
    assert consensus(ballot, history).label == 0
    assert consensus(ballot, history, weighted=True).label == 1


def test_when_every_voter_weighs_nothing_votes_count_one_each():
    history = AnnotatorHistory()
    for name in ("a", "b", "c"):
        for _ in range(100):
            history.record(name, False)
    assert consensus(votes(("a", 1), ("b", 0), ("c", 0)), history, weighted=True).label == 0


def test_ballots_complete_at_r_votes_and_ignore_duplicate_annotators():
    aggregator = LabelAggregator(needed=2)
    assert aggregator.add("r", "a", 1, now_ms=0) == "accepted"
    assert aggregator.add("r", "a", 0, now_ms=1) == "duplicate"
    assert aggregator.votes("r") == (Vote("a", 1, 0),)
    assert aggregator.add("r", "b", 1, now_ms=2) == "complete"
    result = aggregator.close("r")
    assert result.label == 1 and result.votes == 2 and "r" not in aggregator
    assert aggregator.close("r") is None


def test_anonymous_labels_count_as_one_annotator():
    aggregator = LabelAggregator(needed=3)
    assert aggregator.add("r", None, 1, 0) == "accepted"
    assert aggregator.add("r", "", 1, 0) == "duplicate"


def test_due_ballots_by_timeout_oldest_first():
    aggregator = LabelAggregator(needed=3, timeout_ms=100)
    aggregator.add("old", "a", 1, now_ms=0)
    aggregator.add("new", "a", 1, now_ms=50)
    assert aggregator.due(99) == []
    assert aggregator.due(100) == ["old"]
    assert aggregator.due(150) == ["old", "new"]
    assert LabelAggregator(needed=3).due(10**12) == []


def test_a_lone_vote_does_not_count_in_the_history():
    aggregator = LabelAggregator(needed=3)
    aggregator.add("r", "a", 1, 0)
    assert aggregator.close("r").label == 1
    assert aggregator.history.counts("a") == (0, 0)
    assert math.isnan(aggregator.history.raw_agreement("a"))


def test_history_is_bounded_and_names_the_top_annotators_by_volume():
    history = AnnotatorHistory(max_tracked=3)
    for name, n in (("a", 5), ("b", 3), ("c", 1)):
        for _ in range(n):
            history.record(name, True)
    history.record("d", False)  # c (fewest) is forgotten
    assert len(history) == 3 and history.counts("c") == (0, 0)
    assert history.top(2) == ["a", "b"]
    assert history.metric_label("d", top_n=2) == "other"
    assert history.others_agreement(top_n=2) == 0.0


@given(
    n_votes=st.integers(1, 7),
    seed=st.integers(0, 10_000),
    weighted=st.booleans(),
)
@settings(max_examples=80, deadline=None)
def test_the_consensus_is_one_of_the_votes_and_deterministic(n_votes, seed, weighted):
    rng = random.Random(seed)
    history = AnnotatorHistory()
    for name in "abcdefg":
        for _ in range(rng.randrange(5)):
            history.record(name, rng.random() < 0.7)
    ballot = [Vote(name, rng.choice([0, 1, 2]), i) for i, name in enumerate("abcdefg"[:n_votes])]
    first = consensus(ballot, history, weighted=weighted)
    assert first == consensus(ballot, history, weighted=weighted)
    assert first.label in {v.label for v in ballot}
    if not weighted:
        counts = {label: sum(v.label == label for v in ballot) for label in {v.label for v in ballot}}
        assert counts[first.label] == max(counts.values())


def test_majority_of_three_noisy_annotators_beats_one():
    rng = random.Random(4)
    one = three = 0
    for i in range(2000):
        truth = i % 2
        answers = [truth if rng.random() > 0.2 else 1 - truth for _ in range(3)]
        one += answers[0] == truth
        aggregator = LabelAggregator(needed=3)
        for name, answer in zip("abc", answers, strict=True):
            aggregator.add("r", name, answer, 0)
        three += aggregator.close("r").label == truth
    assert one / 2000 == pytest.approx(0.8, abs=0.03)
    assert three / 2000 == pytest.approx(0.896, abs=0.03)  # 0.8³ + 3·0.8²·0.2
