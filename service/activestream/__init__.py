"""activestream: stream-based online active learning on Kafka.

The package reads as the data flow of the service:

- ``score``    — informativeness of one event under the current model (pure)
- ``decide``   — budgets and adaptive thresholds that turn a score into ask/discard (pure)
- ``learner``  — the active learner that ties model, measure and policy together (pure)
- ``evaluate`` — prequential evaluation for stream active learning (pure)
- ``datasets`` — the streams used by tests, the demo and the benchmarks

Everything else (Kafka transport, checkpoints, HTTP, metrics, CLI) is a thin shell around that core.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("activestream")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
