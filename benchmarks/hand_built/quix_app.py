"""What a team would write by hand instead of activestream: a quixstreams app that scores each event with a
river model and asks for a label when the model is unsure (margin below a fixed threshold).

It runs in a virtual environment of its own (quixstreams pins ``confluent-kafka < 2.13``, activestream's
fast transport wants 2.16); ``benchmarks/versus_hand_built.py`` creates it and starts this file there. It
imports nothing from activestream. What it does per event: one ``orjson.loads``, ``StandardScaler |
LogisticRegression`` ``predict_proba_one``, a margin against a fixed threshold, and for the unsure ones a
label request (the event's id, features and margin, orjson) produced to the requests topic. What it does
not do (activestream does): validate events, dead-letter bad ones, budget the asks, keep drift arms and a
label-free drift detector, a pending store, stopping criteria, checkpoints, metrics and health endpoints,
or learn labels (none flow in this comparison).

Usage (the benchmark passes these)::

    python quix_app.py BOOTSTRAP EVENTS_TOPIC REQUESTS_TOPIC GROUP N COMMIT_EVERY WARMUP_JSON

``WARMUP_JSON``: a file of ``[[features, label], ...]`` the model learns before it consumes, and from
which the threshold is set so that about 10% of the events are asked (as activestream's budget). The app
stops after ``N`` events and prints one JSON line: ``{"processed": ..., "asked": ...}``.
"""

from __future__ import annotations

import json
import sys

import orjson
from quixstreams import Application
from river import compose, linear_model, preprocessing

ASK_SHARE = 0.10


def warm_model(path: str) -> tuple[compose.Pipeline, float]:
    """The model after the warm-up examples, and the margin below which ~``ASK_SHARE`` of them fall."""
    with open(path, "rb") as f:
        examples = orjson.loads(f.read())
    model = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    for x, y in examples:
        model.learn_one(x, y)
    margins = sorted(margin(model, x) for x, _ in examples)
    return model, margins[int(ASK_SHARE * len(margins))]


def margin(model: compose.Pipeline, x: dict) -> float:
    proba = model.predict_proba_one(x)
    top = [*sorted(proba.values(), reverse=True), 0.0, 0.0]
    return top[0] - top[1]


def main(argv: list[str]) -> None:
    bootstrap, events_topic, requests_topic, group, n, commit_every, warmup = argv
    model, threshold = warm_model(warmup)
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_every=int(commit_every),  # as activestream, which commits every poll batch
        loglevel="WARNING",
        use_changelog_topics=False,
    )
    events = app.topic(events_topic, value_deserializer="bytes")
    requests = app.topic(requests_topic, value_serializer="bytes")
    counts = {"processed": 0, "asked": 0}

    def score(raw: bytes) -> dict | None:
        counts["processed"] += 1
        if counts["processed"] == int(n):
            app.stop()  # after this message: the app commits what it processed and returns from run()
        event = orjson.loads(raw)
        m = margin(model, event["features"])
        if m >= threshold:
            return None
        counts["asked"] += 1
        return {"event_id": event["id"], "features": event["features"], "margin": m}

    sdf = app.dataframe(events)
    sdf = sdf.apply(score).filter(lambda request: request is not None).apply(orjson.dumps)
    sdf.to_topic(requests)
    app.run()
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
