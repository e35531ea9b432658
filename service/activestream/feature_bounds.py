"""Bounds on categorical features: how many distinct string values each feature may take.

Every distinct string value of a feature is a one-hot feature of the model (``models``: river's
``OneHotEncoder`` behind ``SelectType(str)``), a weight per class in every arm, and bytes in every
checkpoint. ``messages.parse_event`` bounds the *length* of a string (``max_string_chars``); this module
bounds the *number* of distinct strings per feature, across the stream, with :class:`CategoryBounds`:

- ``check(features)``: ``None`` when the event stays within the bounds, else a one-line reason (for a
  dead letter's detail) naming the first feature that would exceed them;
- ``admit(features)``: records the event's string values once the event is accepted;
- ``admit_within(features)``: both in one call, the event admitted only when within the bounds.

Only ``str`` values are categories: numbers and booleans are not (JSON ``true`` is a ``bool``). A feature
that is a number in one event and a string in another counts its strings only.

Memory is bounded: at most ``max_string_features`` features are tracked (an event bringing a string
value for yet another feature is refused as well), each with at most ``max_categories`` values, so
``max_string_features × max_categories`` strings in all (each at most ``max_string_chars`` characters
once parsing bounds them). ``max_categories = 0`` turns the bound off: nothing is tracked or refused.

Pure and deterministic: no clock, no randomness; the recorded values are kept in insertion order (dicts,
not sets, whose order depends on the string hash seed), so the same admissions give the same state and
the same pickled bytes in any process. Picklable as it is, for the checkpoint.

Examples
--------
>>> bounds = CategoryBounds(max_categories=2)
>>> bounds.check({"city": "Paris", "price": 3.5, "member": True}) is None
True
>>> bounds.admit({"city": "Paris", "price": 3.5, "member": True})
>>> bounds.admit({"city": "Oslo"})
>>> bounds.check({"city": "Paris"}) is None  # a known value
True
>>> print(bounds.check({"city": "Rome"}))
feature 'city' would take its 3rd distinct value (ACTIVESTREAM_MAX_CATEGORIES=2)
>>> bounds.distinct("city"), bounds.distinct("price"), len(bounds)
(2, 0, 1)

A refused event is not admitted, so it leaves no trace; admitting it anyway (the caller's choice) never
records more than the bound:

>>> bounds.admit({"city": "Rome"})
>>> bounds.distinct("city")
2

The number of tracked features is bounded too:

>>> few = CategoryBounds(max_categories=10, max_string_features=1)
>>> few.admit({"a": "x"})
>>> print(few.check({"a": "y", "b": "z"}))
feature 'b' would be the 2nd feature with string values (ACTIVESTREAM_MAX_FEATURES=1)

Off:

>>> CategoryBounds(max_categories=0).check({"city": "Rome"}) is None
True
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Final

from activestream.messages import DEFAULT_MAX_FEATURES

__all__ = ["DEFAULT_MAX_CATEGORIES", "CategoryBounds"]

#: Distinct string values a feature may take (``ACTIVESTREAM_MAX_CATEGORIES``).
DEFAULT_MAX_CATEGORIES: Final = 1000
#: Longest feature name quoted in a reason, in characters.
_NAME_CHARS: Final = 64


def _ordinal(n: int) -> str:
    """``1`` -> ``1st``, ``1001`` -> ``1,001st``, ``12`` -> ``12th``.

    >>> [_ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 102, 111, 1001)]
    ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '102nd', '111th', '1,001st']
    """
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def _quoted(name: str) -> str:
    return repr(name if len(name) <= _NAME_CHARS else name[:_NAME_CHARS] + "…")


class CategoryBounds:
    """At most ``max_categories`` distinct string values per feature, for at most ``max_string_features``
    features (see the module docstring); ``max_categories = 0``: no bound.

    Parameters
    ----------
    max_categories
        Distinct string values a feature may take (``ACTIVESTREAM_MAX_CATEGORIES``); 0: unbounded.
    max_string_features
        Features with string values that are tracked (the service passes ``ACTIVESTREAM_MAX_FEATURES``,
        which bounds the features of one event too).
    """

    __slots__ = ("_values", "max_categories", "max_string_features")

    def __init__(self, max_categories: int, max_string_features: int = DEFAULT_MAX_FEATURES) -> None:
        if max_categories < 0:
            raise ValueError(f"max_categories must be >= 0 (0: unbounded), got {max_categories}")
        if max_string_features < 1:
            raise ValueError(f"max_string_features must be >= 1, got {max_string_features}")
        self.max_categories = max_categories
        self.max_string_features = max_string_features
        #: Feature -> its admitted string values, as an insertion-ordered set (values are ``None``).
        self._values: dict[str, dict[str, None]] = {}

    @property
    def enabled(self) -> bool:
        return self.max_categories > 0

    def admit_within(self, features: Mapping[str, object]) -> str | None:
        """``check``, then ``admit`` when the event keeps every bound: what the engine does per event, with
        one look at the value types for the common event that has no string.

        >>> bounds = CategoryBounds(max_categories=1)
        >>> bounds.admit_within({"city": "Oslo", "price": 1.0}), bounds.admit_within({"price": 2.0})
        (None, None)
        >>> print(bounds.admit_within({"city": "Rome"}))
        feature 'city' would take its 2nd distinct value (ACTIVESTREAM_MAX_CATEGORIES=1)
        """
        if not self._has_categories(features):
            return None
        reason = self._refusal(features)
        if reason is None:
            self._record(features)
        return reason

    def check(self, features: Mapping[str, object]) -> str | None:
        """``None`` if admitting ``features`` keeps every bound, else why not (one line, no value quoted)."""
        return self._refusal(features) if self._has_categories(features) else None

    def admit(self, features: Mapping[str, object]) -> None:
        """Record the string values of an accepted event (values beyond a bound are not recorded)."""
        if self._has_categories(features):
            self._record(features)

    def admit_all(self, rows: Sequence[Mapping[str, object]]) -> list[str | None]:
        """``admit_within`` of each row in turn (one call for a run of events).

        >>> CategoryBounds(max_categories=1).admit_all([{"city": "Oslo"}, {"x": 1.0}, {"city": "Rome"}])
        [None, None, "feature 'city' would take its 2nd distinct value (ACTIVESTREAM_MAX_CATEGORIES=1)"]
        """
        values = itertools.chain.from_iterable([x.values() for x in rows])
        if not self.enabled or str not in set(map(type, values)):  # the usual run: no string at all
            return [None] * len(rows)
        return [self.admit_within(x) if _has_strings(x) else None for x in rows]

    def _has_categories(self, features: Mapping[str, object]) -> bool:
        return self.enabled and _has_strings(features)

    def _refusal(self, features: Mapping[str, object]) -> str | None:
        new_features = 0
        for name, value in features.items():
            if type(value) is not str:  # bools and numbers are not categories (bool is not a str anyway)
                continue
            known = self._values.get(name)
            if known is None:
                new_features += 1
                if len(self._values) + new_features > self.max_string_features:
                    return (
                        f"feature {_quoted(name)} would be the "
                        f"{_ordinal(len(self._values) + new_features)} feature with string values "
                        f"(ACTIVESTREAM_MAX_FEATURES={self.max_string_features})"
                    )
            elif value not in known and len(known) >= self.max_categories:
                return (
                    f"feature {_quoted(name)} would take its {_ordinal(len(known) + 1)} distinct value "
                    f"(ACTIVESTREAM_MAX_CATEGORIES={self.max_categories})"
                )
        return None

    def _record(self, features: Mapping[str, object]) -> None:
        for name, value in features.items():
            if type(value) is not str:
                continue
            known = self._values.get(name)
            if known is None:
                if len(self._values) >= self.max_string_features:
                    continue
                known = self._values[name] = {}
            if value not in known and len(known) < self.max_categories:
                known[value] = None

    def distinct(self, name: str) -> int:
        """How many distinct string values ``name`` has taken."""
        return len(self._values.get(name, ()))

    def __len__(self) -> int:
        """Features with string values tracked."""
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoryBounds):
            return NotImplemented
        return (
            self.max_categories == other.max_categories
            and self.max_string_features == other.max_string_features
            and self._values == other._values
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"CategoryBounds(max_categories={self.max_categories}, "
            f"max_string_features={self.max_string_features}, features={len(self._values)})"
        )

    def __getstate__(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


def _has_strings(features: Mapping[str, object]) -> bool:
    # One C-level pass over the value types: most events have no string at all.
    return str in set(map(type, features.values()))
