"""The README stays true: its first commands, every command it shows, every file it names, its example
event and label, every option with its default (docs/configuration.md), every metric, its example; and
`make demo` / `make test` install what they say."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import jsonschema
import pytest

from activestream.arguments import build_parser as _parser
from activestream.config import ENV_PREFIX, OTHER_VARIABLES, Settings, env_var, settings_table_markdown
from activestream.messages import Event, Label, parse_event, parse_label
from activestream.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONFIGURATION = ROOT / "docs" / "configuration.md"
#: The documents the README sends a newcomer to; their links are checked too.
DOCUMENTS = [
    ROOT / "README.md",
    ROOT / "docs" / "benchmarks.md",
    ROOT / "docs" / "metrics.md",
    ROOT / "docs" / "architecture.md",
    ROOT / "deploy" / "README.md",
    CONFIGURATION,
]


def _code_lines(text: str) -> list[str]:
    """The lines of the shell blocks, continuation lines joined, comments dropped."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line:
                lines.append(line)
    return lines


def _commands(text: str) -> list[str]:
    """Every ``activestream ...`` command, in shell blocks or inline code."""
    inline = re.findall(r"`(activestream [^`]+)`", text)
    in_blocks = [part.strip() for line in _code_lines(text) for part in re.split(r"&&|\||;", line)]
    return sorted({c for c in inline + in_blocks if c.startswith("activestream ")})


def test_the_first_lines_give_the_demo_and_test_commands():
    head = README.splitlines()[:6]
    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)


def test_the_readme_is_short():
    assert len(README.splitlines()) <= 300


@pytest.mark.parametrize("command", _commands(README))
def test_every_activestream_command_parses(command):
    argv = shlex.split(command)[1:]
    try:
        _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse's way to refuse (or to print --help, code 0)
        assert exit_.code == 0, f"`{command}` does not parse"


def test_the_commands_are_found():
    assert {"activestream run", "activestream demo", "activestream settings"} <= set(_commands(README))


def test_every_make_target_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, flags=re.M))
    used = set(re.findall(r"\bmake ([a-z][\w-]*)", README))
    assert used and used <= targets, used - targets


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_link_and_anchor_exists(document):
    text = document.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.exists(), f"{document.name}: {target}"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"{document.name}: {target}"


def test_every_repository_path_it_names_exists():
    named = set(re.findall(r"`((?:deploy|docs|benchmarks|tests|service|\.ci)/[\w./-]*)`", README))
    assert named
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, missing


def test_every_variable_it_names_is_a_setting():
    known = {env_var(name) for name in Settings.model_fields} | OTHER_VARIABLES
    full = set(re.findall(rf"{ENV_PREFIX}[A-Z0-9][A-Z0-9_]*", README))
    short = {ENV_PREFIX + s for s in re.findall(r"`_([A-Z][A-Z0-9_]*)`", README)}
    assert full and not (full | short) - known, (full | short) - known


def _produced(topic_flag: str) -> list[tuple[str, str, dict]]:
    """(topic, key, value) of every ``echo 'key|json' | kcat -P ... -t topic`` line."""
    found = []
    for line in _code_lines(README):
        match = re.match(r"echo '([^|']+)\|(\{.*\})' \| kcat -P .*-t ([\w.-]+)", line)
        if match and match.group(3) == topic_flag:
            found.append((match.group(3), match.group(1), json.loads(match.group(2))))
    return found


def _schema(name: str) -> dict:
    return json.loads((ROOT / "docs" / "schemas" / name).read_text())


def test_the_example_event_is_a_valid_event_keyed_by_its_id():
    [(_, key, value)] = _produced(Settings().events_topic)
    jsonschema.validate(value, _schema("event.schema.json"))
    event = parse_event(json.dumps(value).encode())
    assert isinstance(event, Event) and event.id == key


def test_the_example_label_is_a_valid_label_keyed_by_its_event_id():
    [(_, key, value)] = _produced(Settings().labels_topic)
    jsonschema.validate(value, _schema("label.schema.json"))
    label = parse_label(json.dumps(value).encode())
    assert isinstance(label, Label) and label.event_id == key
    # The label answers the example event.
    [(_, _, event)] = _produced(Settings().events_topic)
    assert label.event_id == event["id"]


def test_the_topics_it_reads_and_writes_are_the_defaults():
    defaults = {Settings().events_topic, Settings().labels_topic, Settings().requests_topic}
    kafka_lines = [line for line in _code_lines(README) if re.search(r"\bkcat\b|kafka-", line)]
    named = {m for line in kafka_lines for m in re.findall(r"(?:-t|--topic) ([\w.-]+)", line)}
    assert named and named <= defaults, named


def test_every_option_is_documented_with_its_default():
    assert settings_table_markdown() in CONFIGURATION.read_text(encoding="utf-8"), (
        "regenerate docs/configuration.md's table: replace it with `activestream settings`'s output"
    )
    assert "docs/configuration.md" in README


def test_every_metric_is_documented():
    missing = [name for name in METRIC_NAMES if f"`{name}`" not in README]
    assert not missing, f"metrics missing from the README: {missing}"


def test_no_template_marker_is_left():
    assert not re.search(r"^[A-Z_]{6,}$|\bTODO\b|\bTBD\b", README, flags=re.M)


def test_the_python_example_runs():
    [example] = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)


def _make_plan(target: str) -> str:
    """What ``make <target>`` would run on a fresh clone (``-B``: as if nothing were built; ``-n``: run
    nothing)."""
    # Under ``make test`` the environment says this make is nested: it would print "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    command = ["make", "--no-print-directory", "-n", "-B", target]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def test_make_demo_installs_the_demo_extra_only():
    plan = _make_plan("demo")
    assert "pip install -q -e '.[demo]'" in plan and "[dev" not in plan
    assert plan.rstrip().endswith("activestream demo")


def test_make_test_installs_what_its_tests_need():
    plan = _make_plan("test")
    assert "pip install -q -e '.[dev]'" in plan
    assert "deploy/tools/fetch-prometheus.sh" in plan and "deploy/tools/install-chromium.sh" in plan
    assert "java -version" in plan
