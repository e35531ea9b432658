"""The ``activestream`` command line's arguments: the parser, and option types that refuse a bad value
on one line (argparse's usage block hid the message among 10 lines of options)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["PLOT_SUFFIXES", "UsageError", "build_parser"]


class UsageError(Exception):
    """A mistake on the command line or in its files: one line on stderr naming the fix, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (its usage block hid the message among 10 lines of options)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def format_help(self) -> str:
        if self.prog.endswith(" run"):  # built only when asked for: it loads the settings (and river)
            self.epilog = _settings_epilog()
        return super().format_help()


def _checked(kind: Callable[[str], Any], test: Callable[[Any], bool], rule: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind`` of the text, refused unless ``test`` holds (``rule`` says what)."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}")
        return value

    convert.__name__ = rule  # argparse names the type in some messages
    return convert


_POSITIVE_INT = _checked(int, lambda v: v >= 1, "a whole number >= 1")
_NON_NEGATIVE_INT = _checked(int, lambda v: v >= 0, "a whole number >= 0")
_FRACTION = _checked(float, lambda v: 0 < v <= 1, "a fraction in (0, 1], e.g. 0.1")
_PROBABILITY = _checked(float, lambda v: 0 <= v <= 1, "a probability in [0, 1]")
_POSITIVE = _checked(float, lambda v: v > 0 and math.isfinite(v), "a number > 0")
_NON_NEGATIVE = _checked(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")
_PORT = _checked(int, lambda v: 0 <= v <= 65535, "a port number in 0-65535")
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def _settings_epilog() -> str:
    """``run --help``'s list of settings: each variable with its default and the first sentence of its
    description (``activestream settings`` prints them whole)."""
    from activestream.config import Settings, env_var

    lines = ["settings (environment variables; `activestream settings` prints them in full):"]
    for name, field in Settings.model_fields.items():
        default = field.default.value if isinstance(field.default, StrEnum) else field.default
        about = (field.description or "").split(". ")[0].rstrip(".")
        about = about if len(about) <= 70 else about[:67] + "..."
        lines.append(f"  {env_var(name)}={'' if default is None else default}  {about}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="activestream", description="Stream-based online active learning on Kafka.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "run",
        help="run the service against the Kafka cluster the environment names",
        description="Run the service until SIGTERM/SIGINT. It takes no options: every setting is an "
        "ACTIVESTREAM_* environment variable.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_demo(commands)

    replay = commands.add_parser("replay", help="produce events from a CSV file or a named stream")
    _add_source_arguments(replay)

    annotate = commands.add_parser("annotate", help="answer label requests from a stream's ground truth")
    _add_source_arguments(annotate)
    annotate.add_argument("--label-delay", type=_NON_NEGATIVE, default=1.0, help="mean answer delay, seconds")
    annotate.add_argument(
        "--error-rate", type=_PROBABILITY, default=0.0, help="probability of a wrong label (default 0)"
    )
    annotate.add_argument(
        "--idle-seconds",
        type=_POSITIVE,
        default=10.0,
        help="with --events: stop once every request for them is answered and none came for this long "
        "(default 10)",
    )

    post = commands.add_parser("post-label", help="post one label to the labels topic")
    post.add_argument("--event-id", required=True)
    post.add_argument("--label", required=True, help='a JSON scalar: 1, true, "up" (bare words are strings)')
    post.add_argument("--annotator")

    ui = commands.add_parser("label-ui", help="serve the labeling page (answer label requests in a browser)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=_PORT, default=8080, help="port (default 8080)")
    ui.add_argument("--group", help="consumer group (default <ACTIVESTREAM_GROUP_ID>-label-ui)")

    schemas = commands.add_parser("schemas", help="print or write the JSON Schemas of the wire messages")
    schemas.add_argument(
        "--out", type=Path, help="write one file per message into this directory (default: print to stdout)"
    )
    commands.add_parser("settings", help="print every option, its variable and its default (markdown)")
    return parser


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser("demo", help="the full loop on an embedded broker")
    demo.add_argument("--dataset", help="elec, sea_abrupt, agrawal_gradual, ... (default: elec if found)")
    demo.add_argument("--events", type=_POSITIVE_INT, help="number of events (default: the whole stream)")
    demo.add_argument("--budget", type=_FRACTION, default=0.1, help="fraction of events to ask (default 0.1)")
    demo.add_argument("--model", default="logreg", help="base model (default logreg)")
    demo.add_argument("--measure", help="informativeness measure (default: the service's)")
    demo.add_argument("--policy", help="threshold policy (default: the service's)")
    demo.add_argument(
        "--label-delay",
        type=_NON_NEGATIVE_INT,
        default=500,
        metavar="EVENTS",
        help="events between an event and its label's arrival, a fixed delay (default 500)",
    )
    demo.add_argument("--seed", type=int, default=1, help="seeds the stream, the service and the baselines")
    demo.add_argument(
        "--rate", type=_POSITIVE, default=1500.0, metavar="EVENTS_PER_S", help="replay rate (default 1500)"
    )
    demo.add_argument(
        "--window",
        type=_POSITIVE_INT,
        default=1000,
        metavar="EVENTS",
        help="window of the learning curves' moving accuracy (default 1000 events)",
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=Path("demo-output/learning_curve.png"),
        metavar="FILE",
        help="the learning curve's file, .png, .svg or .pdf; its folder also holds the demo's checkpoint "
        "(default demo-output/learning_curve.png)",
    )


def _add_source_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", type=Path, help="a CSV file; one event per row")
    source.add_argument("--dataset", help="a named stream: elec, sea_abrupt, agrawal_gradual, ...")
    parser.add_argument("--label-column", default="class", help="the CSV's label column (default class)")
    parser.add_argument("--id-column", help="the CSV's event-id column (default: ev-<row number>)")
    parser.add_argument("--events", type=_POSITIVE_INT, help="stop after this many events")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=_POSITIVE, help="events per second (default: as fast as possible)")
