// The run page, live: follows the run's Server-Sent Events (live-follow.js) and swaps in the
// server-rendered parts of the page (steps with their sanitized Markdown, budget, outputs,
// timeline) after each event. The page is complete without this script; it only keeps it
// current.
(function () {
  "use strict";

  var root = document.getElementById("run");
  if (!root || !window.liveFollow) return;
  var live = window.liveFollow;

  var FINISHED = ["completed", "failed"];
  var EVENT_TYPES = ["run.updated", "run.started", "run.step", "run.completed", "run.failed"];

  var stream = live.follow(root, {
    eventTypes: EVENT_TYPES,
    snapshotType: "run.updated",
    ended: function () { return state.finished; },
    onFrame: onFrame,
    onPartial: swapFrom
  });
  var state = stream.state;
  state.finished = FINISHED.indexOf(root.dataset.status) >= 0;

  function setStatus(status) {
    if (!status) return;
    root.dataset.status = status;
    var finished = FINISHED.indexOf(status) >= 0;
    if (finished && !state.finished) {
      state.finished = true;
      stream.setIndicator("finished");
    }
  }

  // ---- Step cards: a card's body is loaded when it is opened, and kept across swaps ----------
  var bodies = {};
  function loadBody(card) {
    var holder = card.querySelector("[data-step-body]");
    if (!holder) return;
    var number = card.dataset.step;
    if (holder.hasAttribute("data-loaded")) { bodies[number] = holder.outerHTML; return; }
    if (bodies[number]) { holder.outerHTML = bodies[number]; return; }
    var url = holder.dataset.url;
    if (!url || holder.dataset.loading) return;
    holder.dataset.loading = "1";
    live.fetchHtml(url)
      .then(function (html) {
        var body = live.parseHtml(html).querySelector("[data-step-body]");
        if (!body) return;
        bodies[number] = body.outerHTML;
        var current = card.querySelector("[data-step-body]");
        if (current) current.replaceWith(document.importNode(body, true));
      })
      .catch(function () { delete holder.dataset.loading; /* the link in the card still works */ });
  }
  document.addEventListener("toggle", function (event) {
    var card = event.target;
    if (card.matches && card.matches("details[data-step]") && card.open) loadBody(card);
  }, true);
  document.querySelectorAll("details[data-step][open]").forEach(loadBody);

  // ---- Server-rendered partials --------------------------------------------------------------
  function swapFrom(doc) {
    // Steps the reader opened stay open after the swap.
    var open = {};
    document.querySelectorAll("details[data-step][open]").forEach(function (el) { open[el.dataset.step] = true; });
    live.swapParts(doc);
    document.querySelectorAll("details[data-step]").forEach(function (el) {
      if (open[el.dataset.step]) { el.open = true; loadBody(el); }
    });
    var info = doc.querySelector("[data-run-info]");
    if (info) setStatus(info.dataset.status);
  }

  function onFrame(type, data, seq, sequenced) {
    if (sequenced) stream.refresh();
    else if (data.status && data.status !== root.dataset.status) stream.refresh(); // changed while we were away
    if (type === "run.completed" || type === "run.failed") setStatus(type === "run.completed" ? "completed" : "failed");
    root.dispatchEvent(new CustomEvent("run:event", { detail: { type: type, data: data } }));
  }

  window.runLive = { state: state, refresh: stream.refresh };
  stream.start();
})();
