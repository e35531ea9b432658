"""The engine without a broker: the same inputs give the same state, and a replay decides nothing twice."""

from __future__ import annotations

import json
import pickle
import random

import pytest

from activestream.config import Settings
from activestream.engine import Engine, Step
from activestream.messages import LabelRequest
from activestream.transport.base import Message

T0 = 1_700_000_000_000


def settings(**overrides) -> Settings:
    base = {"budget": 0.2, "seed": 5, "measure": "margin", "policy": "confidence_split", "model": "logreg"}
    return Settings(**{**base, **overrides})


def event(i: int) -> Message:
    rng = random.Random(i)
    x = {f"f{j}": rng.gauss(0, 1) for j in range(3)}
    return Message("events", 0, i, json.dumps({"id": f"e{i}", "features": x}).encode())


def truth(i: int) -> bool:
    rng = random.Random(i)
    return sum(rng.gauss(0, 1) for _ in range(3)) > 0


def label(request_id: str, event_id: str, offset: int) -> Message:
    y = truth(int(event_id[1:]))
    return Message("labels", 0, offset, json.dumps({"request_id": request_id, "label": y}).encode())


def recorded_log(
    n_batches: int = 30, per_batch: int = 20, seed: int = 1
) -> list[tuple[str, int, list[Message]]]:
    """Batches of events, and the labels of the requests of earlier batches, at growing times."""
    engine, log, rng = Engine(settings()), [], random.Random(seed)
    waiting: list[tuple[str, str]] = []
    labels_sent = 0
    for b in range(n_batches):
        now = T0 + b * 1000
        batch = [event(b * per_batch + k) for k in range(per_batch)]
        log.append(("events", now, batch))
        engine.on_events(batch, now)
        for record in engine.take_step().records:
            if record.topic == "label-requests":
                request = LabelRequest.model_validate_json(record.value)
                waiting.append((request.request_id, request.event_id))
        rng.shuffle(waiting)
        answered, waiting = waiting[: len(waiting) // 2], waiting[len(waiting) // 2 :]
        labels = [label(r, e, labels_sent + k) for k, (r, e) in enumerate(answered)]
        labels_sent += len(labels)
        log.append(("labels", now + 500, labels))
        for message in labels:
            engine.on_label(message, now + 500)
        engine.take_step()
    return log


def play(engine: Engine, log, steps: list[Step] | None = None) -> list[Step]:
    steps = [] if steps is None else steps
    for kind, now, messages in log:
        engine.tick(now)
        if kind == "events":
            engine.on_events(messages, now)
        else:
            for message in messages:
                engine.on_label(message, now)
        steps.append(engine.take_step())
    return steps


def state_bytes(engine: Engine) -> bytes:
    return pickle.dumps(engine.snapshot({}, T0, {}), protocol=pickle.HIGHEST_PROTOCOL)


def decisions(steps: list[Step]) -> dict[str, bool]:
    out = {}
    for step in steps:
        out.update({e.event_id: True for e in step.asks})
        out.update(dict.fromkeys(step.discards, False))
    return out


@pytest.mark.parametrize("overrides", [{}, {"model": "gnb", "policy": "split"}, {"adaptation": "none"}])
def test_the_same_inputs_give_the_same_state_and_the_same_records(overrides):
    log = recorded_log()
    first, second = Engine(settings(**overrides)), Engine(settings(**overrides))
    steps_1, steps_2 = play(first, log), play(second, log)
    assert state_bytes(first) == state_bytes(second)
    assert steps_1 == steps_2
    assert sum(len(s.asks) for s in steps_1) > 20 and first.model_version > 10


def test_a_replay_after_a_crash_makes_every_decision_of_the_journal_again():
    """A restarted engine (checkpoint after batch 10, journal of batches 11-20) replays batches 11-20 with
    the labels in another order: the model learns differently, yet every journaled event gets its first
    decision and labels learned before are not counted again."""
    log = recorded_log()
    live = Engine(settings())
    play(live, log[:20])
    checkpoint = pickle.loads(state_bytes(live))
    journal = [step.with_published() for step in play(live, log[20:40])]  # flushed before the crash

    restarted = Engine(settings())
    restarted.restore(checkpoint)
    assert restarted.recover(journal) == []  # all published: nothing to produce again
    # The labels come back in another order: reversed in each batch, and the last batch's first.
    replay = [(k, t, list(reversed(m)) if k == "labels" else m) for k, t, m in log[20:40]]
    replay = replay[-1:] + replay[:-1] if replay[-1][0] == "labels" else replay
    replayed = play(restarted, replay)
    assert decisions(replayed) == {}, "a journaled event was decided again"
    assert all(not s.records for s in replayed), "a replay produced records again"
    first = decisions(journal)
    assert len(first) == 200 and restarted.decider.replay == {}
    assert restarted.model_version == live.model_version  # every label learned once, nothing lost
    assert restarted.learner.threshold_policy.spending == pytest.approx(
        live.learner.threshold_policy.spending
    )


def test_unpublished_steps_are_produced_again_and_published_ones_not():
    log = recorded_log(n_batches=4)
    engine = Engine(settings())
    steps = play(engine, log)
    records = [r for s in steps for r in s.records]
    unpublished = [steps[-2].with_published(), steps[-1]]
    assert Engine(settings()).recover(unpublished) == list(steps[-1].records)
    assert Engine(settings()).recover([s.with_published() for s in steps]) == []
    assert len(records) > 0


def test_an_unlearnable_label_leaves_its_request_open():
    engine = Engine(settings(budget=1.0))
    engine.on_events([event(0)], T0)
    [entry] = engine.take_step().asks
    yes = Message("labels", 0, 0, json.dumps({"request_id": entry.request_id, "label": "yes"}).encode())
    assert engine.on_label(yes, T0 + 1).reason.value == "unexpected_label"
    assert entry.request_id in engine.state.pending
    right = Message("labels", 0, 1, json.dumps({"request_id": entry.request_id, "label": True}).encode())
    assert engine.on_label(right, T0 + 2) is None and engine.model_version == 1
    assert entry.request_id not in engine.state.pending


def test_carried_headers_go_to_the_request_and_the_decision_record():
    engine = Engine(settings(budget=1.0, carried_headers="traceparent", decisions_topic="decisions"))
    message = event(0)
    message = Message(
        message.topic, 0, 0, message.value, headers=(("traceparent", b"00-abc-01"), ("secret", b"x"))
    )
    engine.on_events([message], T0)
    records = engine.take_step().records
    assert {r.topic for r in records} == {"label-requests", "decisions"}
    assert all(r.headers == (("traceparent", b"00-abc-01"),) for r in records)
