// Small enhancements; every page works without them (plain links and forms).
(function () {
  "use strict";

  // ---- Theme toggle: light <-> dark, remembered; starts from the system preference.
  function currentTheme() {
    var set = document.documentElement.getAttribute("data-theme");
    if (set) return set;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches
      ? "dark" : "light";
  }
  function setupThemeToggle() {
    var button = document.querySelector("[data-theme-toggle]");
    if (!button) return;
    button.hidden = false;
    var sync = function () {
      var dark = currentTheme() === "dark";
      button.setAttribute("aria-pressed", dark ? "true" : "false");
      button.querySelector("[data-theme-label]").textContent = dark ? "Light theme" : "Dark theme";
    };
    sync();
    button.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      document.documentElement.setAttribute("data-theme", next);
      try { localStorage.setItem("theme", next); } catch (e) { /* not remembered */ }
      sync();
    });
  }

  // ---- Toasts: Django messages; close button, auto-dismiss (longer for errors).
  function dismiss(toast) {
    if (toast && toast.parentNode) toast.parentNode.removeChild(toast);
  }
  function setupToasts(root) {
    (root || document).querySelectorAll(".toast").forEach(function (toast) {
      if (toast.dataset.ready) return;
      toast.dataset.ready = "1";
      var close = toast.querySelector(".toast-close");
      if (close) close.addEventListener("click", function () { dismiss(toast); });
      var delay = toast.classList.contains("error") ? 12000 : 6000;
      var timer = setTimeout(function () { dismiss(toast); }, delay);
      // Reading a toast (hover or focus) keeps it on screen.
      toast.addEventListener("mouseenter", function () { clearTimeout(timer); });
      toast.addEventListener("focusin", function () { clearTimeout(timer); });
    });
  }

  // ---- Confirmation dialog for destructive forms: <form data-confirm="...">.
  // Without JavaScript the form posts directly (the server still validates everything).
  function setupConfirm() {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return;
    var message = dialog.querySelector("[data-confirm-message]");
    var okButton = dialog.querySelector("[data-confirm-ok]");
    var pending = null;
    var returnFocus = null;

    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
      if (form.dataset.confirmed === "1") { form.dataset.confirmed = ""; return; }
      event.preventDefault();
      pending = { form: form, submitter: event.submitter || null };
      returnFocus = event.submitter || document.activeElement;
      message.textContent = form.dataset.confirm;
      okButton.textContent = form.dataset.confirmLabel || "Confirm";
      dialog.returnValue = "";
      dialog.showModal();
      dialog.querySelector("[data-confirm-cancel]").focus();
    }, true);

    okButton.addEventListener("click", function () {
      var target = pending;
      pending = null;
      dialog.close("ok");
      if (!target) return;
      target.form.dataset.confirmed = "1";
      if (target.form.requestSubmit) {
        target.form.requestSubmit(target.submitter || undefined);
      } else {
        target.form.submit();
      }
    });
    dialog.querySelector("[data-confirm-cancel]").addEventListener("click", function () {
      dialog.close("cancel");
    });
    // Esc closes natively; clicking the backdrop cancels too.
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog) dialog.close("cancel");
    });
    dialog.addEventListener("close", function () {
      if (dialog.returnValue !== "ok") pending = null;
      if (returnFocus && typeof returnFocus.focus === "function") returnFocus.focus();
      returnFocus = null;
    });
  }

  // ---- Time zone fields default to the browser's zone: <select data-browser-timezone>.
  function setupTimezones() {
    var zone;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
    document.querySelectorAll("select[data-browser-timezone]").forEach(function (select) {
      if (select.dataset.userChosen === "1" || !zone) return;
      var option = Array.prototype.find.call(select.options, function (o) { return o.value === zone; });
      if (option) select.value = zone;
    });
  }

  // ---- Print buttons: <button data-print> (results and artifacts; the print stylesheet
  // leaves only the content).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-print]");
    if (button) window.print();
  });

  // ---- Long-running forms (planning calls the LLM): <form data-busy-form>. The clicked
  // button says what is happening and a second submission is ignored until the answer.
  function setupBusyForms() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (event.defaultPrevented || !(form instanceof HTMLFormElement)) return;
      if (!form.hasAttribute("data-busy-form")) return;
      if (form.dataset.busy === "1") { event.preventDefault(); return; }
      form.dataset.busy = "1";
      form.setAttribute("aria-busy", "true");
      var button = event.submitter;
      if (button && button.dataset.busyLabel) {
        button.dataset.idleLabel = button.textContent;
        button.textContent = button.dataset.busyLabel;
      }
    });
    // Coming back through the history restores the page as it was left: make it usable.
    window.addEventListener("pageshow", function () {
      document.querySelectorAll("form[data-busy-form]").forEach(function (form) {
        form.dataset.busy = "";
        form.removeAttribute("aria-busy");
        form.querySelectorAll("[data-idle-label]").forEach(function (button) {
          button.textContent = button.dataset.idleLabel;
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupBusyForms();
    setupThemeToggle();
    setupToasts();
    setupConfirm();
    setupTimezones();
  });
  document.addEventListener("htmx:afterSwap", function (event) { setupToasts(event.target); });
})();
