"""Prometheus metrics: every name in one place, and a ``Metrics`` object that owns its registry.

Names live in :class:`Metric` (and the tuple :data:`METRIC_NAMES`), so deploy rules and dashboards can
be checked against them. Label sets are small and fixed — outcome, status, reason — except three that
follow the data and are bounded: ``consumer_lag`` has one series per *assigned* partition (removed on
revoke) and ``asked_labels_total`` one per class for the first :data:`MAX_LABEL_CLASSES` classes seen,
then ``other``; the ``annotator_*`` series name the :data:`MAX_ANNOTATOR_SERIES` annotators with the most
judged votes, everyone else is ``other``.

``activestream_prequential_accuracy`` is measured without selection bias only, each label compared with
the prediction made when it was asked (since the start; checkpoints keep the counts). Labels asked
because they were informative are biased towards hard cases and would understate accuracy, so the gauge
follows the rule of every unbiased estimate (:func:`activestream.drift.estimates.unbiased_source`):

1. the **random sample** — labels whose request was decided by the random part of a policy (decision
   reason ``"random"``: Split's random part, the drift boost's extra asks) — once it holds
   :data:`~activestream.drift.estimates.DEFAULT_MIN_SAMPLES` labels;
2. else **inverse-probability weighting** of every label whose ask probability is known
   (``Decision.ask_proba``, from a randomized policy): each counts ``1/p``, and the weighted mean is
   self-normalised (Hájek) — once it holds as many;
3. else the first of the two with any label (a thin estimate at the start);
4. else NaN. A deterministic policy without a random share (``ask_proba`` ``None``) never feeds either:
   its asks are no sample of the stream, and **no unbiased estimate exists** — the gauge stays NaN.

>>> metrics = Metrics(clock=lambda: 100.0)
>>> metrics.event("asked")
>>> metrics.value(Metric.EVENTS, outcome="asked")
1.0
>>> metrics.value(Metric.PREQUENTIAL_ACCURACY)
nan
>>> b"activestream_events_total" in metrics.render()
True

Without a random share, the weighted labels give the estimate: a right answer asked with probability
0.1 stands for ten events, a wrong one asked with probability 1 for one.

>>> metrics.judged_weighted(True, ask_proba=0.1)
>>> metrics.judged_weighted(False, ask_proba=1.0)
>>> round(metrics.value(Metric.PREQUENTIAL_ACCURACY), 3), metrics.accuracy_source
(0.909, 'ipw')
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from activestream.drift.estimates import DEFAULT_MIN_SAMPLES, UnbiasedSource, unbiased_source
from activestream.stopping import CRITERIA
from activestream.transport.base import TopicPartition

__all__ = [
    "MAX_ANNOTATOR_SERIES",
    "MAX_LABEL_CLASSES",
    "METRIC_NAMES",
    "STOPPING_CRITERIA",
    "Metric",
    "Metrics",
]


class Metric(StrEnum):
    """Every metric the service exports, by its full Prometheus name."""

    EVENTS = "activestream_events_total"
    LABEL_REQUESTS = "activestream_label_requests_total"
    LABELS = "activestream_labels_total"
    DEAD_LETTERS = "activestream_dead_letters_total"
    THRESHOLD = "activestream_threshold"
    BUDGET_TARGET = "activestream_budget_target_ratio"
    BUDGET_SPENT = "activestream_budget_spent_ratio"
    PENDING = "activestream_pending_labels"
    PENDING_EXPIRED = "activestream_pending_expired_total"
    LABEL_DELAY = "activestream_label_delay_seconds"
    PROCESSING_DURATION = "activestream_processing_duration_seconds"
    BATCH_DURATION = "activestream_batch_duration_seconds"
    CONSUMER_LAG = "activestream_consumer_lag"
    PREQUENTIAL_ACCURACY = "activestream_prequential_accuracy"
    ASKED_LABELS = "activestream_asked_labels_total"
    CHECKPOINT_AGE = "activestream_checkpoint_age_seconds"
    CHECKPOINT_TIMESTAMP = "activestream_checkpoint_timestamp_seconds"
    BUILD_INFO = "activestream_build_info"
    UP = "activestream_up"
    # Stopping criteria and several annotators (``activestream.stopping``, ``activestream.aggregate``).
    STOPPING_SIGNAL = "activestream_stopping_signal"
    LABEL_REQUESTS_PAUSED = "activestream_label_requests_paused"
    ANNOTATOR_LABELS = "activestream_annotator_labels_total"
    ANNOTATOR_AGREEMENT = "activestream_annotator_agreement_ratio"
    LABEL_DISAGREEMENTS = "activestream_label_disagreements_total"
    # Drift: active versus passive adaptation (``activestream.drift``).
    ARM_ACCURACY = "activestream_arm_accuracy"
    DRIFTS = "activestream_drifts_total"
    LABELS_SINCE_DRIFT = "activestream_labels_since_drift"
    LAST_DRIFT_TIMESTAMP = "activestream_last_drift_timestamp_seconds"
    SERVING_ARM = "activestream_serving_arm"
    CHAMPION_SWITCHES = "activestream_champion_switches_total"
    LABEL_FREE_ALARMS = "activestream_label_free_alarms_total"
    # Several replicas, one model (``activestream.engine.training_log``).
    TRAINING_EXAMPLES = "activestream_training_examples_total"
    TRAINING_OFFSET = "activestream_training_log_offset"


#: Every exported metric name, for checking alert rules and dashboards.
METRIC_NAMES: Final = tuple(metric.value for metric in Metric)

EVENT_OUTCOMES: Final = ("asked", "discarded", "invalid")
LABEL_STATUSES: Final = ("learned", "unknown", "expired", "duplicate", "invalid")
EXPIRY_REASONS: Final = ("ttl", "evicted")
TRAINING_OUTCOMES: Final = ("learned", "duplicate", "invalid", "request", "unjoined", "vote")
#: Classes with their own ``asked_labels_total`` series; later classes are counted as ``other``.
MAX_LABEL_CLASSES: Final = 50
#: Annotators (the top ones by volume) with their own ``annotator_*`` series; the rest are ``other``.
MAX_ANNOTATOR_SERIES: Final = 20
STOPPING_CRITERIA: Final = CRITERIA
ARMS: Final = ("active", "passive")
_MAX_LABEL_CHARS: Final = 64

# Label delays are human-scale: seconds to days.
_DELAY_BUCKETS: Final = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400)
_PROCESSING_BUCKETS: Final = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)
_BATCH_BUCKETS: Final = (1e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _name(metric: Metric) -> str:
    # prometheus_client appends "_total" to counters itself.
    return metric.value.removesuffix("_total")


@dataclass(frozen=True, slots=True)
class _Spec:
    """How one metric is built: its kind, help text, label names and (histograms) buckets."""

    kind: type[Counter] | type[Gauge] | type[Histogram]
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


#: Every metric's spec; the ``Metrics`` object registers them in :class:`Metric`'s order.
_SPECS: Final[Mapping[Metric, _Spec]] = {
    Metric.EVENTS: _Spec(Counter, "Events consumed, by outcome.", ("outcome",)),
    Metric.LABEL_REQUESTS: _Spec(Counter, "Label requests produced."),
    Metric.LABELS: _Spec(Counter, "Labels consumed, by status.", ("status",)),
    Metric.TRAINING_EXAMPLES: _Spec(Counter, "Training-log examples read, by outcome.", ("outcome",)),
    Metric.TRAINING_OFFSET: _Spec(Gauge, "Offset of the next training-log example to learn."),
    Metric.DEAD_LETTERS: _Spec(Counter, "Messages dead-lettered, by reason.", ("reason",)),
    Metric.THRESHOLD: _Spec(Gauge, "The policy's current threshold."),
    Metric.BUDGET_TARGET: _Spec(Gauge, "Target fraction of events to ask labels for."),
    Metric.BUDGET_SPENT: _Spec(Gauge, "Windowed fraction of recent events asked."),
    Metric.PENDING: _Spec(Gauge, "Label requests waiting for their label."),
    Metric.PENDING_EXPIRED: _Spec(Counter, "Label requests that got no label, by reason.", ("reason",)),
    Metric.LABEL_DELAY: _Spec(Histogram, "Time from asking to learning a label.", buckets=_DELAY_BUCKETS),
    Metric.PROCESSING_DURATION: _Spec(
        Histogram, "Time to decide on one event (score and policy).", buckets=_PROCESSING_BUCKETS
    ),
    Metric.BATCH_DURATION: _Spec(
        Histogram, "Time to handle one polled batch, flush and commit included.", buckets=_BATCH_BUCKETS
    ),
    Metric.CONSUMER_LAG: _Spec(Gauge, "Messages behind, per assigned partition.", ("topic", "partition")),
    Metric.PREQUENTIAL_ACCURACY: _Spec(
        Gauge,
        'Accuracy of predictions on the unbiased sample (labels asked with reason "random"), else on all '
        "labels weighted by 1/ask probability (randomized policies); NaN with a deterministic policy "
        "without a random share: no unbiased estimate exists.",
    ),
    Metric.ASKED_LABELS: _Spec(Counter, "Learned labels by class (class balance).", ("label",)),
    Metric.CHECKPOINT_AGE: _Spec(Gauge, "Seconds since the last checkpoint was saved."),
    Metric.CHECKPOINT_TIMESTAMP: _Spec(Gauge, "Unix time of the last checkpoint saved."),
    Metric.BUILD_INFO: _Spec(
        Gauge,
        "Always 1; the labels describe the running build.",
        ("version", "model", "measure", "policy"),
    ),
    Metric.UP: _Spec(Gauge, "1 while the service loop runs."),
    Metric.STOPPING_SIGNAL: _Spec(
        Gauge, "1 when a stopping criterion says more labels no longer help, by criterion.", ("criterion",)
    ),
    Metric.LABEL_REQUESTS_PAUSED: _Spec(
        Gauge, "1 while label requests are paused (stop_on_plateau) or capped (max_labels)."
    ),
    Metric.ANNOTATOR_LABELS: _Spec(
        Counter,
        "Labels accepted into a vote, by annotator (the top ones by volume; the rest: other).",
        ("annotator",),
    ),
    Metric.ANNOTATOR_AGREEMENT: _Spec(
        Gauge, "Share of an annotator's judged votes that agreed with the others' majority.", ("annotator",)
    ),
    Metric.LABEL_DISAGREEMENTS: _Spec(Counter, "Requests whose annotators did not all give the same label."),
    Metric.ARM_ACCURACY: _Spec(
        Gauge,
        "Recent accuracy estimate of each adaptation arm (on the unbiased sample, else weighted by 1/ask "
        "probability, else on all labels).",
        ("arm",),
    ),
    Metric.DRIFTS: _Spec(Counter, "Drifts an arm reacted to, by arm and detector.", ("arm", "detector")),
    Metric.LABELS_SINCE_DRIFT: _Spec(Gauge, "Labeled examples learned since the last drift."),
    Metric.LAST_DRIFT_TIMESTAMP: _Spec(Gauge, "Unix time of the last drift (NaN: none yet)."),
    Metric.SERVING_ARM: _Spec(Gauge, "1 for the arm whose predictions are served, else 0.", ("arm",)),
    Metric.CHAMPION_SWITCHES: _Spec(Counter, "Times the served arm changed to the other one."),
    Metric.LABEL_FREE_ALARMS: _Spec(
        Counter, "Changes in the distribution of informativeness scores of all events (no labels needed)."
    ),
}


class Metrics:
    """The service's metrics, in a registry of their own (never the process-global one).

    Parameters
    ----------
    dead_letter_reasons
        Every dead-letter reason, so that each series exists (at 0) from the start.
    clock
        Wall-clock seconds, read when ``checkpoint_age_seconds`` is scraped.
    """

    def __init__(self, dead_letter_reasons: Iterable[str] = (), clock: Callable[[], float] = time.time):
        self.registry = CollectorRegistry(auto_describe=True)
        # process_* (CPU, resident memory, open files, start time: restarts and leaks show) and
        # python_info, as the global registry has them; ours is private, so they are registered again.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._clock = clock
        self._last_checkpoint_s: float | None = None
        self._correct = 0
        self._judged = 0
        self._ipw_correct = 0.0
        self._ipw_weight = 0.0
        self._ipw_judged = 0
        self._class_series: dict[str, Counter] = {}  # each class's child of ASKED_LABELS, once looked up
        self._lag_partitions: set[TopicPartition] = set()
        self._annotator_series: set[str] = set()
        self._switches_seen = 0
        self._counters: dict[Metric, Counter] = {}
        self._gauges: dict[Metric, Gauge] = {}
        self._histograms: dict[Metric, Histogram] = {}
        for metric in Metric:  # a metric without a spec fails here, in every test that builds Metrics
            self._register(metric, _SPECS[metric])
        # NaN until the first drift, the first judged label, the first checkpoint.
        for metric in (Metric.LAST_DRIFT_TIMESTAMP, Metric.PREQUENTIAL_ACCURACY, Metric.CHECKPOINT_TIMESTAMP):
            self._gauges[metric].set(math.nan)
        self._gauges[Metric.CHECKPOINT_AGE].set_function(self._checkpoint_age_s)
        self._initialize_series(dead_letter_reasons)

    def _register(self, metric: Metric, spec: _Spec) -> None:
        name, reg = _name(metric), self.registry
        if spec.kind is Counter:
            self._counters[metric] = Counter(name, spec.help, spec.labels, registry=reg)
        elif spec.kind is Gauge:
            self._gauges[metric] = Gauge(name, spec.help, spec.labels, registry=reg)
        else:
            self._histograms[metric] = Histogram(
                name, spec.help, spec.labels, buckets=spec.buckets, registry=reg
            )

    def _initialize_series(self, dead_letter_reasons: Iterable[str]) -> None:
        # Series that exist at 0 from the start make rate() and absent() alerts behave. The children are
        # kept: looking them up by label on every message would cost a lock and a hash per call.
        self._event_series = {o: self._counters[Metric.EVENTS].labels(outcome=o) for o in EVENT_OUTCOMES}
        self._label_series = {s: self._counters[Metric.LABELS].labels(status=s) for s in LABEL_STATUSES}
        for reason in EXPIRY_REASONS:
            self._counters[Metric.PENDING_EXPIRED].labels(reason=reason)
        for reason in dead_letter_reasons:
            self._counters[Metric.DEAD_LETTERS].labels(reason=reason)
        for criterion in STOPPING_CRITERIA:
            self._gauges[Metric.STOPPING_SIGNAL].labels(criterion=criterion).set(0)
        self._counters[Metric.ANNOTATOR_LABELS].labels(annotator="other")
        self._gauges[Metric.ANNOTATOR_AGREEMENT].labels(annotator="other").set(math.nan)

    # -- drift ------------------------------------------------------------------------------------------
    def adaptation(self, detector: str) -> None:
        """Create the drift series at 0 for the configured detector (adaptation arms on)."""
        for arm in ARMS:
            self._gauges[Metric.ARM_ACCURACY].labels(arm=arm).set(math.nan)
            self._gauges[Metric.SERVING_ARM].labels(arm=arm).set(0)
        self._counters[Metric.DRIFTS].labels(arm="active", detector=detector)

    def drift(self, detector: str, unix_s: float) -> None:
        """The active arm reacted to a drift its detector reported."""
        self._counters[Metric.DRIFTS].labels(arm="active", detector=detector).inc()
        self._gauges[Metric.LAST_DRIFT_TIMESTAMP].set(unix_s)

    def arms(
        self, accuracy: Mapping[str, float | None], serving: str, labels_since_drift: int, switches: int
    ) -> None:
        """The arms' state after a batch; ``switches`` is the running total of champion changes."""
        for arm in ARMS:
            value = accuracy.get(arm)
            self._gauges[Metric.ARM_ACCURACY].labels(arm=arm).set(math.nan if value is None else value)
            self._gauges[Metric.SERVING_ARM].labels(arm=arm).set(1 if arm == serving else 0)
        self._gauges[Metric.LABELS_SINCE_DRIFT].set(labels_since_drift)
        if switches > self._switches_seen:  # a restored classifier starts from its own total
            self._counters[Metric.CHAMPION_SWITCHES].inc(switches - self._switches_seen)
        self._switches_seen = switches

    def label_free_alarm(self) -> None:
        self._counters[Metric.LABEL_FREE_ALARMS].inc()

    # -- counters ---------------------------------------------------------------------------------------
    def event(self, outcome: str, count: int = 1) -> None:
        """Count ``count`` events (one by default): ``asked``, ``discarded`` or ``invalid``."""
        if count:
            self._event_series[outcome].inc(count)

    def label_request(self) -> None:
        self._counters[Metric.LABEL_REQUESTS].inc()

    def label(self, status: str) -> None:
        """Count one label: ``learned``, ``unknown``, ``expired``, ``duplicate`` or ``invalid``."""
        self._label_series[status].inc()

    def training_example(self, outcome: str) -> None:
        """Count one training-log record by outcome (``TRAINING_OUTCOMES``)."""
        self._counters[Metric.TRAINING_EXAMPLES].labels(outcome=outcome).inc()

    def dead_letter(self, reason: str) -> None:
        self._counters[Metric.DEAD_LETTERS].labels(reason=reason).inc()

    def pending_expired(self, reason: str, count: int = 1) -> None:
        if count:
            self._counters[Metric.PENDING_EXPIRED].labels(reason=reason).inc(count)

    def learned(self, label: object, delay_s: float) -> None:
        """A label was learned ``delay_s`` after it was asked."""
        self._histograms[Metric.LABEL_DELAY].observe(delay_s)
        text = str(label)[:_MAX_LABEL_CHARS]
        series = self._class_series.get(text)
        if series is None:  # (``labels`` looks the child up under a lock: a third of a label's metrics)
            if len(self._class_series) >= MAX_LABEL_CLASSES:  # bounded: the classes past it are "other"
                text = "other"
            series = self._class_series[text] = self._counters[Metric.ASKED_LABELS].labels(label=text)
        series.inc()

    def judged(self, correct: bool) -> None:
        """One prediction of the unbiased (random) sample was checked against its label."""
        self._correct += int(correct)
        self._judged += 1
        self._set_accuracy()

    def judged_weighted(self, correct: bool, ask_proba: float) -> None:
        """One prediction was checked against a label asked with probability ``ask_proba`` (in ``(0, 1]``).

        Every label with a known ask probability counts here, those of the random sample too.
        """
        if not 0.0 < ask_proba <= 1.0:
            raise ValueError(f"ask_proba must be in (0, 1], got {ask_proba!r}")
        weight = 1.0 / ask_proba
        self._ipw_correct += weight if correct else 0.0
        self._ipw_weight += weight
        self._ipw_judged += 1
        self._set_accuracy()

    def restore_accuracy(
        self,
        correct: int,
        judged: int,
        ipw_correct: float = 0.0,
        ipw_weight: float = 0.0,
        ipw_judged: int = 0,
    ) -> None:
        """Set the counts behind the accuracy gauge (from a checkpoint)."""
        self._correct, self._judged = correct, judged
        self._ipw_correct, self._ipw_weight, self._ipw_judged = ipw_correct, ipw_weight, ipw_judged
        self._set_accuracy()

    @property
    def accuracy_source(self) -> UnbiasedSource | None:
        """Where the accuracy gauge comes from: ``"unbiased"``, ``"ipw"`` or ``None`` (NaN)."""
        counts = {"unbiased": self._judged, "ipw": self._ipw_judged if self._ipw_weight > 0 else 0}
        return unbiased_source(counts, DEFAULT_MIN_SAMPLES) or unbiased_source(counts, 1)

    def _set_accuracy(self) -> None:
        source = self.accuracy_source
        if source == "unbiased":
            value = self._correct / self._judged
        elif source == "ipw":
            value = self._ipw_correct / self._ipw_weight
        else:
            value = math.nan
        self._gauges[Metric.PREQUENTIAL_ACCURACY].set(value)

    @property
    def accuracy_counts(self) -> tuple[int, int]:
        """``(correct, judged)`` of the unbiased sample, for checkpoints."""
        return self._correct, self._judged

    @property
    def weighted_accuracy_counts(self) -> tuple[float, float, int]:
        """``(weighted correct, total weight, labels)`` of the weighted estimate, for checkpoints."""
        return self._ipw_correct, self._ipw_weight, self._ipw_judged

    # -- durations --------------------------------------------------------------------------------------
    def processing(self, seconds: float, count: int = 1) -> None:
        """``count`` events took ``seconds`` each (batch scoring: a run's mean, for each of its events)."""
        histogram = self._histograms[Metric.PROCESSING_DURATION]
        if count == 1:
            histogram.observe(seconds)
            return
        # ``count`` observations in one step: observe() costs about a microsecond, per event.
        histogram._sum.inc(seconds * count)  # type: ignore[attr-defined]
        bucket = bisect.bisect_left(histogram._upper_bounds, seconds)  # type: ignore[attr-defined]
        histogram._buckets[bucket].inc(count)  # type: ignore[attr-defined]

    def batch(self, seconds: float) -> None:
        self._histograms[Metric.BATCH_DURATION].observe(seconds)

    # -- gauges -----------------------------------------------------------------------------------------
    def policy_state(self, threshold: float, target: float, spent: float) -> None:
        self._gauges[Metric.THRESHOLD].set(threshold)
        self._gauges[Metric.BUDGET_TARGET].set(target)
        self._gauges[Metric.BUDGET_SPENT].set(spent)

    def pending(self, size: int) -> None:
        self._gauges[Metric.PENDING].set(size)

    def training_log_position(self, offset: int) -> None:
        self._gauges[Metric.TRAINING_OFFSET].set(offset)

    def lag(self, lags: Mapping[TopicPartition, int]) -> None:
        """Set the lag of exactly these partitions; series of partitions not given any more are removed."""
        for tp in self._lag_partitions - lags.keys():
            self._gauges[Metric.CONSUMER_LAG].remove(tp.topic, str(tp.partition))
        for tp, lag in lags.items():
            self._gauges[Metric.CONSUMER_LAG].labels(topic=tp.topic, partition=str(tp.partition)).set(lag)
        self._lag_partitions = set(lags)

    def forget_partitions(self, partitions: Iterable[TopicPartition]) -> None:
        """Remove the lag series of revoked partitions."""
        gone = self._lag_partitions & set(partitions)
        for tp in gone:
            self._gauges[Metric.CONSUMER_LAG].remove(tp.topic, str(tp.partition))
        self._lag_partitions -= gone

    def checkpoint_saved(self, unix_s: float) -> None:
        self._last_checkpoint_s = unix_s
        self._gauges[Metric.CHECKPOINT_TIMESTAMP].set(unix_s)

    def _checkpoint_age_s(self) -> float:
        return math.nan if self._last_checkpoint_s is None else self._clock() - self._last_checkpoint_s

    def build_info(self, version: str, model: str, measure: str, policy: str) -> None:
        self._gauges[Metric.BUILD_INFO].labels(
            version=version, model=model, measure=measure, policy=policy
        ).set(1)

    def up(self, running: bool) -> None:
        self._gauges[Metric.UP].set(1 if running else 0)

    # -- stopping criteria and annotators ----------------------------------------------------------------
    def stopping(self, signals: Mapping[str, bool], paused: bool) -> None:
        """Set each criterion's 0/1 signal (criteria from ``STOPPING_CRITERIA``) and the pause gauge."""
        for criterion, on in signals.items():
            self._gauges[Metric.STOPPING_SIGNAL].labels(criterion=criterion).set(1 if on else 0)
        self._gauges[Metric.LABEL_REQUESTS_PAUSED].set(1 if paused else 0)

    def annotator_label(self, series: str) -> None:
        """Count one vote; ``series`` is the annotator's bounded metric label (a name or ``other``)."""
        self._counters[Metric.ANNOTATOR_LABELS].labels(annotator=series[:_MAX_LABEL_CHARS]).inc()

    def annotator_agreement(self, ratios: Mapping[str, float]) -> None:
        """Set the agreement of exactly these series (at most ``MAX_ANNOTATOR_SERIES`` + ``other``)."""
        ratios = {name[:_MAX_LABEL_CHARS]: ratio for name, ratio in ratios.items()}
        for gone in self._annotator_series - ratios.keys():
            self._gauges[Metric.ANNOTATOR_AGREEMENT].remove(gone)
        for name, ratio in ratios.items():
            self._gauges[Metric.ANNOTATOR_AGREEMENT].labels(annotator=name).set(ratio)
        self._annotator_series = set(ratios)

    def disagreement(self) -> None:
        self._counters[Metric.LABEL_DISAGREEMENTS].inc()

    # -- exposition -------------------------------------------------------------------------------------
    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def value(self, metric: Metric, suffix: str = "", **labels: str) -> float | None:
        """The current value of one sample (for tests and summaries), ``None`` when absent.

        ``suffix`` picks a histogram's sample: ``"_count"``, ``"_sum"`` or ``"_bucket"`` (with ``le``).
        """
        return self.registry.get_sample_value(metric.value + suffix, labels)
