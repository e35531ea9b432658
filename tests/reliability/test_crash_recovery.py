"""Crash recovery: ``activestream run`` SIGKILLed at random moments while events stream in and a
simulated annotator answers; nothing lost, nothing learned twice, every ask remembered.

The kill moments come from a seeded RNG (``SEED``), so a failing run can be replayed; the same harness
runs longer in ``benchmarks/soak.py --kills N``.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
from reliability_tools import (
    Annotator,
    EventStreamer,
    ServiceProcess,
    committed,
    ensure_topics,
    event_id,
    features_for,
    service_options,
    service_topics,
    truth_for,
    verify,
    wait_for,
)

from activestream.checkpoint import load_checkpoint
from activestream.config import Settings
from activestream.messages import REASON_HEADER, Event, Label, LabelRequest, to_json
from activestream.service import Service
from activestream.transport.base import TopicPartition
from activestream.transport.errors import DeliveryError
from activestream.transport.memory import MemoryBroker

T0 = 1_700_000_000_000

SEED = 20261121
KILLS = 10


def settle(
    service: ServiceProcess, options: dict, annotator: Annotator, events: int, timeout_s: float
) -> None:
    """Wait until the service decided every event and learned every label posted, and the annotator has
    answered every request (twice in a row, a second apart: replays can add requests late)."""
    bootstrap = options["bootstrap_servers"]
    events_tp = TopicPartition(options["events_topic"], 0)
    labels_tp = TopicPartition(options["labels_topic"], 0)
    quiet = []

    def done() -> bool:
        service.check_alive()
        offsets = committed(bootstrap, options["group_id"])
        ok = (
            offsets.get(events_tp) == events
            and annotator.caught_up
            and annotator.waiting == 0
            and offsets.get(labels_tp, 0) == len(annotator.stats.posted)
        )
        quiet.append(ok)
        return len(quiet) >= 2 and quiet[-1] and quiet[-2]

    try:
        wait_for(done, timeout_s, "the service caught up with every event and label", interval_s=1.0)
    except AssertionError as error:
        offsets = committed(bootstrap, options["group_id"])
        raise AssertionError(
            f"{error}: committed {offsets}, {events} events, {len(annotator.stats.posted)} labels posted, "
            f"{annotator.stats.requests_seen} requests seen (caught up: {annotator.caught_up}), "
            f"{annotator.waiting} labels waiting"
        ) from None


@pytest.mark.broker
def test_random_sigkills_lose_no_label_and_learn_none_twice(broker, unique_name, tmp_path):
    rng = random.Random(SEED)
    bootstrap = broker.bootstrap_servers
    options = service_options(bootstrap, unique_name, tmp_path / "state.ckpt", budget=0.2)
    ensure_topics(bootstrap, service_topics(options))
    streamer = EventStreamer(bootstrap, options["events_topic"], rate_per_s=150, seed=SEED)
    annotator = Annotator(bootstrap, options["requests_topic"], options["labels_topic"], seed=SEED)
    service = ServiceProcess(options, tmp_path / "service.log")
    streamer.start()
    annotator.start()
    kills = []
    try:
        for _ in range(KILLS):
            service.start()
            # A third of the kills hit the start-up (restore, journal recovery, group join), the others a
            # service at work (replaying, checkpointing, committing).
            early = rng.random() < 1 / 3
            if not early:
                service.wait_assigned()
            delay = rng.uniform(0.1, 3.0)
            time.sleep(delay)
            service.kill()
            kills.append(("start+" if early else "assigned+") + f"{delay:.2f}s")
        service.start()
        service.wait_assigned()
        events = streamer.stop()
        settle(service, options, annotator, events, timeout_s=90)
        stats = annotator.stop()
        assert service.terminate() == 0, service.tail()
    finally:
        service.ensure_stopped()
        streamer.stop_event.set()
        annotator.stop_event.set()
    assert stats.bad_ids == []
    verdict = verify(bootstrap, options, stats.posted, events)
    print(f"kills: {kills}; verdict: {verdict.as_dict()}")
    assert len(kills) == KILLS
    assert verdict.labels_posted > 100 and verdict.events > 1000
    assert verdict.problems == [], verdict.as_dict()
    assert load_checkpoint(options["checkpoint_path"]).model_version == len(stats.posted)


# -- the same on the in-memory transport: deterministic, no broker ----------------------------------------


class MemoryRun:
    """A service on ``MemoryBroker`` with a model-dependent strategy (which events are asked depends on
    the model: logreg with entropy / randomized variable uncertainty, or margin / split's uncertainty
    part), an annotator answering every new request by request id, and crashes that lose everything not
    flushed and checkpointed."""

    def __init__(self, tmp_path, seed: int, **overrides):
        self.broker = MemoryBroker()
        self.now = T0
        self.settings = Settings(
            checkpoint_path=tmp_path / "state.ckpt",
            checkpoint_interval_seconds=10,
            max_poll_records=7,
            budget=0.2,
            label_ttl_seconds=3600,
            **overrides,
        )
        self.seed = seed
        self.sent = 0
        self.answered: dict[str, str] = {}
        self.producer = self.broker.producer()
        self.service = self.new_service()

    def new_service(self) -> Service:
        s = self.settings
        return Service(
            s,
            self.broker.consumer(s.group_id),
            self.broker.producer(),
            self.broker.admin(),
            clock_ms=lambda: self.now,
        )

    def drain(self) -> None:
        self.service.start()
        while self.service.run_once():
            pass

    def events(self, n: int) -> None:
        for _ in range(n):
            i = self.sent
            event = Event(id=event_id(i), features=features_for(i, self.seed))
            self.producer.produce(self.settings.events_topic, to_json(event), key=event.id.encode())
            self.sent += 1
        self.producer.flush(1.0)
        self.drain()

    def answer(self) -> None:
        for message in self.broker.messages(self.settings.requests_topic):
            request = LabelRequest.model_validate_json(message.value)
            if request.request_id in self.answered:
                continue
            self.answered[request.request_id] = request.event_id
            y = truth_for(features_for(int(request.event_id[1:]), self.seed))
            label = Label(request_id=request.request_id, event_id=request.event_id, label=y)
            self.producer.produce(self.settings.labels_topic, to_json(label), key=request.event_id.encode())
        self.producer.flush(1.0)
        self.drain()

    def crash(self) -> None:
        """Die mid-batch: the batch's records are never delivered, nothing is checkpointed or committed."""
        self.service.producer.fail_flush = True
        self.producer.produce(self.settings.events_topic, b"not json")
        self.producer.flush(1.0)
        with pytest.raises(DeliveryError):
            self.service.run()
        self.service = self.new_service()

    def dead_letters(self) -> Counter:
        return Counter(
            dict(m.headers)[REASON_HEADER].decode()
            for m in self.broker.messages(self.settings.dead_letter_topic)
        )


