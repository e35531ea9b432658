"""The labels a request offers, and how typed text becomes a label of the right JSON type.

A request carries ``probabilities`` keyed by ``str(label)`` (JSON object keys are strings) and
``predicted_label`` as a typed JSON scalar. The classes offered are the probability keys in a stable
order (by name: key ``1`` is the same class on every request), turned back into labels of the model's
type: the predicted label's type is the hint (``"True"`` is the boolean ``true`` when the model predicts
booleans, ``"1"`` the integer ``1`` when it predicts integers, and stays the string ``"1"`` when it
predicts strings). Without a hint (an untrained model) a
key is read as a JSON scalar when it spells one (``true``, ``1``), else kept as a string.

>>> from datetime import UTC, datetime
>>> from activestream.messages import LabelRequest
>>> t = datetime(2024, 1, 1, tzinfo=UTC)
>>> request = LabelRequest(
...     request_id="r", event_id="e", features={"x": 1}, predicted_label=True,
...     probabilities={"False": 0.3, "True": 0.7}, score=0.9, strategy="entropy/split",
...     reason="informative", threshold=0.5, model_version=3, created_at=t, expires_at=t)
>>> [(c.key, c.display, c.value) for c in label_choices(request)]
[(1, 'False', False), (2, 'True', True)]
>>> parse_label_text("false", hint=True), parse_label_text("7", hint=1), parse_label_text("7", hint="a")
(False, 7, '7')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from activestream.messages import LabelRequest

__all__ = ["MAX_CHOICES", "Choice", "label_choices", "parse_label_text"]

#: Keys 1..9 pick a class: at most nine are offered as buttons (the text field takes any other).
MAX_CHOICES: Final = 9
_TRUE: Final = frozenset({"true", "yes"})
_FALSE: Final = frozenset({"false", "no"})


@dataclass(frozen=True, slots=True)
class Choice:
    """One class offered: ``key`` (1..9) picks it, ``value`` is the label posted."""

    key: int
    display: str
    value: bool | int | str
    probability: float


def parse_label_text(text: str, hint: bool | int | str | None = None) -> bool | int | str:
    """A label from text, of the same JSON type as ``hint`` when the text can be one.

    Raises ``ValueError`` for empty text.

    >>> parse_label_text(" up ", hint=None), parse_label_text("TRUE"), parse_label_text("2", hint=None)
    ('up', True, 2)
    >>> parse_label_text("maybe", hint=True)  # not a boolean: kept as typed
    'maybe'
    """
    text = text.strip()
    if not text:
        raise ValueError("a label cannot be empty")
    lowered = text.lower()
    if isinstance(hint, bool) or hint is None:
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    if isinstance(hint, str):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, bool) or (isinstance(value, int) and not isinstance(hint, bool)):
        return value
    return text


def _name_order(name: str) -> tuple[int, float, str]:
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def label_choices(request: LabelRequest) -> list[Choice]:
    """The classes of ``request.probabilities`` in a stable order, at most nine.

    The order is by class name (numbers by value), not by probability, so that a key means the same
    class on every request of the page; with more than nine classes the nine most probable are kept.
    """
    hint = request.predicted_label
    likely = sorted(request.probabilities.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CHOICES]
    ranked = sorted(likely, key=lambda kv: _name_order(kv[0]))
    choices = []
    for i, (key, p) in enumerate(ranked, start=1):
        value = hint if hint is not None and str(hint) == key else parse_label_text(key, hint)
        choices.append(Choice(i, key, value, float(p)))
    return choices
