"""The labeling page's HTML (server-rendered), its script and its styles.

Everything that comes from a request — feature names and values, labels, strategy, reason — is user data
and is HTML-escaped (``html.escape`` with quotes) wherever it lands, text or attribute. The script is
served from ``/static/app.js`` (no inline script: the page's Content-Security-Policy forbids it) and
only ever sets ``textContent``, never HTML.

Without the script the page still works: every class button and the free-text field submit a plain
form to ``POST /labels``.

>>> from datetime import UTC, datetime
>>> from activestream.messages import LabelRequest
>>> t = datetime(2024, 1, 1, tzinfo=UTC)
>>> request = LabelRequest(
...     request_id="r", event_id="e-1", features={"<script>": "</td>alert(1)"}, predicted_label="a",
...     probabilities={"a": 0.6, "b": 0.4}, score=0.8, strategy="entropy/split", reason="informative",
...     threshold=0.5, model_version=3, created_at=t, expires_at=t)
>>> page = render_page([request], annotator='"><b>', now_ms=int(t.timestamp() * 1000) + 5000)
>>> "<script>" in page, "&lt;script&gt;" in page, "&lt;/td&gt;alert(1)" in page, '"><b>' in page
(False, True, True, False)
>>> "5 s ago" in page
True
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Final

from activestream.labeling.classes import label_choices
from activestream.messages import LabelRequest

__all__ = ["APP_JS", "CONTENT_SECURITY_POLICY", "STYLE_CSS", "render_page"]

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _age(created_ms: int, now_ms: int) -> str:
    seconds = max(0, (now_ms - created_ms) // 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _feature_text(value: object) -> str:
    # Strings quoted, so that the string "1" and the number 1 look different; numbers and booleans bare.
    return json.dumps(value) if isinstance(value, str | bool) else str(value)


def _render_request(request: LabelRequest, index: int, now_ms: int) -> str:
    choices = label_choices(request)
    created_ms = int(request.created_at.timestamp() * 1000)
    features = "".join(
        f'<tr><th scope="row">{_e(name)}</th><td>{_e(_feature_text(value))}</td></tr>'
        for name, value in request.features.items()
    )
    guess = "—" if request.predicted_label is None else str(request.predicted_label)
    probabilities = "".join(
        f'<li><span class="class">{_e(c.display)}</span>'
        f'<meter min="0" max="1" value="{c.probability:.4f}"></meter>'
        f'<span class="p">{c.probability:.1%}</span></li>'
        for c in choices
    )
    buttons = "".join(
        f'<button type="submit" name="label_json" value="{_e(json.dumps(c.value))}" class="choice" '
        f'data-key="{c.key}" data-label="{_e(json.dumps(c.value))}">'
        f"<kbd>{c.key}</kbd> {_e(c.display)}</button>"
        for c in choices
    )
    hidden = (
        f'<input type="hidden" name="request_id" value="{_e(request.request_id)}">'
        f'<input type="hidden" name="event_id" value="{_e(request.event_id)}">'
    )
    return f"""
<article class="request{" current" if index == 0 else ""}" data-request-id="{_e(request.request_id)}"
    data-event-id="{_e(request.event_id)}">
  <header>
    <h2>Event <code>{_e(request.event_id)}</code></h2>
    <p class="meta">score <strong>{request.score:.3f}</strong> · asked {_e(_age(created_ms, now_ms))}
      · model version {request.model_version}</p>
  </header>
  <div class="columns">
    <table class="features"><caption>Features</caption><tbody>{features}</tbody></table>
    <div class="model">
      <p>Model's guess: <strong class="guess">{_e(guess)}</strong></p>
      <ul class="probabilities">{probabilities}</ul>
      <p class="why">Why asked: <strong>{_e(request.reason)}</strong> by <code>{_e(request.strategy)}</code>
        (score {request.score:.3f} vs threshold {request.threshold:.3f})</p>
    </div>
  </div>
  <form class="answer" method="post" action="/labels">
    {hidden}
    <div class="choices">{buttons}</div>
    <div class="free">
      <label>Other label <input type="text" name="label_text" maxlength="200" autocomplete="off"></label>
      <button type="submit" class="submit-text">Submit</button>
    </div>
  </form>
