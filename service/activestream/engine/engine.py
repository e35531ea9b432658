"""The engine: everything activestream decides and learns, with no Kafka, no files and no clocks.

The loop hands it consumed messages (anything with ``value`` and ``headers``) and the time; it answers
each message with ``None`` (handled) or a ``Rejection`` (to dead-letter), and fills an outbox with the
records to produce and the step to journal (:mod:`activestream.engine.step`). Its state is what a
checkpoint saves. Given the same state and the same inputs it reaches the same state and emits the same
records: time comes in as ``now_ms``, and every random draw comes from generators seeded by the
configuration and consumed in input order.

>>> from activestream.config import Settings
>>> from activestream.transport.base import Message
>>> engine = Engine(Settings(budget=0.5, seed=1))
>>> events = [Message("events", 0, i, b'{"id": "e%d", "features": {"x": %d}}' % (i, i)) for i in range(4)]
>>> engine.on_events(events, now_ms=0)
[None, None, None, None]
>>> step = engine.take_step()
>>> len(step.asks) + len(step.discards)
4
>>> label = Message("labels", 0, 0, b'{"event_id": "%s", "label": true}' % step.asks[0].event_id.encode())
>>> engine.on_label(label, now_ms=10), engine.model_version
(None, 1)
>>> engine.on_label(Message("labels", 0, 1, b'{"event_id": "nope", "label": true}'), now_ms=10).reason.value
'unknown_request'
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from activestream.aggregate import OTHER
from activestream.assembly import drift_watch_for, learner_from_settings
from activestream.checkpoint import CheckpointState
from activestream.config import Settings
from activestream.engine.deciding import Decider
from activestream.engine.learning import Trainer, _Defer
from activestream.engine.state import (
    EngineState,
    applied_memory,
    group_requests,
    pending_store,
    place_ballots,
)
from activestream.engine.step import Incoming, Outbox, Record, Step
from activestream.engine.training_log import Source, parse_example
from activestream.feature_bounds import CategoryBounds
from activestream.learner import ActiveLearner
from activestream.messages import Rejection, RejectReason
from activestream.metrics import MAX_ANNOTATOR_SERIES, Metrics
from activestream.stopping import CRITERIA, StoppingMonitor
from activestream.transport.base import TopicPartition

__all__ = ["Engine", "replica_name"]

log = logging.getLogger(__name__)

#: Checkpoint counters the engine keeps (a checkpoint from before a counter existed reads 0).
_ACCURACY_COUNTERS: Final = (
    "prequential_correct",
    "prequential_judged",
    "prequential_ipw_correct",
    "prequential_ipw_weight",
    "prequential_ipw_judged",
)


def replica_name(settings: Settings) -> str:
    """Who this replica is in the training log: its static group member id, else host and checkpoint.

    >>> replica_name(Settings(group_instance_id="activestream-0"))
    'activestream-0'
    """
    if settings.group_instance_id:
        return settings.group_instance_id
    return f"{socket.gethostname()}:{settings.checkpoint_path.absolute()}"


class Engine:
    """Decides events and learns labels; see the module docstring.

    Parameters
    ----------
    settings
        The configuration (learner, budget, limits, topics of the records it emits).
    learner
        The learner to start with (default: built from ``settings``); a restore replaces it.
    metrics
        Where counters and gauges go (default: a fresh registry). The prequential accuracy's counts
        live there and are saved with the state.
    timer
        A monotonic seconds counter, for the decide-duration histogram only.
    replica
        This replica's name in the training log's label records (default: ``replica_name(settings)``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        learner: ActiveLearner | None = None,
        metrics: Metrics | None = None,
        timer: Callable[[], float] = time.perf_counter,
        replica: str | None = None,
    ):
        self.settings = settings
        self.metrics = metrics or Metrics(dead_letter_reasons=[r.value for r in RejectReason])
        learner = learner or learner_from_settings(settings)
        pending = pending_store(settings)
        self.state = EngineState(learner, drift_watch_for(learner, settings), pending, self._stopping())
        self.state.categories = CategoryBounds(settings.max_categories, settings.max_features)
        self.state.applied = applied_memory(settings)
        self.state.group = group_requests(settings)
        place_ballots(self.state, settings)
        self.outbox = Outbox()
        self.trainer = Trainer(settings, self.state, self.outbox, self.metrics, self._drifted)
        self.trainer.replica = replica if replica is not None else replica_name(settings)
        self.decider = Decider(
            settings, self.state, self.outbox, self.metrics, timer, self.trainer.on_evicted
        )
        #: Drifts detected since the loop last looked (it may resume paused requests).
        self.drifts = 0

    def _stopping(self) -> StoppingMonitor:
        s = self.settings
        return StoppingMonitor(
            plateau_window=s.stopping_window,
            plateau_epsilon=s.stopping_epsilon,
            max_labels=s.max_labels or None,
            pause_on_signal=s.stop_on_plateau,
            seed=s.seed,
            # With a training log the sample is drawn from the group's requests (about B of the events),
            # all of them candidates, instead of a share of the replica's own events.
            **({"stability_sample": 1.0} if s.training_topic else {}),
        )

    # -- the state, for the loop, the HTTP API and tests -------------------------------------------------
    @property
    def learner(self) -> ActiveLearner:
        return self.state.learner

    @property
    def model_version(self) -> int:
        return self.state.model_version

    # -- inputs ----------------------------------------------------------------------------------------
    def on_events(self, messages: Sequence[Incoming], now_ms: int) -> list[Rejection | None]:
        """Decide each event, in order; each message's result is ``None`` or its ``Rejection``.

        Runs of events are parsed and scored together (``batch_scoring``) except with labels aggregated
        over several annotators: there an ask that evicts from a full pending store may learn that
        entry's votes, so the model could change inside a run.
        """
        batched = self.settings.batch_scoring == "auto" and self.state.ballots is None
        return self.decider.on_events(messages, now_ms, batched=batched)

    def on_label(
        self, message: Incoming, now_ms: int, *, may_defer: bool = False
    ) -> Rejection | _Defer | None:
        """Learn a label (or its vote); ``DEFER`` for an unknown request when ``may_defer`` (a replay)."""
        return self.trainer.on_label(message, now_ms, may_defer=may_defer)

    @property
    def training_partition(self) -> TopicPartition | None:
        """The training log's partition (``None`` without one)."""
        topic = self.settings.training_topic
        return TopicPartition(topic, 0) if topic else None

    def on_training(self, message: Incoming, offset: int, now_ms: int) -> Rejection | None:
        """Take a training-log record (at ``offset`` of the log): learn an example once, open a request,
        join a label; its ``Rejection`` if it is not one (or the model cannot learn it: every replica then
        skips it alike). Labels this replica appended that joined nothing go to ``rejected_labels``."""
        self.state.training_offset = offset + 1
        example = parse_example(message.value)
        if isinstance(example, Rejection):
            self.metrics.training_example("invalid")
            return example
        return self.trainer.apply(example, now_ms)

    def rejected_labels(self) -> list[tuple[Source, Rejection]]:
        """Take the label records this replica appended that joined no request (to dead-letter)."""
        rejected, self.trainer.rejected = self.trainer.rejected, []
        return rejected

    def tick(self, now_ms: int) -> None:
        """Time passes: requests expire, ballots time out, a batch window may close."""
        self.trainer.expire(now_ms)

    def close_window(self, now_ms: int) -> list[Incoming]:
        """Batch mode: close a window whose span passed; return the held messages decided since last asked."""
        self.decider.tick(now_ms)
        released, self.decider.released = self.decider.released, []
        return released

    def held(self) -> Iterable[Incoming]:
        """The messages of events held in a batch window (not decided yet: not to be committed)."""
        return (message for message, _, _ in self.decider.held.values())

    def forget(self, gone: Callable[[Incoming], bool]) -> None:
        """Drop held events whose messages were revoked (they will be read again)."""
        self.decider.forget(gone)

    def resume_label_requests(self) -> None:
        """Resume label requests paused by the stopping criteria."""
        self.state.stopping.resume()

    def _drifted(self, now_ms: int) -> None:
        arms = self.state.watch.status()
        assert arms is not None  # only the adaptation arms detect drifts
        self.metrics.drift(arms.detector, now_ms / 1000)
        log.info("drift detected", extra={"detector": arms.detector, "model_version": self.model_version})
        self.drifts += 1
        if self.settings.resume_on_drift:
            self.resume_label_requests()

    def report(self) -> None:
        """Set the gauges that follow the state: pending requests, the policy, the arms, the stopping
        criteria, the annotators' agreement (once a batch: they are read, not counted)."""
        metrics, state, decider = self.metrics, self.state, self.decider
        metrics.pending(len(state.pending))
        if self.training_partition is not None:
            metrics.training_log_position(state.training_offset)
        metrics.policy_state(decider.threshold, state.learner.threshold_policy.budget, decider.spending)
        arms = state.watch.status()
        if arms is not None:
            accuracy = {"active": arms.accuracy_active, "passive": arms.accuracy_passive}
            metrics.arms(accuracy, arms.serving, arms.labels_since_drift, arms.champion_switches)
        metrics.stopping(state.stopping.signals, state.stopping.paused)
        ballots = state.ballots if state.group is None else state.group.ballots
        if ballots is not None:
            history = ballots.history
            top = history.top(MAX_ANNOTATOR_SERIES)
            self.trainer.top_annotators = frozenset(top)
            ratios = {name: history.raw_agreement(name) for name in top}
            metrics.annotator_agreement({**ratios, OTHER: history.others_agreement(MAX_ANNOTATOR_SERIES)})

    # -- steps, replays ---------------------------------------------------------------------------------
    def take_step(self) -> Step:
        """What the engine decided, learned and emitted since the last call (to journal, then produce)."""
        return self.outbox.take()

    def recover(self, steps: Iterable[Step]) -> list[Record]:
        """Take back the steps journaled after the checkpoint; return the records to publish again.

        Their asks return to the pending store (a label may come before the replay reaches its event);
        every journaled decision is made again, not re-decided, when its event is replayed; labels
        learned are learned again but not counted again. Only unpublished steps' records come back.
        """
        state, republish = self.state, []
        for step in steps:
            for entry in step.asks:
                self.decider.replay[entry.event_id] = entry
                if not state.pending.knows_event(entry.event_id):
                    evicted = state.pending.add_entry(entry)
                    self.trainer.on_evicted(evicted, entry.asked_at_ms)
                    state.stopping.on_ask()
            self.decider.replay.update(dict.fromkeys(step.discards))
            self.trainer.learned_before.update(step.learned)
            if not step.published:
                republish.extend(step.records)
        if self.decider.replay:
            log.info("decisions recovered from the journal", extra={"decisions": len(self.decider.replay)})
        return republish

    def carried(self) -> Step:
        """What a new checkpoint must still carry of the journal: decisions whose events were not
        replayed yet, labels learned before the restart not learned again yet (published, since a
        checkpoint is taken only with every record flushed)."""
        replay = self.decider.replay
        asks = tuple(entry for entry in replay.values() if entry is not None)
        discards = tuple(event_id for event_id, entry in replay.items() if entry is None)
        return Step(asks, discards, tuple(self.trainer.learned_before), published=True)

    def end_replay(self) -> None:
        """Every partition caught up with where it was: what was not replayed will not be (moved away)."""
        self.decider.replay.clear()
        self.trainer.learned_before.clear()

    # -- checkpoints ------------------------------------------------------------------------------------
    def snapshot(self, offsets: dict, now_ms: int, counters: dict[str, float]) -> CheckpointState:
        """The state to checkpoint, covering ``offsets``; ``counters`` are the loop's own."""
        metrics, stopping = self.metrics, self.state.stopping
        paused_by = stopping.paused_by
        values = (*metrics.accuracy_counts, *metrics.weighted_accuracy_counts)
        log_partition = self.training_partition
        if log_partition is not None:  # where the model stands in the training log
            offsets = {**offsets, log_partition: self.state.training_offset}
        return CheckpointState(
            learner=self.state.learner,
            pending=self.state.pending,
            drift_signal=self.state.watch.label_free,
            offsets=offsets,
            model_version=self.state.model_version,
            counters={
                **dict(zip(_ACCURACY_COUNTERS, values, strict=True)),
                "stopping_asked": stopping.asked,
                "stopping_paused_by": CRITERIA.index(paused_by) + 1 if paused_by in CRITERIA else 0,
                **counters,
            },
            created_at_ms=now_ms,
            categories=self.state.categories,
            applied=self.state.applied,
            group=self.state.group,
            log_clock_ms=self.state.log_clock_ms,
        )

    def group_state(self, now_ms: int) -> CheckpointState:
        """What every replica holds alike at the training log's position, for a new replica to start from
        (:mod:`activestream.snapshots`): the model, the log's memory and clock, the group's requests, the
        accuracy counts. Left out: this replica's own requests, label-free signal and stopping pause."""
        state = self.snapshot({}, now_ms, {})
        shared = (*_ACCURACY_COUNTERS, "stopping_asked")
        counters = {name: value for name, value in state.counters.items() if name in shared}
        pending = pending_store(self.settings)
        return dataclasses.replace(state, pending=pending, drift_signal=None, counters=counters)

    def restore(self, checkpoint: CheckpointState) -> None:
        """Continue from a checkpoint's state."""
        state, s = self.state, self.settings
        state.learner, state.pending = checkpoint.learner, checkpoint.pending
        state.model_version = checkpoint.model_version
        state.watch = drift_watch_for(state.learner, s, checkpoint.drift_signal)
        counters = checkpoint.counters
        correct, judged, ipw_correct, ipw_weight, ipw_judged = (
            counters.get(c, 0) for c in _ACCURACY_COUNTERS
        )
        self.metrics.restore_accuracy(
            int(correct), int(judged), float(ipw_correct), float(ipw_weight), int(ipw_judged)
        )
        state.stopping.asked = counters.get("stopping_asked", 0)
        paused_by = counters.get("stopping_paused_by", 0)
        if paused_by and s.stop_on_plateau:
            state.stopping.paused_by = CRITERIA[paused_by - 1]
        log_partition = self.training_partition
        state.applied = getattr(checkpoint, "applied", None) or applied_memory(s)
        state.training_offset = checkpoint.offsets.get(log_partition, 0) if log_partition else 0
        state.group = getattr(checkpoint, "group", None) or group_requests(s)
        place_ballots(state, s)
        state.log_clock_ms = getattr(checkpoint, "log_clock_ms", 0)
        # A checkpoint from before the bounds existed: they start afresh (the model may hold more).
        categories = getattr(checkpoint, "categories", None) or CategoryBounds(
            s.max_categories, s.max_features
        )
        categories.max_categories, categories.max_string_features = s.max_categories, s.max_features
        state.categories = categories
        configured = f"{s.measure}/{s.policy}"
        if state.learner.strategy != configured:
            log.warning(
                "the checkpoint's strategy differs from the configuration; the checkpoint's is used",
                extra={"checkpoint": state.learner.strategy, "configured": configured},
            )
