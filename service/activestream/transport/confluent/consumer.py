"""The consumer-group member on librdkafka (``ConfluentConsumerAdapter``; its behaviour is described in
:mod:`activestream.transport.confluent`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import confluent_kafka as ck
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import TopicPartition as CkTopicPartition

from activestream.transport.base import Consumer, Message, RebalanceCallback, TopicPartition
from activestream.transport.confluent.client import client_config, consume, log, reach_broker
from activestream.transport.confluent.errors import error_of, translate, translate_error, translating
from activestream.transport.confluent.fairness import QUEUED_MAX_KBYTES, FairShare
from activestream.transport.confluent.records import OFFSET_INVALID, ck_partition, our_messages, our_partition
from activestream.transport.errors import BrokerUnavailable, TransportError
from activestream.transport.options import (
    CONSUMER_OPTIONAL_SETTINGS,
    CONSUMER_SETTINGS,
    DEFAULT_CLIENT_ID,
    FromSettings,
    checked_topics,
    rebalance_callbacks,
)

__all__ = ["ConfluentConsumerAdapter"]


class ConfluentConsumerAdapter(FromSettings, Consumer):
    """A consumer-group member on librdkafka (see the module docstring for the behaviour)."""

    SETTINGS = CONSUMER_SETTINGS
    OPTIONAL_SETTINGS = CONSUMER_OPTIONAL_SETTINGS

    def __init__(
        self,
        *,
        bootstrap_servers: str | Sequence[str],
        group_id: str,
        group_instance_id: str | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        session_timeout_ms: int = 45_000,
        heartbeat_interval_ms: int = 3_000,
        max_poll_records: int = 500,
        max_poll_interval_ms: int = 300_000,
        fetch_max_wait_ms: int = 500,
        lag_timeout_ms: int = 2_000,
        request_timeout_ms: int = 30_000,
        bootstrap_timeout_ms: int = 30_000,
        security: Mapping[str, Any] | None = None,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not group_id:
            raise ValueError("group_id is required")
        if max_poll_interval_ms < session_timeout_ms:
            # librdkafka refuses it; kafka-python accepts it, and then the poll deadline is what counts.
            log.warning(
                "max_poll_interval_ms %d raised to the session timeout (%d ms), as librdkafka requires",
                max_poll_interval_ms,
                session_timeout_ms,
            )
            max_poll_interval_ms = session_timeout_ms
        del max_poll_records  # accepted as transport.kafka does; poll()'s max_records decides here
        self._request_timeout_s = request_timeout_ms / 1000
        # Lag is a metric: measuring it must never hold the loop for a whole request timeout.
        self._lag_timeout_s = lag_timeout_ms / 1000
        config = client_config(
            bootstrap_servers,
            client_id,
            security,
            kafka_options,
            **{
                "group.id": group_id,
                **({"group.instance.id": group_instance_id} if group_instance_id else {}),
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",
                "session.timeout.ms": session_timeout_ms,
                "heartbeat.interval.ms": heartbeat_interval_ms,
                "max.poll.interval.ms": max_poll_interval_ms,
                "fetch.wait.max.ms": fetch_max_wait_ms,
                "socket.timeout.ms": request_timeout_ms,
                # A few fetches' worth of prefetch instead of 64 MB, refilled without librdkafka's 1 s
                # back-off: what FairShare drops on a pause stays small, and a starved partition's new
                # records are fetched (and its high watermark seen) within a few thousand messages.
                "queued.max.messages.kbytes": QUEUED_MAX_KBYTES,
                "max.partition.fetch.bytes": QUEUED_MAX_KBYTES * 1024 // 4,
                "fetch.queue.backoff.ms": 20,
            },
        )
        with translating("creating the Kafka consumer"):
            self._consumer = ck.Consumer(config)
        try:
            reach_broker(self._consumer, bootstrap_timeout_ms, "connecting the Kafka consumer")
        except Exception:
            self._consumer.close()
            raise
        self._callbacks: dict[str, RebalanceCallback | None] = {}
        self._callback_error: BaseException | None = None
        self._pending_error: Exception | None = None
        # The assignment as the adapter handed it to librdkafka (eager: whole sets), so reading it never
        # waits on librdkafka: its assignment() blocks while a rebalance waits for this owner's callback.
        self._assigned: set[TopicPartition] = set()
        # During on_assign: the offsets sought for the partitions being assigned.
        self._sought: dict[TopicPartition, int] | None = None
        # The offsets sought since the assignment: where fetching starts before anything is consumed.
        self._starts: dict[TopicPartition, int] = {}
        # Keeps a partition's new records from waiting behind the whole prefetched backlog of the others.
        self._fair = FairShare()
        self._fair_partitions: dict[TopicPartition, CkTopicPartition] = {}
        self._closed = False

    # The contract ------------------------------------------------------------------------------------

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        topics = checked_topics(topics)
        self._callbacks = rebalance_callbacks(on_assign, on_revoke, on_lost)
        with translating("subscribing"):
            self._consumer.subscribe(
                topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        if not self._callbacks:
            raise RuntimeError("poll() before subscribe()")
        if self._pending_error is not None:  # reported with messages last time: raise it now
            error, self._pending_error = self._pending_error, None
            raise error
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        messages, errors = our_messages(consume(self._consumer, max_records, timeout_s))
        if len(self._fair_partitions) > 1:
            self._balance(messages)
        if self._callback_error is not None:
            error, self._callback_error = self._callback_error, None
            self._rewind(messages)
            raise error
        if errors:
            translated = translate_error(errors[0], "polling")
            if not messages:
                raise translated
            self._pending_error = translated
        return messages

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit exactly ``offsets``, synchronously, each for a partition this member owns
        (``TransportError`` otherwise: the broker would accept it and overwrite the new owner's progress)."""
        if not offsets:
            return
        owned = self.assignment()
        explicit = []
        for tp, offset in offsets.items():
            if not isinstance(offset, int) or offset < 0:
                raise ValueError(f"invalid offset {offset!r} for {tp}")
            if tp not in owned:
                raise TransportError(f"cannot commit {tp}: not assigned to this member (rebalanced?)")
            explicit.append(ck_partition(tp, offset))
        with translating("committing offsets"):
            result = self._consumer.commit(offsets=explicit, asynchronous=False)
        for entry in result or ():
            if entry.error is not None:
                raise translate_error(entry.error, f"committing {our_partition(entry)}")

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Raises ``ValueError`` for a partition not assigned to this member or a negative offset."""
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(f"invalid offset {offset!r} for {tp}")
        if tp not in self._assigned:
            raise ValueError(f"cannot seek {tp}: not assigned to this member")
        if self._sought is not None:
            self._sought[tp] = offset  # inside on_assign: applied when the adapter assigns, right after it
            return
        self._fair.sought(tp, offset)
        self._starts[tp] = offset
        try:
            self._consumer.seek(ck_partition(tp, offset))
        except KafkaException as exc:
            error = error_of(exc)
            if error is None or error.code() != KafkaError._STATE:
                raise translate(exc, f"seeking {tp}") from exc
            # Assigned but not fetching yet: assign it again at the offset (a full assignment: eager).
            with translating(f"seeking {tp}"):
                positions = {
                    our_partition(p): p.offset
                    for p in self._consumer.position([ck_partition(t) for t in self._assigned])
                }
                positions[tp] = offset
                self._consumer.assign([ck_partition(t, o) for t, o in sorted(positions.items())])

    def committed(self, tp: TopicPartition) -> int | None:
        with translating("fetching the committed offset"):
            (entry,) = self._consumer.committed([ck_partition(tp)], timeout=self._request_timeout_s)
        if entry.error is not None:
            raise translate_error(entry.error, f"fetching the committed offset of {tp}")
        return entry.offset if entry.offset >= 0 else None

    def assignment(self) -> set[TopicPartition]:
        """The partitions assigned (inside ``on_assign``: including the ones being assigned)."""
        return set(self._assigned)

    def lag(self) -> dict[TopicPartition, int]:
        """Messages between the position and the end of each assigned partition; no records are fetched.

        The end is the larger of the broker's high watermark and the one of the last fetch response
        (Tansu 0.6 answers ``ListOffsets(latest)`` with the base offset of the last record batch plus one).
        A partition with nothing consumed since its assignment counts from where its fetching starts: the
        offset sought, else the group's committed offset, else the log's start (``auto.offset.reset``
        earliest). All the requests together take at most ``lag_timeout_ms``; past it,
        ``BrokerUnavailable``.
        """
        assigned = [ck_partition(tp) for tp in sorted(self._assigned)]
        if not assigned:
            return {}
        with translating("measuring lag"):
            deadline = time.monotonic() + self._lag_timeout_s
            lag = {}
            for entry in self._consumer.position(assigned):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BrokerUnavailable("measuring lag: timed out")
                low, high = self._consumer.get_watermark_offsets(entry, timeout=remaining, cached=False)
                _, fetched = self._consumer.get_watermark_offsets(entry, cached=True)
                end = max(high, fetched, 0)
                start = entry.offset if entry.offset >= 0 else self._start(entry, low, deadline)
                lag[our_partition(entry)] = max(0, end - start)
        return lag

    def _start(self, entry: CkTopicPartition, low: int, deadline: float) -> int:
        """Where fetching a partition with nothing consumed yet starts (see ``lag``)."""
        sought = self._starts.get(our_partition(entry))
        if sought is not None:
            return sought
        (committed,) = self._consumer.committed([entry], timeout=max(0.001, deadline - time.monotonic()))
        return committed.offset if committed.error is None and committed.offset >= 0 else max(low, 0)

    def member_id(self) -> str | None:
        try:
            return self._consumer.memberid() or None
        except RuntimeError:  # closed
            return None

    def close(self) -> None:
        """Leave the group (``on_revoke`` runs first, so it can still commit) and release the client."""
        if self._closed:
            return
        self._closed = True
        try:
            self._consumer.close()
        except KafkaException as exc:
            log.warning("closing the Kafka consumer: %s", exc)
        except RuntimeError as exc:  # a callback's exception raised by confluent-kafka itself
            if self._callback_error is None:
                self._callback_error = exc
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise error

    # Internals ---------------------------------------------------------------------------------------

    def _balance(self, messages: list[Message]) -> None:
        """Pause the other partitions while one is starved, resume them once it was served (``FairShare``)."""
        last: dict[tuple[str, int], int] = {}
        for m in messages:
            last[m.topic, m.partition] = m.offset
        ends = {TopicPartition(t, p): offset + 1 for (t, p), offset in last.items()}
        highs = {}
        for tp, ck_tp in self._fair_partitions.items():
            try:
                highs[tp] = self._consumer.get_watermark_offsets(ck_tp, cached=True)[1]
            except KafkaException:
                highs[tp] = -1
        pause, resume = self._fair.observe(ends, len(messages), highs, time.monotonic())
        with translating("pausing or resuming partitions for fairness"):
            if pause:
                log.debug("consumer: pausing %s while %s catch up", sorted(pause), sorted(self._fair.starved))
                self._consumer.pause([self._fair_partitions[tp] for tp in sorted(pause)])
            if resume:
                self._consumer.resume([self._fair_partitions[tp] for tp in sorted(resume)])

    def _rewind(self, messages: list[Message]) -> None:
        """Seek each partition back to the first of ``messages``: a raising poll loses nothing."""
        first: dict[TopicPartition, int] = {}
        for m in messages:
            first.setdefault(m.topic_partition, m.offset)
        for tp, offset in first.items():
            with contextlib.suppress(KafkaException, ValueError, TransportError):
                self.seek(tp, offset)

    def _run(self, kind: str, partitions: set[TopicPartition]) -> None:
        """Run the owner's callback; keep its exception for ``poll()`` (raising it inside librdkafka's
        callback would make confluent-kafka drop the messages of that ``consume``)."""
        callback = self._callbacks.get(kind)
        if callback is None or (not partitions and kind != "assign"):
            return
        try:
            callback(partitions)
        except BaseException as exc:
            if self._callback_error is None:
                self._callback_error = exc

    def _on_assign(self, consumer: Any, partitions: list[CkTopicPartition]) -> None:
        tps = {our_partition(tp) for tp in partitions}
        self._assigned, self._sought = set(tps), {}
        self._fair.reset()
        self._fair_partitions = {tp: ck_partition(tp) for tp in sorted(tps)}
        try:
            self._run("assign", tps)
        finally:
            sought, self._sought = self._sought or {}, None
            self._starts = dict(sought)
            for tp, offset in sought.items():
                self._fair.sought(tp, offset)
            try:
                consumer.assign([ck_partition(tp, sought.get(tp, OFFSET_INVALID)) for tp in sorted(tps)])
            except KafkaException as exc:
                if self._callback_error is None:
                    self._callback_error = translate(exc, "assigning partitions")

    def _on_revoke(self, consumer: Any, partitions: list[CkTopicPartition]) -> None:
        self._revoked("revoke", consumer, partitions)

    def _on_lost(self, consumer: Any, partitions: list[CkTopicPartition]) -> None:
        self._revoked("lost", consumer, partitions)

    def _revoked(self, kind: str, consumer: Any, partitions: list[CkTopicPartition]) -> None:
        try:
            self._run(kind, {our_partition(tp) for tp in partitions})
        finally:
            self._assigned, self._fair_partitions = set(), {}
            paused = self._fair.paused
            self._fair.reset()
            with contextlib.suppress(KafkaException):
                if paused:  # librdkafka keeps a partition's pause across assignments
                    consumer.resume([ck_partition(tp) for tp in sorted(paused)])
                consumer.unassign()