</article>"""


def render_page(
    requests: Sequence[LabelRequest], annotator: str, now_ms: int, total: int | None = None, flash: str = ""
) -> str:
    """The whole page: the annotator field, then the open requests, highest priority first."""
    cards = "".join(_render_request(r, i, now_ms) for i, r in enumerate(requests))
    if not requests:
        cards = '<p class="empty">No open label requests. New ones appear here as the service asks.</p>'
    shown = len(requests) if total is None else total
    message = f'<p class="flash" role="status">{_e(flash)}</p>' if flash else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>activestream · label requests</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
</head>
<body>
<header class="top">
  <h1>Label requests <span class="count" id="count">{shown}</span></h1>
  <form id="who" method="get" action="/">
    <label>Annotator <input id="annotator" name="annotator" value="{_e(annotator)}" maxlength="100"
      required placeholder="your name"></label>
  </form>
  <p class="help">Keys <kbd>1</kbd>–<kbd>9</kbd> label the first request with that class;
    the text field takes any other label.</p>
</header>
<div id="status" role="status" aria-live="polite"></div>
{message}
<main id="requests">{cards}</main>
</body>
</html>
"""


STYLE_CSS: Final = """
:root { font-family: system-ui, sans-serif; color: #1d2430; background: #f4f6f9; }
body { margin: 0 auto; max-width: 980px; padding: 1rem; }
header.top { display: flex; flex-wrap: wrap; align-items: baseline; gap: 1rem 2rem; }
h1 { font-size: 1.4rem; margin: 0; }
.count { background: #2f5bd3; color: white; border-radius: 1rem; padding: 0 .6rem; font-size: 1rem; }
.help { color: #5a6372; font-size: .9rem; margin: 0; }
#status { min-height: 1.4rem; margin: .5rem 0; color: #1c7c3a; }
#status.error, .flash { color: #b3261e; }
.request { background: white; border: 1px solid #d8dde6; border-radius: 8px; padding: .8rem 1rem;
  margin: 0 0 1rem; }
.request.current { border-color: #2f5bd3; box-shadow: 0 0 0 2px #2f5bd333; }
.request h2 { font-size: 1.05rem; margin: 0; }
.meta { color: #5a6372; margin: .2rem 0 .6rem; font-size: .9rem; }
.columns { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1rem; }
.features { border-collapse: collapse; width: 100%; font-size: .9rem; display: block; max-height: 16rem;
  overflow: auto; }
.features caption { text-align: left; font-weight: 600; }
.features th { text-align: left; font-weight: 500; padding: .1rem .8rem .1rem 0; color: #3a4250;
  word-break: break-all; }
.features td { font-family: ui-monospace, monospace; word-break: break-all; }
.probabilities { list-style: none; padding: 0; margin: .3rem 0; }
.probabilities li { display: grid; grid-template-columns: 7rem 1fr 4rem; gap: .5rem; align-items: center; }
.probabilities .class { overflow: hidden; text-overflow: ellipsis; }
.probabilities meter { width: 100%; }
.why { font-size: .9rem; color: #3a4250; }
.choices { display: flex; flex-wrap: wrap; gap: .5rem; margin: .6rem 0; }
button { font: inherit; border: 1px solid #2f5bd3; background: #2f5bd3; color: white; border-radius: 6px;
  padding: .35rem .8rem; cursor: pointer; }
button:hover, button:focus { background: #2448aa; }
kbd { background: #ffffff33; border-radius: 3px; padding: 0 .3rem; font-family: ui-monospace, monospace; }
.help kbd { background: #e4e8ef; }
.free { display: flex; gap: .5rem; align-items: center; }
.free input { font: inherit; padding: .3rem; }
.empty { color: #5a6372; }
@media (max-width: 700px) { .columns { grid-template-columns: 1fr; } }
"""

