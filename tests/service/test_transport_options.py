"""The settings the Kafka adapters read: static group membership and the input bounds (no broker needed)."""

from __future__ import annotations

import pytest

from activestream.config import ConfigError, Settings, load_settings
from activestream.transport import kafka as kafka_transport
from activestream.transport.kafka.consumer import _static_membership
from activestream.transport.options import CONSUMER_OPTIONAL_SETTINGS, FromSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("ACTIVESTREAM_"):
            monkeypatch.delenv(name)


class Recorder(FromSettings):
    """An adapter that records its constructor's keywords."""

    SETTINGS = ("group_id",)
    OPTIONAL_SETTINGS = CONSUMER_OPTIONAL_SETTINGS

    def __init__(self, **kwargs):
        self.kwargs = kwargs


def test_static_membership_is_off_by_default_and_read_from_the_environment(monkeypatch):
    assert load_settings().group_instance_id == ""
    monkeypatch.setenv("ACTIVESTREAM_GROUP_INSTANCE_ID", "activestream-0")
    assert load_settings().group_instance_id == "activestream-0"


@pytest.mark.parametrize("name", ["a b", "pod/0", "x" * 250])
def test_a_group_instance_id_kafka_would_refuse_is_a_config_error(name):
    with pytest.raises(ConfigError, match="ACTIVESTREAM_GROUP_INSTANCE_ID"):
        load_settings(group_instance_id=name)


def test_the_service_consumer_gets_the_instance_id_and_consumers_of_other_groups_do_not():
    settings = Settings(group_id="activestream", group_instance_id="activestream-0")
    assert Recorder.from_settings(settings).kwargs["group_instance_id"] == "activestream-0"
    # The annotator, the labeling page and the demo build consumers of their own groups from the settings.
    annotator = Recorder.from_settings(settings, group_id="activestream-annotator")
    assert "group_instance_id" not in annotator.kwargs
    explicit = Recorder.from_settings(settings, group_id="other", group_instance_id="other-0")
    assert explicit.kwargs["group_instance_id"] == "other-0"
    assert Recorder.from_settings(settings, group_id="activestream").kwargs["group_instance_id"]


def test_both_consumer_adapters_read_the_instance_id():
    assert "group_instance_id" in kafka_transport.KafkaConsumerAdapter.OPTIONAL_SETTINGS
    confluent = pytest.importorskip("activestream.transport.confluent")
    assert "group_instance_id" in confluent.ConfluentConsumerAdapter.OPTIONAL_SETTINGS


def test_kafka_python_gets_group_instance_id_only_when_set():
    assert _static_membership("") == {}
    assert _static_membership(None) == {}
    assert _static_membership("pod-0") == {"group_instance_id": "pod-0"}


def test_the_installed_kafka_python_supports_static_membership():
    from kafka import KafkaConsumer

    assert "group_instance_id" in KafkaConsumer.DEFAULT_CONFIG


def test_string_bounds_settings(monkeypatch):
    settings = load_settings()
    assert (settings.max_string_chars, settings.max_categories) == (256, 1000)
    monkeypatch.setenv("ACTIVESTREAM_MAX_STRING_CHARS", "64")
    monkeypatch.setenv("ACTIVESTREAM_MAX_CATEGORIES", "0")
    assert (load_settings().max_string_chars, load_settings().max_categories) == (64, 0)
    with pytest.raises(ConfigError, match="ACTIVESTREAM_MAX_STRING_CHARS"):
        load_settings(max_string_chars=0)
    with pytest.raises(ConfigError, match="ACTIVESTREAM_MAX_CATEGORIES"):
        load_settings(max_categories=-1)
