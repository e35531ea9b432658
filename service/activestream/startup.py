"""What the loop checks and reports before its first poll, beside restoring its state: the topics it
needs (created, or checked to exist) and the build information it serves.

Restoring the checkpoint and the journal is :meth:`activestream.checkpointing.Checkpointing.restore`.
"""

from __future__ import annotations

from activestream import __version__
from activestream.config import ConfigError, Settings, env_var
from activestream.drift.watch import DriftWatch
from activestream.learner import ActiveLearner
from activestream.metrics import Metrics
from activestream.transport.base import Admin

__all__ = ["announce", "prepare_topics", "service_topics"]


def service_topics(settings: Settings) -> list[str]:
    """The topics the service reads and writes (the decisions and training topics when they are set).

    >>> service_topics(Settings(decisions_topic="audit"))
    ['events', 'labels', 'label-requests', 'dead-letters', 'audit']
    """
    s = settings
    names = (
        s.events_topic,
        s.labels_topic,
        s.requests_topic,
        s.dead_letter_topic,
        s.decisions_topic,
        s.training_topic,
        s.snapshot_topic,
    )
    return [topic for topic in names if topic]


def prepare_topics(admin: Admin | None, settings: Settings) -> None:
    """Create the missing topics (``create_topics``), or raise ``ConfigError`` naming those that do not
    exist, or a training or snapshot topic of several partitions; nothing without an admin client."""
    topics = service_topics(settings)
    if admin is not None and settings.create_topics:
        admin.ensure_topics(topics)
    elif admin is not None and (missing := admin.missing_topics(topics)):
        raise ConfigError(
            f"topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}: create them, check "
            f"the ACTIVESTREAM_*_TOPIC names, or set {env_var('create_topics')}=true"
        )
    for name in ("training_topic", "snapshot_topic"):
        topic = getattr(settings, name)
        if admin is not None and topic and (count := admin.partition_count(topic) or 1) != 1:
            # Every replica reads one partition in one order: records on the others would be read by none.
            raise ConfigError(
                f"{env_var(name)}: topic {topic} has {count} partitions; it needs exactly one (create it "
                "with --partitions 1)"
            )


def announce(metrics: Metrics, settings: Settings, learner: ActiveLearner, watch: DriftWatch) -> None:
    """Serve the build information and the adaptation in use, and report the service up."""
    measure, _, policy = learner.strategy.partition("/")
    metrics.build_info(__version__, settings.model, measure, policy)
    arms = watch.status()
    if arms is not None:
        metrics.adaptation(arms.detector)
    metrics.up(True)
