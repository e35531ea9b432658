"""The engine: the pure core that decides events and learns labels (no Kafka, no files, no clocks).

- :mod:`~activestream.engine.step`: what it reads (messages), what it emits (records, journal steps);
- :mod:`~activestream.engine.state`: what a checkpoint saves;
- :mod:`~activestream.engine.deciding`: events → ask or discard, decided once;
- :mod:`~activestream.engine.learning`: labels → joined, learned once;
- :mod:`~activestream.engine.engine`: the :class:`Engine` the loop drives.
"""

from activestream.engine.engine import Engine
from activestream.engine.learning import DEFER
from activestream.engine.step import Record, Step

__all__ = ["DEFER", "Engine", "Record", "Step"]
