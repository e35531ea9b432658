"""The fast-path benchmark on a few events: every fast path decides as its reference (no timing asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fast_paths.py"


def test_every_fast_path_decides_as_its_reference(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # as when run as a script: its sibling modules import
    spec = importlib.util.spec_from_file_location("fast_paths", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fast_paths"] = module  # dataclasses resolve their module's annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        assert module.main(["--n", "250", "--out", str(tmp_path)]) == 0
    finally:
        del sys.modules["fast_paths"]
    text = (tmp_path / "fast_paths_quick.md").read_text()
    assert "**34 of 34 runs decide identically**" in text
