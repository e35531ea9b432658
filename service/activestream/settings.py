"""The service's settings: every option, its default and its checks (``Settings``).

Each option is set by the environment variable ``ACTIVESTREAM_<NAME>`` (``env_var``). Reading them with
one readable error line per bad variable is :func:`activestream.config.load_settings`; the reference table
and the warnings about variables that set nothing are in :mod:`activestream.settings_reference`.

>>> Settings(budget=0.05).budget
0.05
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from activestream.learner import DEFAULT_MEASURE, DEFAULT_POLICY

__all__ = ["ENV_PREFIX", "SaslMechanism", "SecurityProtocol", "Settings", "env_var"]

ENV_PREFIX: Final = "ACTIVESTREAM_"
_TOPIC_NAME: Final = re.compile(r"[A-Za-z0-9._-]+")


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


def env_var(field: str) -> str:
    """The environment variable that sets a field.

    >>> env_var("budget")
    'ACTIVESTREAM_BUDGET'
    """
    return f"{ENV_PREFIX}{field.upper()}"


class Settings(BaseSettings):
    """Every option of the service; each can be set by the environment variable ``ACTIVESTREAM_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    # Kafka
    bootstrap_servers: str = Field("localhost:9092", min_length=1, description="Kafka bootstrap servers.")
    group_id: str = Field("activestream", min_length=1, description="Consumer group id.")
    group_instance_id: str = Field(
        "",
        max_length=249,
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Static group membership (`group.instance.id`, KIP-345): a name unique in the group and "
        "stable across restarts of this replica, e.g. the pod name (a StatefulSet's, from the downward "
        "API). A restarted process then takes its partitions back without waiting out the dead member's "
        "session; a member that stops for good keeps them until `session_timeout_ms` (see "
        "deploy/README.md). Empty: dynamic membership.",
    )
    events_topic: str = Field("events", min_length=1, description="Topic the events to score come from.")
    requests_topic: str = Field("label-requests", min_length=1, description="Topic label requests go to.")
    labels_topic: str = Field("labels", min_length=1, description="Topic the annotators' labels come from.")
    dead_letter_topic: str = Field(
        "dead-letters", min_length=1, description="Topic rejected messages go to, with a reason header."
    )
    decisions_topic: str = Field(
        "",
        description="Audit trail: when set, every decision (ask or discard, score, threshold, strategy, "
        "model version) is recorded on this topic. Empty: off.",
    )
    decisions_discard_sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Audit trail: every ask is recorded, and this seeded, replay-stable share of the "
        "discards (chosen by a hash of the event id and the seed).",
    )
    training_topic: str = Field(
        "",
        description="Several replicas, one model: when set, each request and each label goes to this topic "
        "(one partition), and every replica learns it in order, once each: every replica holds the same "
        "model, any replica joins any label (labels need no key and may land on any partition), and "
        "`max_labels` caps the group. A replica with no checkpoint starts from the newest snapshot "
        "(`snapshot_topic`) or else reads it from the start. Empty: off (each replica learns the labels of "
        "its own requests).",
    )
    snapshot_topic: str = Field(
        "",
        description="With `training_topic`: a one-partition topic (best compacted) where the replica holding "
        "partition 0 of the events topic publishes the group's model every `snapshot_every` records of the "
        "training log. A replica with no checkpoint starts from the newest complete snapshot and reads the "
        "log from there, not from its start. Empty: off.",
    )
    snapshot_every: int = Field(
        10_000,
        ge=1,
        description="With `snapshot_topic`: records of the training log between two snapshots.",
    )
    carried_headers: str = Field(
        "",
        description="Comma-separated names of event headers copied to the event's label request and "
        "decision record (e.g. `traceparent`, to follow a trace to the annotators). Empty: none.",
    )
    create_topics: bool = Field(True, description="Create missing topics at start (1 partition each).")
    transport: Literal["kafka-python", "confluent"] = Field(
        "kafka-python",
        description="Kafka client: `kafka-python` (pure Python) or `confluent` (librdkafka, several times "
        "the consume rate; needs `pip install 'activestream[fast]'`). Same semantics either way.",
    )
    # Learning
    model: str = Field("logreg", description="Base classifier (see `activestream.models.MODELS`).")
    measure: str = Field(DEFAULT_MEASURE, description="Informativeness measure (see `activestream.score`).")
    policy: str = Field(
        DEFAULT_POLICY, description="Threshold policy (see `activestream.decide` and docs/strategies.md)."
    )
    budget: float = Field(0.1, gt=0.0, le=1.0, description="Target fraction of events to ask labels for.")
    seed: int = Field(0, description="Seed of the measure's and the policy's random generators.")
    # Drift (activestream.drift)
    adaptation: Literal["arms", "none"] = Field(
        "arms",
        description="`arms`: learn through an active arm (a drift detector replaces the model) and a passive "
        "arm (continuous forgetting) side by side, on the same labels. `none`: one model, no drift handling.",
    )
    serve: Literal["champion", "active", "passive"] = Field(
        "champion",
        description="With `arms`: the arm whose predictions are served (`champion`: the better one).",
    )
    drift_detector: str = Field(
        "adwin",
        description="With `arms`: the active arm's detector (adwin, page_hinkley, kswin, ddm, eddm, "
        "hddm_a, hddm_w, fhddm).",
    )
    passive_window: int = Field(
        500,
        ge=10,
        description="With `arms`: labels the passive arm's window models remember (non-linear models).",
    )
    label_free_detector: str = Field(
        "adwin",
        description="Detector on the informativeness scores of all events: a label-free drift signal. "
        "Empty: off.",
    )
    drift_boost_factor: float = Field(
        1.0,
        ge=1.0,
        description="Budget multiplier for `drift_boost_events` events after a drift (1: off, the default "
        "until benchmarks show it helps; see benchmarks/results/drift_suite.md).",
    )
    drift_boost_events: int = Field(1000, ge=1, description="How long a drift boost lasts, in events.")
    boost_on_label_free_alarm: bool = Field(
        False, description="Also boost the budget on a label-free alarm (needs `drift_boost_factor` > 1)."
    )
    resume_on_drift: bool = Field(
        True, description="A drift resumes label requests paused by the stopping criteria."
    )
    # Batch mode (activestream.decide.batch)
    selection_mode: Literal["per_event", "batch"] = Field(
        "per_event",
        description="`per_event`: the policy decides each event at once. `batch`: events are held in a "
        "window and the budget's share of the window (budget × window) is asked for the most informative, "
        "mutually dissimilar events when it closes; held events' offsets are committed only after their "
        "window is decided (at-least-once: a restart replays and re-decides an open window).",
    )
    batch_window: int = Field(
        100, ge=1, description="Batch mode: a window closes when it holds this many events."
    )
    batch_window_seconds: float = Field(
        0.0, ge=0.0, description="Batch mode: a window also closes this long after its first event (0: off)."
    )
    batch_diversity: float = Field(
        1.0,
        ge=0.0,
        description="Batch mode: λ in score·(1 − max similarity to the events chosen)^λ (0: plain top-k).",
    )
    # Stopping criteria (activestream.stopping)
    stop_on_plateau: bool = Field(
        False,
        description="Pause label requests (all but random ones) when the unbiased accuracy plateaus or the "
        "predictions stabilise; resumed by a drift or by a fall of the unbiased accuracy (a policy without "
        "a random part asks nothing while paused: only a drift resumes it).",
    )
    max_labels: int = Field(
        0,
        ge=0,
        description="Stop asking after this many label requests (0: no cap); with a training topic, the "
        "requests of the whole group.",
    )
    stopping_window: int = Field(
        100,
        ge=1,
        description="Plateau: labels per block compared (last block vs the one before): random ones, else "
        "ones weighted by 1/ask probability (a randomized policy without a random part).",
    )
    stopping_epsilon: float = Field(
        0.01, description="Plateau: an accuracy gain above this between two blocks still counts as progress."
    )
    # Several annotators (activestream.aggregate)
    annotators_per_request: int = Field(
        1, ge=1, description="Labels awaited per request; the model learns their consensus, once."
    )
    aggregation_timeout_seconds: float = Field(
        0.0,
        ge=0.0,
        description="Several annotators: aggregate the labels a request has this long after its first one "
        "(0: wait for all of them or for the request's TTL).",
    )
    aggregation_weighted: bool = Field(
        False, description="Several annotators: weight votes by each annotator's agreement history."
    )
    # Pending labels
    label_ttl_seconds: int = Field(
        86400, gt=0, description="How long a label request waits for its label before it expires."
    )
    pending_max: int = Field(
        100_000,
        ge=1,
        description=(
            "Most label requests waiting at once; the oldest is evicted beyond it. As many answered or"
            " expired request ids are kept to reject a second label (~105 bytes each, allocated at start)."
        ),
    )
    # Input limits
    max_message_bytes: int = Field(
        1_000_000, ge=1, description="Larger events or labels are dead-lettered unparsed."
    )
    max_features: int = Field(1000, ge=1, description="Events with more features are dead-lettered.")
    max_string_chars: int = Field(
        256,
        ge=1,
        description="Events with a longer string feature value (in characters) are dead-lettered "
        "(`schema`): each distinct string is a one-hot feature of the model and travels in checkpoints "
        "and label requests.",
    )
    max_categories: int = Field(
        1000,
        ge=0,
        description="Distinct string values a feature may take; an event bringing one more (or a string "
        "value for a feature beyond `max_features` string-valued ones) is dead-lettered. Bounds the "
        "model and the checkpoint to `max_features` × `max_categories` categories (0: unbounded).",
    )
    # Consumer loop
    poll_timeout_seconds: float = Field(1.0, gt=0.0, description="Longest wait of one poll.")
    max_poll_records: int = Field(500, ge=1, description="Most messages handled per batch.")
    batch_scoring: Literal["auto", "off"] = Field(
        "auto",
        description="`auto`: each run of events between two labels is parsed and scored together "
        "(vectorised for the `logreg` model and the uncertainty measures; the same decisions as `off`). "
        "`off`: one event at a time.",
    )
    session_timeout_ms: int = Field(
        6000,
        ge=1,
        description="Consumer group session timeout: how long the group waits for a member that died "
        "before its partitions go to another (or to its restart). 6 s, Apache Kafka's smallest allowed "
        "by default: a SIGKILLed service is ready again in 6-9 s on the embedded broker, 21 s at 10 s.",
    )
    fetch_max_wait_ms: int = Field(
        50,
        ge=0,
        description="Longest time the broker holds a fetch waiting for data. Short, because the service "
        "reads two topics and kafka-python sends no new fetch while one is held for an idle partition "
        "(500 ms, Kafka's default, made the loop wait for the labels partition: 2.2× slower in "
        "benchmarks/results/service_throughput_crc32c.md).",
    )
    heartbeat_interval_ms: int = Field(
        2000, ge=1, description="Consumer heartbeat interval (a third of the session timeout or less)."
    )
    flush_timeout_seconds: float = Field(
        30.0, gt=0.0, description="Longest wait for the producer to deliver a batch's records."
    )
    # Checkpoints
    checkpoint_path: Path = Field(
        Path("checkpoints/activestream.ckpt"),
        description=(
            "File holding the model, pending labels, offsets; its journal and lock sit beside it. One "
            "process per path: a second one is refused (give each replica its own)."
        ),
    )
    checkpoint_interval_seconds: float = Field(30.0, gt=0.0, description="Time between checkpoints.")
    # Dead letters: nearly everything failing is a bug or a misconfiguration, not bad data.
    dead_letter_max_ratio: float = Field(
        0.9, gt=0.0, le=1.0, description="Stop when more than this fraction of the window is dead-lettered."
    )
    dead_letter_window: int = Field(1000, ge=1, description="Messages in the dead-letter ratio window.")
    dead_letter_max_consecutive: int = Field(
        1000, ge=1, description="Stop after more than this many dead letters in a row."
    )
    # HTTP: metrics and health
    metrics_host: str = Field("0.0.0.0", description="Address the /metrics, /healthz, /readyz server binds.")
    metrics_port: int = Field(8000, ge=0, le=65535, description="Port of that server (0: any free port).")
    liveness_timeout_seconds: float = Field(
        60.0, gt=0.0, description="/healthz fails when the loop has not completed a batch for this long."
    )
    health_check_interval_seconds: float = Field(
        10.0,
        gt=0.0,
        description="Time between consumer lag updates; the longest without a broker reachability check "
        "(between batches, or from a thread while the loop is held in a client call).",
    )
    startup_timeout_seconds: float = Field(
        8.0,
        gt=0.0,
        description="Longest wait at start for the broker to answer; beyond it every command stops with "
        "one line naming `ACTIVESTREAM_BOOTSTRAP_SERVERS` instead of retrying.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO",
        description="Log level of the JSON logs. Kafka clients' own loggers stay at WARNING unless `DEBUG` "
        "(kafka-python's request loggers never go below INFO: they would print SASL passwords).",
    )
    # Kafka security, passed through to kafka-python
    security_protocol: SecurityProtocol = Field(
        SecurityProtocol.PLAINTEXT, description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_mechanism: SaslMechanism | None = Field(
        None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (required by `SASL_*`)."
    )
    sasl_username: str | None = Field(None, description="SASL user name (required by `SASL_*`).")
    sasl_password: SecretStr | None = Field(
        None, description="SASL password (required by `SASL_*`; never logged)."
    )
    ssl_cafile: Path | None = Field(None, description="CA certificate file (PEM) for SSL/SASL_SSL.")
    ssl_certfile: Path | None = Field(None, description="Client certificate file (PEM) for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Client private key file (PEM) for mutual TLS.")

    @field_validator("log_level", "security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def carried_header_names(self) -> frozenset[str]:
        """``carried_headers`` as a set of names."""
        return frozenset(name.strip() for name in self.carried_headers.split(",") if name.strip())

    @field_validator(
        "events_topic",
        "requests_topic",
        "labels_topic",
        "dead_letter_topic",
        "decisions_topic",
        "training_topic",
        "snapshot_topic",
    )
    @classmethod
    def _legal_topic(cls, name: str) -> str:
        # Kafka's rule for topic names: the broker would refuse any other one, later and less clearly.
        if name and (len(name) > 249 or name in (".", "..") or not _TOPIC_NAME.fullmatch(name)):
            raise ValueError(
                f"{name!r} is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)"
            )
        return name

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        from activestream.models import MODELS

        return _known(name, MODELS)

    @field_validator("measure")
    @classmethod
    def _known_measure(cls, name: str) -> str:
        from activestream.score.registry import MEASURES

        return _known(name, MEASURES)

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, name: str) -> str:
        from activestream.decide.registry import POLICIES

        return _known(name, POLICIES)

    @field_validator("drift_detector")
    @classmethod
    def _known_detector(cls, name: str) -> str:
        from activestream.drift.detectors import DETECTORS

        return _known(name, DETECTORS)

    @field_validator("label_free_detector")
    @classmethod
    def _known_label_free_detector(cls, name: str) -> str:
        from activestream.drift.detectors import DETECTORS

        return name and _known(name, DETECTORS)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems = [*self._topic_problems(), *self._security_problems()]
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            problems.append(
                f"{env_var('heartbeat_interval_ms')} must be below {env_var('session_timeout_ms')}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _topic_problems(self) -> list[str]:
        names = ("events_topic", "requests_topic", "labels_topic", "dead_letter_topic")
        names += ("training_topic",) if self.training_topic else ()
        names += ("snapshot_topic",) if self.snapshot_topic else ()
        problems = []
        if self.snapshot_topic and not self.training_topic:
            problems.append(f"{env_var('snapshot_topic')} needs {env_var('training_topic')}")
        topics = [getattr(self, name) for name in names]
        if len(set(topics)) != len(topics):
            count = ("four", "five", "six")[len(names) - 4]
            problems.append(f"{', '.join(env_var(n) for n in names)} must be {count} different topics")
        return problems

    def _security_problems(self) -> list[str]:
        problems = []
        if self.security_protocol.startswith("SASL_"):
            missing = [
                env_var(name)
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if not getattr(self, name)
            ]
            if missing:
                problems.append(f"{self.security_protocol} needs {', '.join(missing)}")
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                problems.append(f"{env_var(name)}: no such file: {path}")
        return problems

    def kafka_security_kwargs(self) -> dict[str, Any]:
        """The security options as kafka-python keyword arguments (only those that are set).

        Raises ``ConfigError`` when they are inconsistent or an SSL file is missing (checked again here:
        files can disappear after start).

        >>> Settings().kafka_security_kwargs()
        {'security_protocol': 'PLAINTEXT'}
        """
        # Imported here: config.py imports this module (it re-exports Settings), and ConfigError's home is
        # config.py, where the messages users see have always named it.
        from activestream.config import ConfigError

        problems = self._security_problems()
        if problems:
            raise ConfigError("; ".join(problems))
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol.value}
        if self.sasl_mechanism is not None:
            kwargs["sasl_mechanism"] = self.sasl_mechanism.value
        if self.sasl_username is not None:
            kwargs["sasl_plain_username"] = self.sasl_username
        if self.sasl_password is not None:
            kwargs["sasl_plain_password"] = self.sasl_password.get_secret_value()
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None:
                kwargs[name] = str(path)
        return kwargs


def _known(name: str, registry: dict[str, Any]) -> str:
    if name not in registry:
        raise ValueError(f"unknown name {name!r}; choose one of: {', '.join(sorted(registry))}")
    return name
