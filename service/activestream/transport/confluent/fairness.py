"""Fairness across partitions: no partition's records wait behind the whole prefetched backlog of the
others (``FairShare``; the consumer applies its answers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from activestream.transport.base import TopicPartition

__all__ = ["FAIR_SHARE", "QUEUED_MAX_KBYTES", "FairShare"]

#: librdkafka's prefetch queue bound (its default, 65536, holds hundreds of thousands of small events).
QUEUED_MAX_KBYTES: Final = 1024
#: A partition with unread records waits behind at most about this many messages of the others. A pause
#: costs the loop a fetch round trip and the broker's hold of the fetch in flight (28-36 ms a pause,
#: measured on the embedded broker with 100 labels/s during a backlog of events): 10,000 messages, 125 ms
#: of events at 80,000/s, keep that to a sixth of the loop's time where 2,000 cost it a third of its rate.
FAIR_SHARE: Final = 10_000
#: A pause ends after this long even if the starved partition delivered nothing (its high watermark
#: counted records it never delivers: transaction markers, compacted offsets).
_PAUSE_LIMIT_S: Final = 2.0


class FairShare:
    """Which partitions to pause so that no partition's records wait behind more than ``share`` messages
    of the others (pure bookkeeping; the consumer applies its answers with ``pause``/``resume``).

    librdkafka prefetches every partition into one FIFO queue (up to ``queued.max.messages.kbytes``), so a
    label produced during a backlog of events is served after everything fetched before it. A partition
    whose high watermark (as the last fetch saw it) is past the end of what it delivered has unread
    records; when ``share`` messages of other partitions were delivered meanwhile, it is *starved*: the
    others are paused (librdkafka drops their queued records and fetches them again, from the position
    after the last one delivered, on resume) until each starved partition delivered something.

    >>> fair = FairShare(share=1000)
    >>> events, labels = TopicPartition("events", 0), TopicPartition("labels", 0)
    >>> fair.observe({events: 500}, 500, {events: 90_000, labels: 0}, now=0.0)  # labels: nothing unread
    (set(), set())
    >>> fair.observe({events: 1000}, 500, {events: 90_000, labels: 3}, now=0.1)  # 3 labels behind
    (set(), set())
    >>> fair.observe({events: 1500}, 500, {events: 90_000, labels: 3}, now=0.2)
    (set(), set())
    >>> fair.observe({events: 2000}, 500, {events: 90_000, labels: 3}, now=0.3)  # waited 1500 > 1000
    ({TopicPartition(topic='events', partition=0)}, set())
    >>> fair.observe({labels: 3}, 3, {events: 90_000, labels: 3}, now=0.4)  # served: resume the others
    (set(), {TopicPartition(topic='events', partition=0)})
    """

    def __init__(self, share: int = FAIR_SHARE, pause_limit_s: float = _PAUSE_LIMIT_S) -> None:
        if share < 1:
            raise ValueError("share must be >= 1")
        self.share, self.pause_limit_s = share, pause_limit_s
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new assignment)."""
        #: Per partition: the offset after the last record delivered (or sought), else the first high
        #: watermark seen (records there at the assignment are fetched with the others, in fetch order).
        self.next: dict[TopicPartition, int] = {}
        #: Messages of other partitions delivered while this one had unread records.
        self.waited: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()
        self.starved: set[TopicPartition] = set()
        self.until = 0.0

    def sought(self, tp: TopicPartition, offset: int) -> None:
        """The owner moved ``tp``'s position: records from ``offset`` on are unread."""
        self.next[tp], self.waited[tp] = offset, 0

    def observe(
        self, ends: Mapping[TopicPartition, int], count: int, highs: Mapping[TopicPartition, int], now: float
    ) -> tuple[set[TopicPartition], set[TopicPartition]]:
        """One poll delivered ``count`` messages, ending at ``ends`` (the offset after each partition's
        last one); ``highs`` are the assigned partitions' high watermarks (negative: unknown yet).
        Returns the partitions to pause and the ones to resume."""
        for tp, high in highs.items():
            if tp in ends:
                self.next[tp], self.waited[tp] = ends[tp], 0
            elif tp not in self.next:
                if high >= 0:
                    self.next[tp], self.waited[tp] = high, 0
            elif high > self.next[tp] and tp not in self.paused:
                self.waited[tp] = self.waited.get(tp, 0) + count
            else:
                self.waited[tp] = 0
        if self.paused:
            self.starved -= ends.keys()
            if self.starved and now < self.until:
                return set(), set()
            for tp in self.starved:  # nothing came within the limit: nothing to deliver up to there
                self.next[tp] = max(self.next[tp], highs.get(tp, -1))
            resumed, self.paused, self.starved = self.paused, set(), set()
            self.waited.update(dict.fromkeys(resumed, 0))
            return set(), resumed & highs.keys()
        starved = {tp for tp, waited in self.waited.items() if waited > self.share and tp in highs}
        if not starved:
            return set(), set()
        self.starved, self.paused = starved, set(highs) - starved
        self.until = now + self.pause_limit_s
        return set(self.paused), set()
