"""The dead-letter guard: accepting a stretch of messages at once is accepting each in turn."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from activestream.deadletters import DeadLetterGuard, DeadLetterLimitExceeded


def _feed(guard: DeadLetterGuard, stretches: list[tuple[bool, int]], *, at_once: bool) -> tuple:
    """Each stretch: ``count`` messages rejected or accepted; returns the guard's state and every error it
    raised (the loop keeps going after one, as ``DeadLetters`` does)."""
    errors = []

    def record(call, *args) -> None:
        try:
            call(*args)
        except DeadLetterLimitExceeded as error:
            errors.append(str(error))

    for rejected, count in stretches:
        if rejected:
            for _ in range(count):
                record(guard.record, True, "schema")
        elif at_once:
            before = len(errors)
            record(guard.accept, count)
            del errors[before + 1 :]  # (one error for the stretch: the first)
        else:
            before = len(errors)
            for _ in range(count):
                record(guard.record, False)
            del errors[before + 1 :]
    return list(guard._recent), guard._rejected, guard._consecutive, errors


@settings(max_examples=300)
@given(
    st.floats(0.0, 1.0),
    st.integers(1, 12),
    st.integers(0, 5),
    st.lists(st.tuples(st.booleans(), st.integers(0, 15)), max_size=12),
)
def test_accepting_a_stretch_at_once_is_accepting_each(max_ratio, window, max_consecutive, stretches):
    def guard() -> DeadLetterGuard:
        return DeadLetterGuard(max_ratio, window, max_consecutive)

    assert _feed(guard(), stretches, at_once=True) == _feed(guard(), stretches, at_once=False)