@pytest.mark.parametrize(
    "strategy", [("entropy", "randomized_variable_uncertainty"), ("margin", "split")], ids="/".join
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_replay_with_a_model_dependent_policy_forgets_no_ask(tmp_path, seed, strategy):
    """After a crash the replay re-decides the events since the checkpoint with a model that learned the
    labels in another order (labels for those events are held back until they are replayed), so some asks
    come out as discards. The requests were published before the crash, though, and annotators answer
    them: none of those labels may be lost."""
    run = MemoryRun(tmp_path, seed, measure=strategy[0], policy=strategy[1], model="logreg")
    run.events(300)
    run.answer()
    run.now += 10_000
    run.events(1)  # checkpoint
    for _ in range(20):  # asks and labels interleaved, after the checkpoint
        run.events(20)
        run.answer()
    run.crash()
    run.drain()  # the replay
    run.answer()
    run.now += 10_000
    run.events(1)
    run.answer()
    state = run.service
    assert run.dead_letters() == Counter({"undecodable": 1}), "labels of asks the replay forgot"
    assert state.model_version == len(run.answered)
    asked = {
        LabelRequest.model_validate_json(m.value).event_id
        for m in run.broker.messages(run.settings.requests_topic)
    }
    assert all(state.pending.knows_event(e) for e in asked)
