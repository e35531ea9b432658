"""The fast-path benchmark on a few events: every fast path decides as its reference (no timing asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fast_paths.py"
#: The script and the sibling module it imports: loaded for this test only, so that other tests load
#: their own copies (a leftover ``annotation_report`` hides its doctests from ``doctest.testmod``).
SCRIPT_MODULES = ("fast_paths", "annotation_report")


def test_every_fast_path_decides_as_its_reference(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # as when run as a script: its sibling modules import
    loaded_before = {name for name in SCRIPT_MODULES if name in sys.modules}
    spec = importlib.util.spec_from_file_location("fast_paths", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fast_paths"] = module  # dataclasses resolve their module's annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        assert module.main(["--n", "250", "--out", str(tmp_path)]) == 0
    finally:
        for name in set(SCRIPT_MODULES) - loaded_before:
            sys.modules.pop(name, None)
    text = (tmp_path / "fast_paths_quick.md").read_text()
    assert "**34 of 34 runs decide identically**" in text
