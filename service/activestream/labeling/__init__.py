"""The labeling page: a small web app where people answer label requests (``activestream label-ui``).

- :mod:`~activestream.labeling.queue` — the open requests, by priority (pure);
- :mod:`~activestream.labeling.classes` — which labels a request offers, and how typed text becomes one;
- :mod:`~activestream.labeling.page` — the server-rendered HTML, its script and its styles;
- :mod:`~activestream.labeling.server` — the HTTP server (stdlib ``http.server``), the JSON API and the
  Kafka shell: a consumer of the label-requests and labels topics (its own group, never committing, so a
  restart shows every open request again) and a producer of labels.
"""

from activestream.labeling.classes import Choice, label_choices, parse_label_text
from activestream.labeling.queue import OpenRequests
from activestream.labeling.server import LabelingApp, LabelingServer, run_label_ui

__all__ = [
    "Choice",
    "LabelingApp",
    "LabelingServer",
    "OpenRequests",
    "label_choices",
    "parse_label_text",
    "run_label_ui",
]
