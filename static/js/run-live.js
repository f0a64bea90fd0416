// The run page, live: follows the run's Server-Sent Events and swaps in the server-rendered
// parts of the page (steps with their sanitized Markdown, budget, outputs, timeline) after each
// event. The page is complete without this script; it only keeps it current.
//
// Same approach as execution-live.js: EventSource from the last event the server rendered
// (`?lastEventId=`), frames already seen are ignored, EventSource reconnects by itself after a
// dropped connection (sending Last-Event-ID); when it gives up (an HTTP error) this script
// reconnects with back-off and meanwhile polls the partial. A visible indicator says which.
(function () {
  "use strict";

  var root = document.getElementById("run");
  if (!root) return;

  var FINISHED = ["completed", "failed"];
  var EVENT_TYPES = ["run.updated", "run.started", "run.step", "run.completed", "run.failed"];
  var POLL_MS = 3000;
  var MAX_BACKOFF_MS = 30000;

  var state = {
    lastId: parseInt(root.dataset.lastEventId || "0", 10) || 0,
    finished: FINISHED.indexOf(root.dataset.status) >= 0,
    source: null,
    failures: 0,
    retryTimer: null,
    pollTimer: null,
    refreshing: null,
    refreshAgain: false
  };

  var indicator = document.getElementById("live-indicator");
  var INDICATOR_TEXT = {
    connecting: "Connecting to live updates…",
    live: "Live",
    reconnecting: "Connection lost — reconnecting…",
    polling: "Live stream unavailable — refreshing every few seconds",
    finished: "Finished — no more updates",
    unsupported: "Live updates unavailable in this browser — refreshing every few seconds"
  };
  function setIndicator(name) {
    if (!indicator || indicator.dataset.state === name) return;
    indicator.dataset.state = name;
    var text = indicator.querySelector("[data-live-text]");
    if (text) text.textContent = INDICATOR_TEXT[name] || name;
  }

  function setStatus(status) {
    if (!status) return;
    root.dataset.status = status;
    var finished = FINISHED.indexOf(status) >= 0;
    if (finished && !state.finished) {
      state.finished = true;
      setIndicator("finished");
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
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var body = doc.querySelector("[data-step-body]");
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
  function swapFrom(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    // Steps the reader opened stay open after the swap.
    var open = {};
    document.querySelectorAll("details[data-step][open]").forEach(function (el) { open[el.dataset.step] = true; });
    var parts = doc.querySelectorAll("[data-swap][id]");
    for (var i = 0; i < parts.length; i++) {
      var current = document.getElementById(parts[i].id);
      if (current) current.replaceWith(document.importNode(parts[i], true));
    }
    document.querySelectorAll("details[data-step]").forEach(function (el) {
      if (open[el.dataset.step]) { el.open = true; loadBody(el); }
    });
    var info = doc.querySelector("[data-run-info]");
    if (info) setStatus(info.dataset.status);
  }

  function refresh() {
    if (state.refreshing) { state.refreshAgain = true; return state.refreshing; }
    state.refreshing = fetch(root.dataset.partialUrl, {
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" }
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(swapFrom)
      .catch(function () { /* the next poll or event tries again */ })
      .then(function () {
        state.refreshing = null;
        if (state.refreshAgain) { state.refreshAgain = false; refresh(); }
      });
    return state.refreshing;
  }

  function onFrame(event) {
    var data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    // The snapshot that opens each connection carries no id (it is not a stored event).
    var sequenced = event.type !== "run.updated" && event.lastEventId !== "";
    if (sequenced) {
      var seq = parseInt(event.lastEventId, 10);
      if (!isNaN(seq)) {
        if (seq <= state.lastId) return; // replayed after a reconnect: already applied
        state.lastId = seq;
        root.dataset.lastEventId = String(seq);
      }
      refresh();
    } else if (data.status && data.status !== root.dataset.status) {
      refresh(); // changed while we were away
    }
    if (event.type === "run.completed" || event.type === "run.failed") setStatus(event.type === "run.completed" ? "completed" : "failed");
    root.dispatchEvent(new CustomEvent("run:event", { detail: { type: event.type, data: data } }));
  }

  function startPolling(reason) {
    if (state.pollTimer) return;
    setIndicator(reason || "polling");
    state.pollTimer = setInterval(function () {
      refresh();
      if (state.finished && !state.source) stopPolling();
    }, POLL_MS);
    refresh();
  }
  function stopPolling() {
    if (state.pollTimer) clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  function connect() {
    if (!window.EventSource) { startPolling("unsupported"); return; }
    var url = root.dataset.eventsUrl + "?lastEventId=" + encodeURIComponent(String(state.lastId));
    var source = new EventSource(url, { withCredentials: true });
    state.source = source;
    if (!state.finished) setIndicator(state.failures ? "reconnecting" : "connecting");
    source.onopen = function () {
      state.failures = 0;
      stopPolling();
      if (!state.finished) setIndicator("live");
    };
    for (var i = 0; i < EVENT_TYPES.length; i++) source.addEventListener(EVENT_TYPES[i], onFrame);
    source.onerror = function () {
      if (source.readyState === 2) {
        // Closed for good: 204 (nothing more will come) or an HTTP error.
        source.close();
        if (state.source === source) state.source = null;
        if (state.finished) { setIndicator("finished"); stopPolling(); return; }
        scheduleReconnect();
      } else if (!state.finished) {
        setIndicator("reconnecting");
      }
    };
  }

  function scheduleReconnect() {
    state.failures += 1;
    if (state.failures >= 2) startPolling("polling");
    else setIndicator("reconnecting");
    var delay = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, state.failures - 1));
    delay = delay / 2 + Math.random() * (delay / 2);
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(connect, delay);
  }

  window.runLive = { state: state, refresh: refresh };
  if (state.finished) setIndicator("finished");
  connect();
})();
