"""The README stays true: its first commands, every option with its default, every metric, its example."""

from __future__ import annotations

import re
from pathlib import Path

from activestream.config import settings_table_markdown
from activestream.metrics import METRIC_NAMES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_first_lines_give_the_demo_and_test_commands():
    head = README.splitlines()[:6]
    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)


def test_every_option_is_documented_with_its_default():
    assert settings_table_markdown() in README, "regenerate the table with `activestream settings`"


def test_every_metric_is_documented():
    missing = [name for name in METRIC_NAMES if f"`{name}`" not in README]
    assert not missing, f"metrics missing from the README: {missing}"


def test_no_template_marker_is_left():
    assert not re.search(r"^[A-Z_]{6,}$|\bTODO\b|\bTBD\b", README, flags=re.M)


def test_the_python_example_runs():
    [example] = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