APP_JS: Final = r"""
"use strict";
(function () {
  const COOKIE = "activestream_annotator";
  const field = document.getElementById("annotator");
  const status = document.getElementById("status");

  function readCookie() {
    for (const part of document.cookie.split(";")) {
      const [name, ...rest] = part.trim().split("=");
      if (name === COOKIE) return decodeURIComponent(rest.join("="));
    }
    return "";
  }
  function annotator() { return field.value.trim(); }
  function say(text, error) {
    status.textContent = text;
    status.className = error ? "error" : "";
  }
  if (!field.value) field.value = readCookie();
  field.addEventListener("change", function () {
    document.cookie = COOKIE + "=" + encodeURIComponent(annotator()) +
      "; path=/; max-age=31536000; SameSite=Strict";
  });
  document.getElementById("who").addEventListener("submit", function (e) { e.preventDefault(); });

  function cards() { return Array.from(document.querySelectorAll("article.request")); }
  function markCurrent() {
    cards().forEach(function (card, i) { card.classList.toggle("current", i === 0); });
    document.getElementById("count").textContent = String(cards().length);
  }

  // answer: {label: <JSON scalar>} from a class button, or {label_text: "..."} from the text field.
  async function post(card, answer) {
    const name = annotator();
    if (!name) { say("Enter your name first (the Annotator field).", true); field.focus(); return; }
    const body = Object.assign({
      request_id: card.dataset.requestId,
      event_id: card.dataset.eventId,
      annotator: name,
    }, answer);
    let response;
    try {
      response = await fetch("/api/labels", {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify(body),
      });
    } catch (err) {
      say("Could not reach the server: " + err, true);
      return;
    }
    if (response.status === 201) {
      card.remove();
      markCurrent();
      const saved = await response.json();
      say("Labeled " + body.event_id + " as " + JSON.stringify(saved.label) + ".");
    } else {
      let detail = response.statusText;
      try { detail = (await response.json()).error || detail; } catch (err) { /* not JSON */ }
      say("Not saved: " + detail, true);
      if (response.status === 404) { card.remove(); markCurrent(); }
    }
  }

  document.addEventListener("click", function (e) {
    const button = e.target.closest("button.choice");
    if (!button) return;
    e.preventDefault();
    post(button.closest("article.request"), {label: JSON.parse(button.dataset.label)});
  });
  document.addEventListener("submit", function (e) {
    const form = e.target.closest("form.answer");
    if (!form) return;
    e.preventDefault();
    const text = form.querySelector("input[name=label_text]").value.trim();
    if (text) post(form.closest("article.request"), {label_text: text});
  });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = (document.activeElement && document.activeElement.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA") return;
    if (!/^[1-9]$/.test(e.key)) return;
    const card = cards()[0];
    if (!card) return;
    const button = card.querySelector('button.choice[data-key="' + e.key + '"]');
    if (!button) return;
    e.preventDefault();
    post(card, {label: JSON.parse(button.dataset.label)});
  });

  // New requests: reload when the server has some this page does not show (not while typing).
  setInterval(async function () {
    const tag = (document.activeElement && document.activeElement.tagName) || "";
    if (tag === "INPUT") return;
    try {
      const response = await fetch("/api/requests?annotator=" + encodeURIComponent(annotator()));
      const open = (await response.json()).requests;
      const shown = new Set(cards().map(function (c) { return c.dataset.requestId; }));
      if (open.some(function (r) { return !shown.has(r.request_id); })) window.location.reload();
    } catch (err) { /* the next tick tries again */ }
  }, 3000);
  markCurrent();
})();
"""
