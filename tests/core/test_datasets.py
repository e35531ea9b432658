"""The streams: exact drift positions, replayability, and where Electricity comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from activestream.datasets import ELEC_COLUMNS, elec, find_elec_csv, make_stream, sea_abrupt

SEA_THRESHOLDS = (8.0, 9.0, 7.0, 9.5)  # the four SEA concepts: label = x0 + x1 > threshold


def test_sea_abrupt_switches_concept_exactly_at_each_drift():
    stream = sea_abrupt(n=4000, seed=3, noise=0.0)
    for i, (x, y) in enumerate(stream):
        concept = sum(i >= d for d in stream.drifts)
        assert y == (x["0"] + x["1"] > SEA_THRESHOLDS[concept]), f"event {i}"


@pytest.mark.parametrize(
    "name", ["sea_abrupt", "agrawal_gradual", "hyperplane", "rbf_drift", "stagger_recurring"]
)
def test_streams_are_replayable_and_have_string_feature_names(name):
    stream = make_stream(name, n=600, seed=2)
    first, second = list(stream), list(stream)
    assert len(first) == 600 and first == second
    assert all(isinstance(k, str) for x, _ in first for k in x)


def test_unknown_stream_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="choose one of: elec, agrawal_gradual"):
        make_stream("sea")


def write_elec(path: Path, rows: int) -> Path:
    lines = [",".join((*ELEC_COLUMNS, "class"))]
    lines += [",".join([str(i / 10)] * len(ELEC_COLUMNS) + [str(i % 2)]) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_elec_reads_a_given_csv(tmp_path):
    stream = elec(write_elec(tmp_path / "elec.csv", 5))
    examples = list(stream)
    assert len(examples) == 5
    assert [y for _, y in examples] == [0, 1, 0, 1, 0]
    assert sorted(examples[1][0]) == sorted(ELEC_COLUMNS) and examples[1][0]["period"] == 0.1


def test_the_environment_variable_names_the_csv(tmp_path, monkeypatch):
    path = write_elec(tmp_path / "mine.csv", 3)
    monkeypatch.setenv("ACTIVESTREAM_ELEC_CSV", str(path))
    assert find_elec_csv() == path


def test_the_shared_dataset_is_found_beside_the_repository():
    shared = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "elec.csv"
    if not shared.is_file():
        pytest.skip("no shared/ beside this checkout (a user's machine): river's loader is the fallback")
    assert find_elec_csv() == shared
    assert elec().n == 45_312
