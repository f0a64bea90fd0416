// Following a page's Server-Sent Events, as the live pages (execution-live.js, run-live.js) do:
// the stream, its indicator, reconnection and the polling fallback, and the server-rendered
// partials that keep the page current. Each page says what its events mean.
//
// Stream: EventSource on the root's `data-events-url`, starting after the last event the server
// rendered (`?lastEventId=` from `data-last-event-id`). EventSource itself reconnects after a
// dropped connection and sends Last-Event-ID, so the server replays what was missed; frames
// whose id was already seen are ignored, so nothing is applied twice. When EventSource gives up
// (an HTTP error, e.g. a proxy's 502 while the web process restarts) the stream is reopened
// with back-off, and meanwhile the root's `data-partial-url` is polled so the page stays
// current. A visible indicator (#live-indicator) says which is happening.
(function () {
  "use strict";

  var POLL_MS = 3000;
  var MAX_BACKOFF_MS = 30000;
  var INDICATOR_TEXT = {
    connecting: "Connecting to live updates…",
    live: "Live",
    reconnecting: "Connection lost — reconnecting…",
    polling: "Live stream unavailable — refreshing every few seconds",
    finished: "Finished — no more updates",
    idle: "Stopped — still following: a resume from anywhere shows here",
    unsupported: "Live updates unavailable in this browser — refreshing every few seconds"
  };

  // A server-rendered fragment of this site (the server tells page loads from these by the
  // header).
  function fetchHtml(url) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      });
  }

  function parseHtml(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  // Each part of `doc` marked `data-swap` replaces the page's element of the same id.
  function swapParts(doc) {
    var parts = doc.querySelectorAll("[data-swap][id]");
    for (var i = 0; i < parts.length; i++) {
      var current = document.getElementById(parts[i].id);
      if (current) current.replaceWith(document.importNode(parts[i], true));
    }
  }

  // Follows `root`'s stream once `start()` is called. Options:
  //   eventTypes     the frame types to listen to
  //   snapshotType   the frame that opens each connection: the current state, not a stored
  //                  event, so it carries no id
  //   ended()        whether nothing can change any more: the stream's end is then final
  //   idle()         whether the subject is stopped but may be resumed (the indicator says so)
  //   onFrame(type, data, seq, sequenced)   each frame not seen before (seq 0 for the snapshot)
  //   onPartial(doc) the partial, fetched by refresh(), as a parsed document to swap in
  function follow(root, options) {
    var indicator = document.getElementById("live-indicator");
    var state = {
      lastId: parseInt(root.dataset.lastEventId || "0", 10) || 0,
      source: null,
      failures: 0,
      retryTimer: null,
      pollTimer: null,
      refreshing: null,
      refreshAgain: false
    };
    var ended = options.ended;
    var idle = options.idle || function () { return false; };

    function setIndicator(name) {
      if (!indicator || indicator.dataset.state === name) return;
      indicator.dataset.state = name;
      var text = indicator.querySelector("[data-live-text]");
      if (text) text.textContent = INDICATOR_TEXT[name] || name;
    }

    // The indicator while the stream is (or is about to be) open, for the current state.
    function showConnected() {
      var open = state.source && state.source.readyState === 1;
      if (ended()) setIndicator("finished");
      else if (!open) setIndicator(state.pollTimer ? "polling" : state.failures ? "reconnecting" : "connecting");
      else setIndicator(idle() ? "idle" : "live");
    }

    // One fetch of the partial at a time; a refresh asked for meanwhile runs after it.
    function refresh() {
      if (state.refreshing) { state.refreshAgain = true; return state.refreshing; }
      state.refreshing = fetchHtml(root.dataset.partialUrl)
        .then(function (html) { options.onPartial(parseHtml(html)); })
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
      var sequenced = event.type !== options.snapshotType && event.lastEventId !== "";
      var seq = sequenced ? parseInt(event.lastEventId, 10) : 0;
      if (sequenced && !isNaN(seq)) {
        if (seq <= state.lastId) return; // replayed after a reconnect: already applied
        state.lastId = seq;
        root.dataset.lastEventId = String(seq);
      }
      options.onFrame(event.type, data, seq, sequenced);
    }

    function startPolling(reason) {
      if (state.pollTimer) return;
      setIndicator(reason || "polling");
      state.pollTimer = setInterval(function () {
        refresh();
        if (ended() && !state.source) stopPolling();
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
      if (!ended()) setIndicator(state.failures ? "reconnecting" : "connecting");
      source.onopen = function () {
        state.failures = 0;
        stopPolling();
        showConnected();
      };
      for (var i = 0; i < options.eventTypes.length; i++) source.addEventListener(options.eventTypes[i], onFrame);
      source.onerror = function () {
        if (source.readyState === 2) {
          // Closed for good: 204 (nothing more will come) or an HTTP error.
          source.close();
          if (state.source === source) state.source = null;
          if (ended()) { setIndicator("finished"); stopPolling(); return; }
          scheduleReconnect();
        } else if (!ended()) {
          // EventSource is reconnecting by itself (it will send Last-Event-ID).
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

    function start() {
      if (ended()) setIndicator("finished");
      connect();
    }

    return {
      state: state,
      refresh: refresh,
      setIndicator: setIndicator,
      showConnected: showConnected,
      start: start
    };
  }

  window.liveFollow = { follow: follow, fetchHtml: fetchHtml, parseHtml: parseHtml, swapParts: swapParts };
})();
