// The execution page, live: follows the execution's Server-Sent Events (live-follow.js) and
// updates the page in place. The page is complete without this script (server-rendered; tabs and
// the step dialog are plain links); the script adds live updates, in-page tabs and the step
// dialog.
//
// A suspended, failed or cancelled execution can be resumed from anywhere (another tab, the
// API, the admin), so the page keeps following it; the server keeps such a stream open with
// heartbeats. Only a completed (or partial) execution ends the stream for good.
(function () {
  "use strict";

  var root = document.getElementById("execution");
  if (!root || !window.liveFollow) return;
  var live = window.liveFollow;

  // Not running (no elapsed clock)...
  var FINISHED = ["completed", "failed", "partial", "suspended", "cancelled"];
  // ...and of those, the ones nothing can change any more.
  var FINAL = ["completed", "partial"];
  var EVENT_TYPES = [
    "execution.created", "execution.updated", "execution.started", "execution.resumed",
    "execution.completed", "execution.failed", "execution.suspended", "execution.cancelled",
    "substep.started", "substep.completed", "substep.failed", "tool.progress", "tool.completed"
  ];
  var SYNTHESIS = "__SYNTHESIS__";
  var LOG_LIMIT = 2000;
  var PROGRESS_KEEP = 3;

  var meta = {};
  try { meta = JSON.parse(document.getElementById("status-meta").textContent); } catch (e) { meta = {}; }

  var stream = live.follow(root, {
    eventTypes: EVENT_TYPES,
    snapshotType: "execution.updated",
    ended: function () { return state.final; },
    idle: function () { return state.finished; },
    onFrame: onFrame,
    onPartial: swapFrom
  });
  var state = stream.state;
  state.status = root.dataset.status || "pending";
  state.finished = FINISHED.indexOf(root.dataset.status) >= 0;
  state.final = FINAL.indexOf(root.dataset.status) >= 0;

  // ---- Formatting (the same rules as the server's template filters) -------------------------
  function formatDuration(ms) {
    if (ms === null || ms === undefined || isNaN(ms)) return "—";
    if (ms < 1000) return Math.round(ms) + " ms";
    var seconds = ms / 1000;
    if (seconds < 60) return seconds.toFixed(1) + " s";
    var total = Math.round(seconds);
    if (total < 3600) return Math.floor(total / 60) + " min " + pad(total % 60) + " s";
    return Math.floor(total / 3600) + " h " + pad(Math.floor((total % 3600) / 60)) + " min";
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function labelOf(status) { return (meta[status] && meta[status][1]) || status; }
  function iconOf(status) { return (meta[status] && meta[status][0]) || "•"; }
  function clip(text, limit) {
    text = String(text === undefined || text === null ? "" : text).replace(/\s+/g, " ").trim();
    return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
  }

  function paintBadge(badge, status) {
    if (!badge) return;
    badge.className = "badge status-" + status;
    badge.dataset.status = status;
    badge.textContent = "";
    var icon = document.createElement("span");
    icon.className = "icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = iconOf(status);
    badge.appendChild(icon);
    badge.appendChild(document.createTextNode(labelOf(status)));
  }

  // ---- Steps, diagram and counters ---------------------------------------------------------
  function stepElement(taskId) {
    return document.querySelector('[data-step="' + cssEscape(taskId) + '"]');
  }
  function cssEscape(value) {
    return window.CSS && CSS.escape ? CSS.escape(value) : String(value).replace(/["\\]/g, "\\$&");
  }

  function paintNode(taskId, status) {
    var node = document.getElementById("dag-node-" + taskId);
    if (!node || node.getAttribute("data-status") === status) return;
    node.setAttribute("data-status", status);
    var icon = node.querySelector(".node-icon");
    if (icon) icon.textContent = iconOf(status);
    var title = node.querySelector("title");
    if (title) title.textContent = title.textContent.replace(/ \([a-z]+\)$/, "") + " (" + status + ")";
  }

  function setStep(taskId, status, details) {
    details = details || {};
    var step = stepElement(taskId);
    if (step) {
      step.dataset.status = status;
      paintBadge(step.querySelector("[data-step-badge]"), status);
      var icon = step.querySelector("[data-step-icon]");
      if (icon) {
        icon.className = "step-icon status-" + status;
        icon.textContent = iconOf(status);
      }
      if (details.durationMs !== undefined && details.durationMs !== null) {
        var duration = step.querySelector("[data-step-duration]");
        if (duration) duration.textContent = formatDuration(details.durationMs);
      }
      var error = step.querySelector("[data-step-error]");
      if (error) {
        error.textContent = details.error ? clip(details.error, 300) : "";
        error.hidden = !details.error;
      }
    }
    paintNode(taskId, status);
    updateCounters();
    refreshOpenStep(taskId);
  }

  function addProgress(taskId, toolName, message) {
    var step = stepElement(taskId);
    if (!step) return;
    var list = step.querySelector("[data-step-progress]");
    if (!list) return;
    var item = document.createElement("li");
    item.textContent = (toolName ? toolName + ": " : "") + clip(message, 140);
    list.appendChild(item);
    while (list.children.length > PROGRESS_KEEP) list.removeChild(list.firstElementChild);
    list.hidden = false;
  }

  function updateCounters() {
    var steps = document.querySelectorAll("[data-step]");
    var total = parseInt(root.dataset.total || "0", 10) || 0;
    var done = 0;
    var failed = 0;
    for (var i = 0; i < steps.length; i++) {
      if (steps[i].dataset.step === SYNTHESIS) continue;
      if (steps[i].dataset.status === "completed") done++;
      else if (steps[i].dataset.status === "failed") failed++;
    }
    var percent = total ? Math.round((100 * done) / total) : 0;
    setText("[data-live=done]", String(done));
    setText("[data-live=failed]", String(failed));
    setText("[data-live=percent]", percent + "%");
    var bar = document.querySelector("[data-live=progress]");
    if (bar) {
      bar.setAttribute("value", String(done));
      bar.setAttribute("max", String(total || 1));
      bar.value = done;
    }
  }
  function setText(selector, text) {
    var element = document.querySelector(selector);
    if (element && element.textContent !== text) element.textContent = text;
  }

  function setStatus(status) {
    if (!status) return;
    state.status = status;
    root.dataset.status = status;
    paintBadge(document.querySelector("[data-live=status] .badge"), status);
    var before = [state.finished, state.final];
    state.finished = FINISHED.indexOf(status) >= 0;
    state.final = FINAL.indexOf(status) >= 0;
    if (before[0] !== state.finished || before[1] !== state.final) stream.showConnected();
  }

  // The diagram follows the step list after a partial replaced it.
  function syncDiagram() {
    var steps = document.querySelectorAll("[data-step]");
    for (var i = 0; i < steps.length; i++) paintNode(steps[i].dataset.step, steps[i].dataset.status);
  }

  // ---- Elapsed time -------------------------------------------------------------------------
  function tickElapsed() {
    // Once finished, the server-rendered duration stands (swapped in by refresh()).
    if (state.finished) return;
    var element = document.querySelector("[data-live=elapsed]");
    var started = Date.parse(root.dataset.startedAt || "");
    if (!element || isNaN(started)) return;
    element.textContent = formatDuration(Math.max(0, Date.now() - started));
  }

  // ---- Event log ----------------------------------------------------------------------------
  var log = document.getElementById("event-log");
  var filter = document.getElementById("event-filter");
  function filterMatches(type) {
    var wanted = filter ? filter.value : "";
    return !wanted || type === wanted || type.indexOf(wanted + ".") === 0;
  }
  function appendLog(seq, type, data) {
    if (!log) return;
    var item = document.createElement("li");
    item.className = "event";
    item.dataset.type = type;
    if (seq) item.dataset.seq = String(seq);
    var head = document.createElement("div");
    head.className = "event-head";
    var badge = document.createElement("span");
    badge.className = "event-type";
    badge.textContent = type;
    head.appendChild(badge);
    var when = document.createElement("span");
    when.className = "muted";
    var stamp = data && typeof data.timestamp === "number" ? new Date(data.timestamp) : new Date();
    when.textContent = (seq ? "#" + seq + " · " : "") + stamp.toLocaleTimeString([], { hour12: false });
    head.appendChild(when);
    item.appendChild(head);
    var body = document.createElement("pre");
    body.textContent = JSON.stringify(data, null, 2);
    item.appendChild(body);
    item.hidden = !filterMatches(type);
    log.appendChild(item);
    while (log.children.length > LOG_LIMIT) log.removeChild(log.firstElementChild);
    var empty = document.getElementById("event-log-empty");
    if (empty) empty.hidden = true;
    var box = log.parentElement;
    if (box && box.scrollHeight - box.scrollTop - box.clientHeight < 120) box.scrollTop = box.scrollHeight;
  }
  if (filter && log) {
    filter.addEventListener("change", function () {
      for (var i = 0; i < log.children.length; i++) {
        log.children[i].hidden = !filterMatches(log.children[i].dataset.type || "");
      }
    });
  }

  // ---- Applying one event -------------------------------------------------------------------
  function onFrame(type, data, seq, sequenced) {
    if (sequenced) appendLog(seq, type, data);
    apply(type, data);
    root.dispatchEvent(new CustomEvent("execution:event", { detail: { type: type, seq: seq, data: data } }));
  }

  function apply(type, data) {
    var taskId = data.subStepId;
    switch (type) {
      case "execution.updated":
        setStatus(data.status);
        break;
      case "execution.started":
      case "execution.resumed":
        if (data.totalTasks) root.dataset.total = String(data.totalTasks);
        setStatus("running");
        stream.refresh(); // a resume resets steps without an event per step
        break;
      case "substep.started":
        if (taskId) setStep(taskId, "running");
        break;
      case "substep.completed":
        if (taskId) setStep(taskId, "completed", { durationMs: data.durationMs });
        break;
      case "substep.failed":
        if (taskId) setStep(taskId, "failed", { error: data.error });
        break;
      case "tool.progress":
      case "tool.completed":
        if (taskId) addProgress(taskId, data.toolName, data.message);
        break;
      case "execution.completed":
        setStatus(data.status || "completed");
        stream.refresh();
        break;
      case "execution.failed":
        setStatus("failed");
        stream.refresh();
        break;
      case "execution.suspended":
        setStatus("suspended");
        stream.refresh();
        break;
      case "execution.cancelled":
        setStatus("cancelled");
        stream.refresh();
        break;
      default:
        break;
    }
  }

  // ---- Server-rendered partials (results, costs, actions; the polling fallback) --------------
  function swapFrom(doc) {
    live.swapParts(doc);
    var info = doc.querySelector("[data-execution-state]");
    if (info) {
      if (info.dataset.total) root.dataset.total = info.dataset.total;
      if (info.dataset.startedAt) root.dataset.startedAt = info.dataset.startedAt;
      root.dataset.completedAt = info.dataset.completedAt || "";
      setStatus(info.dataset.status);
    }
    syncDiagram();
    updateCounters();
    tickElapsed();
  }

  // ---- Tabs ---------------------------------------------------------------------------------
  function showTab(name, push) {
    var panels = document.querySelectorAll("[data-tab-panel]");
    var found = false;
    for (var i = 0; i < panels.length; i++) {
      var match = panels[i].dataset.tabPanel === name;
      panels[i].hidden = !match;
      found = found || match;
    }
    if (!found) return false;
    var links = document.querySelectorAll(".tabs a[data-tab]");
    for (var j = 0; j < links.length; j++) {
      if (links[j].dataset.tab === name) links[j].setAttribute("aria-current", "page");
      else links[j].removeAttribute("aria-current");
    }
    if (push) {
      var url = new URL(window.location.href);
      url.searchParams.set("tab", name);
      history.replaceState(history.state, "", url);
    }
    return true;
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".tabs a[data-tab]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    if (showTab(link.dataset.tab, true)) event.preventDefault();
  });

  // ---- Step dialog --------------------------------------------------------------------------
  var dialog = document.getElementById("step-dialog");
  var dialogBody = dialog && dialog.querySelector("[data-step-dialog-body]");
  var openStep = dialog ? dialog.dataset.step || "" : "";
  var returnFocus = null;

  function stepUrl(taskId) {
    return root.dataset.stepUrlTemplate.replace("__TASK__", encodeURIComponent(taskId));
  }
  function loadStep(taskId) {
    return live.fetchHtml(stepUrl(taskId))
      .then(function (html) {
        var body = live.parseHtml(html).querySelector("[data-step-dialog-body]");
        if (body && dialogBody) dialogBody.replaceWith(document.importNode(body, true));
        dialogBody = dialog.querySelector("[data-step-dialog-body]");
      });
  }
  function openStepDialog(taskId, link) {
    if (!dialog || typeof dialog.showModal !== "function") return false;
    returnFocus = link || document.activeElement;
    openStep = taskId;
    dialog.dataset.step = taskId;
    loadStep(taskId)
      .then(function () {
        if (!dialog.open) dialog.showModal();
        var url = new URL(window.location.href);
        url.searchParams.set("step", taskId);
        history.replaceState(history.state, "", url);
        var close = dialog.querySelector("[data-step-dialog-close]");
        if (close) close.focus();
      })
      .catch(function () { window.location.href = link ? link.href : stepUrl(taskId); });
    return true;
  }
  function refreshOpenStep(taskId) {
    if (dialog && dialog.open && openStep === taskId) loadStep(taskId).catch(function () {});
  }
  if (dialog && typeof dialog.showModal === "function") {
    document.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("[data-step-link]");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      openStepDialog(link.getAttribute("data-step-link"), link);
    });
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog) dialog.close();
      if (event.target.closest && event.target.closest("[data-step-dialog-close]")) {
        event.preventDefault();
        dialog.close();
      }
    });
    dialog.addEventListener("close", function () {
      openStep = "";
      var url = new URL(window.location.href);
      url.searchParams.delete("step");
      history.replaceState(history.state, "", url);
      if (returnFocus && typeof returnFocus.focus === "function") returnFocus.focus();
      returnFocus = null;
    });
    // A deep link (?step=…) was rendered open by the server: make it a real modal.
    if (dialog.hasAttribute("open")) {
      dialog.removeAttribute("open");
      dialog.showModal();
    }
  }

  // ---- Diagram zoom -------------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-zoom]");
    if (!button) return;
    var svg = document.querySelector("svg.dag-diagram");
    if (!svg) return;
    var width = parseFloat(svg.getAttribute("width"));
    var height = parseFloat(svg.getAttribute("height"));
    var scale = parseFloat(svg.dataset.scale || "1");
    var how = button.dataset.zoom;
    if (how === "in") scale = Math.min(3, scale * 1.25);
    else if (how === "out") scale = Math.max(0.1, scale / 1.25);
    else if (how === "fit") {
      var box = svg.parentElement.clientWidth || width;
      scale = Math.min(1, box / width);
    } else scale = 1;
    svg.dataset.scale = String(scale);
    svg.style.width = width * scale + "px";
    svg.style.height = height * scale + "px";
    var label = document.querySelector("[data-zoom-level]");
    if (label) label.textContent = Math.round(scale * 100) + "%";
  });

  // ---- Start --------------------------------------------------------------------------------
  window.executionLive = { state: state, refresh: stream.refresh };
  updateCounters();
  tickElapsed();
  setInterval(tickElapsed, 1000);
  stream.start();
})();
