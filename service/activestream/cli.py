"""The ``activestream`` command line.

- ``activestream run``: the production service (configuration from ``ACTIVESTREAM_*`` variables).
- ``activestream demo``: the full loop on an embedded broker, with a summary table and a learning curve.
- ``activestream replay``: produce a CSV file or a named stream as events.
- ``activestream annotate``: a simulated annotator answering label requests from a stream's ground truth.
- ``activestream post-label``: post one label, as an annotator tool would.
- ``activestream label-ui``: the labeling page, where people answer label requests in a browser.
- ``activestream schemas``: write the wire messages' JSON Schemas.
- ``activestream settings``: print every configuration option with its default.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from activestream.config import ConfigError, load_settings, settings_table_markdown
from activestream.types import ClassLabel, Features

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="activestream", description="Stream-based online active learning on Kafka."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the service against the Kafka cluster the environment names")

    demo = commands.add_parser("demo", help="the full loop on an embedded broker")
    demo.add_argument("--dataset", help="elec, sea_abrupt, agrawal_gradual, ... (default: elec if found)")
    demo.add_argument("--events", type=int, help="number of events (default: the whole stream)")
    demo.add_argument("--budget", type=float, default=0.1, help="fraction of events to ask (default 0.1)")
    demo.add_argument("--model", default="logreg", help="base model (default logreg)")
    demo.add_argument("--measure", help="informativeness measure (default: the service's)")
    demo.add_argument("--policy", help="threshold policy (default: the service's)")
    demo.add_argument(
        "--label-delay",
        type=int,
        default=500,
        metavar="EVENTS",
        help="events between an event and its label's arrival, a fixed delay (default 500)",
    )
    demo.add_argument("--seed", type=int, default=1, help="seeds the stream, the service and the baselines")
    demo.add_argument(
        "--rate", type=float, default=1500.0, metavar="EVENTS_PER_S", help="replay rate (default 1500)"
    )
    demo.add_argument(
        "--window",
        type=int,
        default=1000,
        metavar="EVENTS",
        help="window of the learning curves' moving accuracy (default 1000 events)",
    )
    demo.add_argument("--output", type=Path, default=Path("demo-output"), help="where the plot goes")

    replay = commands.add_parser("replay", help="produce events from a CSV file or a named stream")
    _add_source_arguments(replay)

    annotate = commands.add_parser("annotate", help="answer label requests from a stream's ground truth")
    _add_source_arguments(annotate)
    annotate.add_argument("--label-delay", type=float, default=1.0, help="mean answer delay, seconds")
    annotate.add_argument("--error-rate", type=float, default=0.0, help="probability of a wrong label")

    post = commands.add_parser("post-label", help="post one label to the labels topic")
    post.add_argument("--event-id", required=True)
    post.add_argument("--label", required=True, help='a JSON scalar: 1, true, "up" (bare words are strings)')
    post.add_argument("--annotator")

    ui = commands.add_parser("label-ui", help="serve the labeling page (answer label requests in a browser)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    ui.add_argument("--group", help="consumer group (default <ACTIVESTREAM_GROUP_ID>-label-ui)")

    schemas = commands.add_parser("schemas", help="write the JSON Schemas of the wire messages")
    schemas.add_argument("--out", type=Path, default=Path("docs/schemas"))
    commands.add_parser("settings", help="print every option, its variable and its default (markdown)")
    return parser


def _add_source_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", type=Path, help="a CSV file; one event per row")
    source.add_argument("--dataset", help="a named stream: elec, sea_abrupt, agrawal_gradual, ...")
    parser.add_argument("--label-column", default="class", help="the CSV's label column (default class)")
    parser.add_argument("--id-column", help="the CSV's event-id column (default: ev-<row number>)")
    parser.add_argument("--events", type=int, help="stop after this many events")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")


def _scalar(text: str) -> ClassLabel | float:
    """A CSV cell or CLI value as the JSON scalar it spells; anything else stays a string."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, bool | int | float | str) else text


