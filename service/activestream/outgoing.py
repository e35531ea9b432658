"""What a decision sends: the label request of an asked event and the audit record of any decision.

Built from an already validated event and the learner's own numbers, so nothing is validated again: this
runs for every ask (and every audited discard), on the loop's hot path.

>>> from activestream.learner import Decision
>>> from activestream.messages import Event
>>> event = Event(id="e-1", features={"x": 1.0})
>>> decision = Decision(True, {True: 0.8, False: 0.2}, 0.72, 0.5, True, "entropy/split", "random")
>>> label_request_for(event, decision, model_version=3, now_ms=0, ttl_ms=60_000).reason
'random'
>>> decision_record_for("e-1", decision, model_version=3).ask
True
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pydantic_core

from activestream.messages import DecisionRecord, Event, LabelRequest, request_id_for

if TYPE_CHECKING:
    from activestream.learner import Decision

__all__ = ["decision_record_for", "label_request_for", "label_request_json"]


def decision_record_for(event_id: str, decision: Decision, *, model_version: int) -> DecisionRecord:
    """The audit record of a decision.

    >>> from activestream.learner import Decision
    >>> decision = Decision(True, {True: 0.8, False: 0.2}, 0.72, 0.5, True, "entropy/split", "random")
    >>> decision_record_for("e-1", decision, model_version=3).reason
    'random'
    >>> from dataclasses import replace
    >>> decision_record_for("e-1", replace(decision, ask_proba=0.04), model_version=3).ask_probability
    0.04
    """
    return DecisionRecord.model_construct(  # values come from the learner, not from outside: no re-validation
        event_id=event_id,
        predicted_label=_as_wire_label(decision.y_pred),
        ask=decision.ask,
        score=decision.score,
        threshold=decision.threshold,
        strategy=decision.strategy,
        reason=decision.reason,
        model_version=model_version,
        ask_probability=decision.ask_proba,
    )


def _as_wire_label(label: object) -> bool | int | str | None:
    if hasattr(label, "item"):  # a numpy scalar, from models trained on numpy labels
        label = label.item()
    return label if label is None or isinstance(label, bool | int | str) else str(label)


# The asks of one batch share their clock reading, so their two instants repeat: a datetime is immutable.
@functools.lru_cache(maxsize=8)
def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _label_request_fields(
    event: Event, decision: Decision, model_version: int, now_ms: int, ttl_ms: int
) -> dict[str, Any]:
    """A label request's fields, in ``LabelRequest``'s order, from an already validated event and the
    learner's own numbers (validating again would only cost time on the hot path)."""
    return {
        "request_id": request_id_for(event.id),
        "event_id": event.id,
        "features": event.features,
        # An untrained model's argmax is a tie-break: annotators see no guess (null), as the schema says.
        "predicted_label": _as_wire_label(decision.y_pred) if decision.trained else None,
        "probabilities": {str(label): float(p) for label, p in decision.proba.items()},
        "score": decision.score,
        "strategy": decision.strategy,
        "reason": decision.reason,
        "threshold": decision.threshold,
        "model_version": model_version,
        "created_at": _ms_to_datetime(now_ms),
        "expires_at": _ms_to_datetime(now_ms + ttl_ms),
        "ask_probability": decision.ask_proba,
    }


def label_request_for(
    event: Event, decision: Decision, *, model_version: int, now_ms: int, ttl_ms: int
) -> LabelRequest:
    """The label request for an event the learner decided to ask about.

    >>> from activestream.learner import Decision
    >>> event = Event(id="e-1", features={"x": 1.0})
    >>> decision = Decision(True, {True: 0.8, False: 0.2}, 0.72, 0.5, True, "entropy/split", "random")
    >>> request = label_request_for(event, decision, model_version=3, now_ms=0, ttl_ms=60_000)
    >>> request.predicted_label, request.probabilities, request.expires_at.isoformat()
    (True, {'True': 0.8, 'False': 0.2}, '1970-01-01T00:01:00+00:00')
    """
    return LabelRequest.model_construct(
        **_label_request_fields(event, decision, model_version, now_ms, ttl_ms)
    )


def label_request_json(
    event: Event, decision: Decision, *, model_version: int, now_ms: int, ttl_ms: int
) -> tuple[str, bytes]:
    """The request id and the JSON of ``label_request_for``'s request, byte for byte, in half the time
    (no model is built: the ask path of every asked event).

    >>> from activestream.messages import to_json
    >>> from activestream.learner import Decision
    >>> event = Event(id="e-1", features={"x": 1.0})
    >>> decision = Decision(True, {True: 0.8, False: 0.2}, 0.72, 0.5, True, "entropy/split", "random")
    >>> request_id, data = label_request_json(event, decision, model_version=3, now_ms=0, ttl_ms=60_000)
    >>> request = label_request_for(event, decision, model_version=3, now_ms=0, ttl_ms=60_000)
    >>> request_id == request.request_id, data == to_json(request)
    (True, True)
    """
    fields = _label_request_fields(event, decision, model_version, now_ms, ttl_ms)
    return fields["request_id"], pydantic_core.to_json(fields, inf_nan_mode="null")  # as the model does
