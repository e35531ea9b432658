"""The labeling page in a real browser, end to end on the embedded broker.

The service runs (Kafka transport), events arrive, their label requests appear on the page served by
``run_label_ui`` (the ``activestream label-ui`` command), a click labels one, a key press another, and the
service learns both (``activestream_labels_total{status="learned"}``).

Browser: Debian's ``chromium`` (``deploy/tools/install-chromium.sh``) driven by Playwright for Python
(the ``dev`` extra); Playwright's own browser downloads are never used. Under ``CI=true`` a missing
chromium or Playwright fails the test; elsewhere it is skipped with the reason.

``ACTIVESTREAM_UPDATE_SCREENSHOTS=1`` also writes the page's screenshot to
``docs/images/labeling-page.png`` (the README shows it); otherwise it goes to the test's temporary folder.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from activestream.config import Settings
from activestream.learner import make_learner
from activestream.metrics import Metric
from activestream.service import Service

pytestmark = pytest.mark.broker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "images" / "labeling-page.png"


def _need_browser() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append("chromium (run deploy/tools/install-chromium.sh)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright (pip install -e '.[dev]')")
    if not missing:
        return
    message = "the labeling page's browser test needs " + " and ".join(missing)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


def _trained_learner():
    """Knows both classes already, so that each request offers two class buttons."""
    learner = make_learner("logreg", "entropy", "split", budget=1.0, seed=1)
    for i in range(40):
        learner.learn_one({"size": float(i % 10), "weight": 1.0}, i % 10 >= 5)
    return learner


def test_a_request_appears_on_the_page_and_a_click_labels_it(broker, unique_name, tmp_path):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    from activestream.labeling import run_label_ui
    from activestream.transport.kafka import KafkaAdminAdapter, KafkaConsumerAdapter, KafkaProducerAdapter

    settings = Settings(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=unique_name("g"),
        events_topic=unique_name("events"),
        requests_topic=unique_name("requests"),
        labels_topic=unique_name("labels"),
        dead_letter_topic=unique_name("dlq"),
        policy="split",  # with a budget of 1 every event is asked
        budget=1.0,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        poll_timeout_seconds=0.2,
        checkpoint_path=tmp_path / "state.ckpt",
    )
    service = Service(
        settings,
        KafkaConsumerAdapter.from_settings(settings),
        KafkaProducerAdapter.from_settings(settings),
        KafkaAdminAdapter.from_settings(settings),
        learner=_trained_learner(),
    )
    service_thread = threading.Thread(target=service.run, name="service", daemon=True)
    service_thread.start()
    port, ui_stop = _free_port(), threading.Event()
    ui_thread = threading.Thread(
        target=run_label_ui, args=(settings, "127.0.0.1", port), kwargs={"stop": ui_stop}, daemon=True
    )
    ui_thread.start()
    url = f"http://127.0.0.1:{port}/"

    def learned() -> float:
        return service.metrics.value(Metric.LABELS, status="learned") or 0.0

    try:
        _wait_until(service.health.ready, "the service joined its consumer group")
        producer = KafkaProducerAdapter.from_settings(settings)
        events = {
            "order-17": {"size": 8.5, "weight": 2.25},
            "order-18": {"size": 1.5, "weight": 0.75},
            "order-19": {"size": 4.9, "weight": 1.0},
        }
        for event_id, features in events.items():
            body = {"id": event_id, "features": features}
            producer.produce(settings.events_topic, _json(body), key=event_id.encode())
        producer.flush(10.0)
        producer.close()
        _wait_until(
            lambda: (service.metrics.value(Metric.LABEL_REQUESTS) or 0) >= 3, "three requests were made"
        )

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            deadline = time.monotonic() + 60
            page.goto(url)
            while page.locator("article.request").count() < 3:
                assert time.monotonic() < deadline, "the requests never appeared on the page"
                page.wait_for_timeout(500)
                page.goto(url)
            cards = page.locator("article.request")
            # Highest score first; every card shows the features, the guess and why it was asked.
            first = cards.first
            expect(first.locator("table.features")).to_contain_text("size")
            expect(first.locator(".guess")).not_to_have_text("—")
            expect(first.locator(".why")).to_contain_text("split")
            expect(first.locator("button.choice")).to_have_count(2)

            page.fill("#annotator", "Ada")
            page.locator("#annotator").press("Tab")  # "change": the name is kept in a cookie
            shot = (
                SCREENSHOT
                if os.environ.get("ACTIVESTREAM_UPDATE_SCREENSHOTS") == "1"
                else tmp_path / "page.png"
            )
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000

            # One click labels the first request.
            clicked = first.get_attribute("data-event-id")
            first.locator('button.choice[data-key="1"]').click()
            expect(page.locator(f'article.request[data-event-id="{clicked}"]')).to_have_count(0)
            expect(page.locator("#status")).to_contain_text(f"Labeled {clicked}")
            _wait_until(lambda: learned() >= 1, "the service learned the clicked label", 30)

            # One key labels the next (keys 1..9 pick the class shown with that number).
            page.locator("h1").click()  # focus away from the text fields
            keyed = cards.first.get_attribute("data-event-id")
            page.keyboard.press("2")
            expect(page.locator(f'article.request[data-event-id="{keyed}"]')).to_have_count(0)
            _wait_until(lambda: learned() >= 2, "the service learned the keyed label", 30)

            # The annotator's name survived in a cookie.
            page.goto(url)
            expect(page.locator("#annotator")).to_have_value("Ada")
            expect(page.locator("article.request")).to_have_count(1)
            assert errors == []
            browser.close()
        assert learned() == 2
        assert service.metrics.value(Metric.DEAD_LETTERS, reason="unknown_request") == 0
    finally:
        ui_stop.set()
        service.request_stop()
        service_thread.join(30)
        ui_thread.join(30)


def _json(value: object) -> bytes:
    import json

    return json.dumps(value).encode()