def _csv_rows(
    path: Path, label_column: str, id_column: str | None
) -> Iterator[tuple[str, Features, ClassLabel]]:
    with path.open(newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            event_id = row.pop(id_column) if id_column else f"ev-{i:07d}"
            label = _scalar(row.pop(label_column))
            yield event_id, {k: _scalar(v) for k, v in row.items()}, label


def _labeled_pairs(args: argparse.Namespace):
    from activestream.datasets import make_stream
    from activestream.demo.replay import labeled_events
    from activestream.messages import Event

    if args.csv:
        pairs = (
            (Event(id=event_id, features=x), y)
            for event_id, x, y in _csv_rows(args.csv, args.label_column, args.id_column)
        )
    else:
        pairs = labeled_events(make_stream(args.dataset, n=args.events, seed=args.seed))
    if args.events:
        from itertools import islice

        pairs = islice(pairs, args.events)
    return pairs


def _replay(args: argparse.Namespace) -> int:
    from activestream.demo.replay import replay
    from activestream.transport.factory import producer_from_settings

    settings = load_settings()
    producer = producer_from_settings(settings)
    try:
        sent = replay(producer, settings.events_topic, _labeled_pairs(args), {}, rate_per_s=args.rate)
    finally:
        producer.close()
    print(f"produced {sent:,} events to {settings.events_topic}")
    return 0


def _annotate(args: argparse.Namespace) -> int:
    import signal

    from activestream.demo.annotator import SimulatedAnnotator, run_annotator
    from activestream.transport.factory import consumer_from_settings, producer_from_settings

    settings = load_settings()
    try:
        annotator = SimulatedAnnotator({}, args.label_delay, args.error_rate, seed=args.seed)
    except ValueError as error:
        print(f"activestream annotate: {error}", file=sys.stderr)
        return 2
    annotator.truth = {event.id: y for event, y in _labeled_pairs(args)}
    consumer = consumer_from_settings(settings, group_id=f"{settings.group_id}-annotator")
    consumer.subscribe([settings.requests_topic])
    producer = producer_from_settings(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        posted = run_annotator(consumer, producer, settings.labels_topic, annotator, stop)
    finally:
        consumer.close()
        producer.close()
    print(f"posted {posted:,} labels to {settings.labels_topic}")
    return 0


def _post_label(args: argparse.Namespace) -> int:
    from activestream.messages import Label, to_json
    from activestream.transport.factory import producer_from_settings

    label = _scalar(args.label)
    if isinstance(label, float):
        print("error: labels are strings, integers or booleans, not floats", file=sys.stderr)
        return 2
    settings = load_settings()
    producer = producer_from_settings(settings)
    try:
        message = Label(event_id=args.event_id, label=label, annotator=args.annotator)
        producer.produce(settings.labels_topic, to_json(message), key=args.event_id.encode())
        producer.flush(30.0)
    finally:
        producer.close()
    print(f"posted label {label!r} for event {args.event_id} to {settings.labels_topic}")
    return 0


def _label_ui(args: argparse.Namespace) -> int:
    import signal

    from activestream.app import configure_logging
    from activestream.labeling import run_label_ui

    settings = load_settings()
    configure_logging(settings.log_level)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_label_ui(settings, args.host, args.port, group_id=args.group, stop=stop)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from activestream.demo.session import DemoOptions, run_demo

    try:
        options = DemoOptions(
            dataset=args.dataset,
            events=args.events,
            budget=args.budget,
            model=args.model,
            measure=args.measure,
            policy=args.policy,
            seed=args.seed,
            label_delay=args.label_delay,
            rate_per_s=args.rate,
            output_dir=args.output,
            window=args.window,
        )
    except ValueError as error:
        print(f"activestream demo: {error}", file=sys.stderr)
        return 2
    run_demo(options)
    return 0


def _run(_: argparse.Namespace) -> int:
    from activestream.app import run

    run()
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from activestream.messages import export_json_schemas

    for path in export_json_schemas(args.out):
        print(path)
    return 0


def _settings(_: argparse.Namespace) -> int:
    print(settings_table_markdown())
    return 0


COMMANDS = {
    "run": _run,
    "demo": _demo,
    "replay": _replay,
    "annotate": _annotate,
    "post-label": _post_label,
    "label-ui": _label_ui,
    "schemas": _schemas,
    "settings": _settings,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as error:
        print(f"activestream: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
