// The goal form: a live character counter for the objective, cron presets that fill the
// cron field, and adding/removing schedule rows in place. Without this script the form still
// works: "Add schedule" posts and the server adds a row; "Remove" is a checkbox.
(function () {
  "use strict";

  var form = document.querySelector("[data-goal-form]");
  if (!form) return;

  // ---- Character counter -------------------------------------------------------------------
  form.querySelectorAll("[data-counter-for]").forEach(function (counter) {
    var field = document.getElementById(counter.dataset.counterFor);
    if (!field) return;
    var count = counter.querySelector("[data-count]");
    var max = parseInt(field.getAttribute("maxlength") || "0", 10);
    var min = parseInt(field.getAttribute("minlength") || "0", 10);
    var update = function () {
      var length = field.value.length;
      count.textContent = String(length);
      counter.classList.toggle("over", (max && length > max) || (length > 0 && length < min));
    };
    field.addEventListener("input", update);
    update();
  });

  // ---- Presets fill the cron field ----------------------------------------------------------
  form.addEventListener("change", function (event) {
    var preset = event.target.closest && event.target.closest("[data-cron-preset]");
    if (!preset || !preset.value) return;
    var row = preset.closest("[data-schedule-row]");
    var cron = row && row.querySelector("input[name$='-cron']");
    if (cron) {
      cron.value = preset.value;
      cron.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });

  // ---- Removing a row: checked rows are dimmed, and come back when unchecked ----------------
  form.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.name || !/-DELETE$/.test(box.name)) return;
    var row = box.closest("[data-schedule-row]");
    if (row) row.classList.toggle("removed", box.checked);
  });

  // ---- Adding a row -------------------------------------------------------------------------
  var add = form.querySelector("[data-add-schedule]");
  var template = document.getElementById("schedule-template");
  var rows = form.querySelector("[data-schedule-rows]");
  var total = form.querySelector("input[name$='-TOTAL_FORMS']");
  if (add && template && rows && total) {
    add.addEventListener("click", function (event) {
      event.preventDefault();
      var index = parseInt(total.value || "0", 10) || 0;
      var holder = document.createElement("div");
      holder.innerHTML = template.innerHTML.replace(/__prefix__/g, String(index));
      var row = holder.firstElementChild;
      rows.appendChild(row);
      total.value = String(index + 1);
      if (window.htmx) window.htmx.process(row);
      var zone;
      try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { zone = ""; }
      var select = row.querySelector("select[data-browser-timezone]");
      if (select && zone && Array.prototype.some.call(select.options, function (o) { return o.value === zone; })) {
        select.value = zone;
      }
      var first = row.querySelector("select, input:not([type=hidden])");
      if (first) first.focus();
    });
  }
})();
