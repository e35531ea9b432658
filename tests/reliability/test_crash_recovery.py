"""Crash recovery: ``activestream run`` SIGKILLed at random moments while events stream in and a
simulated annotator answers; nothing lost, nothing learned twice, every ask remembered, no decision
changed by a replay — with one events partition and with four (events spread by key, labels keyed by
event id on a labels topic with as many partitions).

The kill moments come from a seeded RNG (``SEED``), so a failing run can be replayed; the same harness
runs longer in ``benchmarks/soak.py --kills N``.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import pytest
from reliability_tools import (
    Annotator,
    EventStreamer,
    ServiceProcess,
    committed,
    committed_total,
    ensure_service_topics,
    event_id,
    features_for,
    labels_on_log,
    read_partitions,
    sample,
    service_options,
    truth_for,
    verify,
    wait_for,
)

from activestream.checkpoint import load_checkpoint
from activestream.config import Settings
from activestream.messages import REASON_HEADER, Event, Label, LabelRequest, to_json
from activestream.service import Service
from activestream.transport.errors import DeliveryError
from activestream.transport.memory import MemoryBroker

T0 = 1_700_000_000_000
TRAINING_OFFSET = "activestream_training_log_offset"

SEED = 20261121
KILLS = 10


def log_end(options: dict) -> int:
    """The end offset of the training log (one partition)."""
    return read_partitions(options["bootstrap_servers"], options["training_topic"])[1].get(0, 0)


def settle(
    service: ServiceProcess, options: dict, annotator: Annotator, events: int, timeout_s: float
) -> None:
    """Wait until the service decided every event and learned every label posted, and the annotator has
    answered every request (twice in a row, a second apart: replays can add requests late). With a
    training topic, learned means read back from the log to its end."""
    bootstrap = options["bootstrap_servers"]
    quiet = []
    port = service.http_port() if options.get("training_topic") else None

    def done() -> bool:
        service.check_alive()
        offsets = committed(bootstrap, options["group_id"])
        ok = (
            committed_total(offsets, options["events_topic"]) == events
            and annotator.caught_up
            and annotator.waiting == 0
            and committed_total(offsets, options["labels_topic"]) == len(annotator.stats.posted)
            and (port is None or sample(port, TRAINING_OFFSET) >= log_end(options))
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
@pytest.mark.parametrize(
    ("partitions", "training"), [(1, False), (4, False), (4, True)], ids=["1", "4", "4-training-log"]
)
def test_random_sigkills_lose_no_label_and_learn_none_twice(
    broker, unique_name, tmp_path, partitions, training
):
    rng = random.Random(SEED)
    bootstrap = broker.bootstrap_servers
    log = {"training_topic": unique_name("training")} if training else {}
    options = service_options(bootstrap, unique_name, tmp_path / "state.ckpt", budget=0.2, **log)
    ensure_service_topics(bootstrap, options, partitions)
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
    print(f"{partitions} partition(s); kills: {kills}; verdict: {verdict.as_dict()}")
    assert len(kills) == KILLS
    assert verdict.labels_posted > 100 and verdict.events > 1000
    # The stream went over every partition (events keyed by id), and so did the labels (keyed alike).
    for topic in (options["events_topic"], options["labels_topic"]):
        ends = read_partitions(bootstrap, topic)[1]
        assert len(ends) == partitions and all(ends.values()), (topic, ends)
    assert verdict.problems == [], verdict.as_dict()
    assert load_checkpoint(options["checkpoint_path"]).model_version == len(stats.posted)
    if training:  # each label appended once, though a kill may come between its append and a checkpoint
        appended = labels_on_log(bootstrap, options["training_topic"])
        assert sorted(set(appended)) == sorted(stats.posted), "a posted label is not in the training log"
        print(f"training log: {len(appended)} records, {len(appended) - len(set(appended))} appended twice")
    # Decided once: the budget holds through the kills (the policy's window paces ~1/(2w) above B).
    assert abs(verdict.spend - 0.2) <= 0.005, verdict.as_dict()


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
    run = MemoryRun(
        tmp_path, seed, measure=strategy[0], policy=strategy[1], model="logreg", decisions_topic="decisions"
    )
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
    # Decided once: every event's audit records agree, and each request went out once (the crashed
    # batch's were never delivered, so they went out at the restart).
    records: dict[str, set[bool]] = {}
    for m in run.broker.messages("decisions"):
        records.setdefault(json.loads(m.value)["event_id"], set()).add(json.loads(m.value)["ask"])
    assert len(records) == run.sent and all(len(asks) == 1 for asks in records.values())
    ids = Counter(
        LabelRequest.model_validate_json(m.value).request_id for m in run.broker.messages("label-requests")
    )
    assert max(ids.values()) == 1


def test_a_checkpoint_taken_before_the_partitions_come_back_keeps_the_journals_reach(tmp_path):
    """Crash 1 leaves a journaled batch that was never committed. The restart checkpoints while the group
    join still waits (the dead member's session), before any partition is assigned, and dies again. The
    third start must still replay up to where the journal went — not only to the committed offset — so
    that batch's events get their first decisions, not new ones."""
    run = MemoryRun(
        tmp_path, 2, measure="margin", policy="split", model="logreg", decisions_topic="decisions"
    )
    s = run.settings
    run.events(300)
    run.answer()
    run.now += 10_000
    run.events(1)  # checkpoint
    for _ in range(5):
        run.events(20)
        run.answer()
    for _ in range(40):  # decided and journaled, then the flush fails: nothing of it committed
        i = run.sent
        event = Event(id=event_id(i), features=features_for(i, 2))
        run.producer.produce(s.events_topic, to_json(event), key=event.id.encode())
        run.sent += 1
    run.producer.flush(1.0)
    run.service.producer.fail_flush = True
    with pytest.raises(DeliveryError):
        run.service.run()
    zombie = run.broker.consumer(s.group_id)  # the dead process, still in the group
    zombie.subscribe([s.events_topic, s.labels_topic])
    zombie.poll(0.1, 1)
    second = run.new_service()
    second.start()
    run.now += 10_000  # the checkpoint interval passes while the join waits
    second.run_once()  # no partition yet: a checkpoint, and the journal starts anew
    assert not second.consumer.assignment()
    run.broker._groups[s.group_id].members.remove(second.consumer)  # SIGKILLed while joining
    zombie.close()
    run.service = run.new_service()
    run.drain()
    run.answer()
    run.now += 10_000
    run.events(1)
    run.answer()
    records: dict[str, list[bool]] = {}
    for m in run.broker.messages("decisions"):
        records.setdefault(json.loads(m.value)["event_id"], []).append(json.loads(m.value)["ask"])
    assert len(records) == run.sent
    assert [e for e, asks in records.items() if len(asks) > 1] == [], "decided again after the replay"
    assert run.dead_letters() == Counter({"undecodable": 1}) or run.dead_letters() == Counter()
