"""Type aliases shared by the core and the shell."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

#: One event's features, as river models take them.
Features = dict[str, float | int | str | bool]
#: A class label (river allows any hashable value; the wire format uses str, int or bool).
ClassLabel = Hashable
#: Class probabilities as returned by ``predict_proba_one``; may be empty for an untrained model.
Proba = Mapping[ClassLabel, float]
