"""Dead letters: a rejected message's record, and the guard that stops the service when nearly
everything is rejected (that is a bug or a misconfiguration, not bad data)."""

from __future__ import annotations

import logging
from collections import deque
from itertools import repeat

from activestream.config import Settings
from activestream.engine.step import Record
from activestream.messages import Rejection, dead_letter_headers, fit_dead_letter
from activestream.metrics import Metrics
from activestream.transport.base import Message, Producer

log = logging.getLogger(__name__)

__all__ = ["DeadLetterGuard", "DeadLetterLimitExceeded", "DeadLetters", "dead_letter_record"]


def dead_letter_record(message: Message, rejection: Rejection, topic: str, max_bytes: int) -> Record:
    """The dead letter of ``message``: its bytes (cut to fit), key and headers, plus the reason, the
    detail and where it came from (``activestream.*`` headers).

    >>> from activestream.messages import RejectReason
    >>> record = dead_letter_record(
    ...     Message("events", 2, 7, b"{"), Rejection(RejectReason.UNDECODABLE, "not JSON"), "dlq", 1000
    ... )
    >>> record.topic, record.value, dict(record.headers)["activestream.reason"]
    ('dlq', b'{', b'undecodable')
    """
    value, truncated = fit_dead_letter(message.value or b"", max_bytes)
    headers = (
        tuple(message.headers)
        + dead_letter_headers(rejection, message.topic, message.partition, message.offset)
        + truncated
    )
    return Record(topic, value, message.key, headers)


class DeadLetterLimitExceeded(RuntimeError):
    """Nearly every message is being rejected: a bug or a misconfiguration, not bad data."""


class DeadLetterGuard:
    """Trips when too many recent messages were dead-lettered.

    The ratio is checked once ``window`` messages were seen, over the last ``window`` messages.
    ``record`` raises ``DeadLetterLimitExceeded`` when it trips.

    >>> guard = DeadLetterGuard(max_ratio=0.9, window=100, max_consecutive=2)
    >>> for rejected in (True, False, True, True):
    ...     guard.record(rejected, "schema")
    >>> guard.record(True, "schema")
    Traceback (most recent call last):
    ...
    activestream.deadletters.DeadLetterLimitExceeded: 3 consecutive messages dead-lettered (more than 2); ...
    """

    def __init__(self, max_ratio: float, window: int, max_consecutive: int):
        self.max_ratio = max_ratio
        self.max_consecutive = max_consecutive
        self._recent: deque[bool] = deque(maxlen=window)
        self._rejected = 0
        self._consecutive = 0

    def record(self, rejected: bool, reason: str = "") -> None:
        if len(self._recent) == self._recent.maxlen:
            self._rejected -= self._recent[0]
        self._recent.append(rejected)
        self._rejected += rejected
        self._consecutive = self._consecutive + 1 if rejected else 0
        if self._consecutive > self.max_consecutive:
            self._fail(
                f"{self._consecutive} consecutive messages dead-lettered (more than {self.max_consecutive})",
                reason,
            )
        window = len(self._recent)
        if window == self._recent.maxlen and self._rejected / window > self.max_ratio:
            self._fail(
                f"{self._rejected} of the last {window} messages dead-lettered (above {self.max_ratio})",
                reason,
            )

    def accept(self, count: int) -> None:
        """``record(False)`` ``count`` times, each recorded even after one trips the guard (which raises
        its first error at the end); at once while the window holds no rejection (then none can trip).

        >>> guard = DeadLetterGuard(max_ratio=0.5, window=4, max_consecutive=2)
        >>> guard.record(True, "schema"); guard.accept(3)
        >>> guard.record(True, "schema")  # 2 of the last 4
        >>> guard.accept(2); guard._rejected, list(guard._recent)
        (1, [False, True, False, False])
        """
        if count <= 0:
            return
        if self._rejected:
            tripped = None
            for _ in range(count):
                try:
                    self.record(False)
                except DeadLetterLimitExceeded as error:  # each message is still recorded
                    tripped = tripped or error
            if tripped is not None:
                raise tripped
            return
        self._recent.extend(repeat(False, count))
        self._consecutive = 0

    @staticmethod
    def _fail(what: str, reason: str) -> None:
        raise DeadLetterLimitExceeded(
            f"{what}; last reason: {reason}. Nearly everything failing is a bug or a misconfiguration "
            "(topics, message schema, model), not bad data: see the dead-letter topic's headers."
        )


class DeadLetters:
    """Produces dead letters, counts them, and watches the ratio (``DeadLetterGuard``).

    The guard does not raise in the middle of a batch: ``tripped`` keeps its error, so the loop finishes
    the batch — dead letters produced, offsets committed — and a restart moves past them instead of
    dead-lettering them again. A dead letter published before a restart (``published_before``, from the
    journal) is not produced again when the replay reaches its message.
    """

    def __init__(self, producer: Producer, settings: Settings, metrics: Metrics):
        self.producer, self.metrics = producer, metrics
        self.topic, self.max_bytes = settings.dead_letter_topic, settings.max_message_bytes
        self.guard = DeadLetterGuard(
            settings.dead_letter_max_ratio, settings.dead_letter_window, settings.dead_letter_max_consecutive
        )
        self.tripped: DeadLetterLimitExceeded | None = None
        #: Dead letters published before the restart (topic, partition, offset).
        self.published_before: set[tuple[str, int, int]] = set()

    def send(self, message: Message, rejection: Rejection, *, replaying: bool) -> tuple[str, int, int] | None:
        """Dead-letter ``message``; return its source position, ``None`` when it was published before."""
        source = (message.topic, message.partition, message.offset)
        if replaying and source in self.published_before:
            self.published_before.discard(source)
            return None
        self.producer.produce(*dead_letter_record(message, rejection, self.topic, self.max_bytes))
        self.metrics.dead_letter(rejection.reason.value)
        log.debug("dead-lettered", extra={"reason": rejection.reason.value, "topic": message.topic})
        self._record(True, rejection.reason.value)
        return source

    def accepted(self, count: int = 1) -> None:
        """``count`` messages in a row were used: the guard's ratio goes down."""
        try:
            self.guard.accept(count)
        except DeadLetterLimitExceeded as error:
            self.tripped = self.tripped or error

    def _record(self, rejected: bool, reason: str = "") -> None:
        try:
            self.guard.record(rejected, reason)
        except DeadLetterLimitExceeded as error:
            self.tripped = self.tripped or error
