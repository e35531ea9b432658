"""The report plumbing of the annotators' side benchmarks (``benchmarks/annotation_report.py``)."""

from __future__ import annotations

import doctest
import importlib.util
import re
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "annotation_report.py"


@pytest.fixture(scope="module")
def report():
    # The benchmarks are scripts, not a package: load the module from its file.
    spec = importlib.util.spec_from_file_location("annotation_report", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_doctests(report) -> None:
    result = doctest.testmod(report)
    assert result.attempted > 0
    assert result.failed == 0


def test_full_report_names_the_command_date_and_machine(report, tmp_path: Path) -> None:
    body = ["| a | b |", "|---|---|", "| 1 | 2 |"]
    path = report.write_report(tmp_path, "stopping", "Title", False, 12.3, "Setup.", body, "alt", ["Note."])
    assert path == tmp_path / "stopping.md"
    text = path.read_text()
    lines = text.split("\n")
    assert lines[0] == "# Title"
    assert "`PYTHONPATH=service python benchmarks/stopping.py`" in lines[2]
    assert re.search(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC \(Python \d", lines[2])
    assert "cores, load average" in lines[2]
    assert lines[2].endswith("; 12 s); see its docstring for the protocol. Setup.")
    assert lines[4] == "Note."
    assert lines[6] == "![alt](stopping.png)"
    assert text.endswith("| 1 | 2 |\n")


def test_quick_report_never_overwrites_the_full_one(report, tmp_path: Path) -> None:
    (tmp_path / "stopping.md").write_text("full results\n")
    path = report.write_report(tmp_path, "stopping", "Title", True, 1.0, "Setup.", [], "alt")
    assert path.name == "stopping_quick.md"
    assert (tmp_path / "stopping.md").read_text() == "full results\n"
    text = path.read_text()
    assert text.startswith("# Title (quick)\n")
    assert "benchmarks/stopping.py --quick`" in text
    assert "![alt](stopping_quick.png)" in text


def test_mean_of_nothing_is_none(report) -> None:
    assert report.mean([]) is None
    assert report.mean([None, None]) is None


def test_machine_without_proc_cpuinfo_falls_back_to_the_architecture(report, monkeypatch) -> None:
    def no_file(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr("builtins.open", no_file)
    assert report.platform.machine() in report.machine()


def test_unknown_option_is_refused(report) -> None:
    with pytest.raises(SystemExit):
        report.base_parser("Title.").parse_args(["--budgett", "0.1"])
