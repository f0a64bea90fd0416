/*
 * Accessible names for the admin's autocomplete fields (autocomplete_fields, drawn by select2).
 *
 * select2 names its combobox after the box that shows the current choice, and gives that box the
 * textbox role with no name of its own: with nothing chosen, a screen reader hears an unnamed
 * field. Both are named here after the field's own <label>, then the choice ("Agent: Researcher").
 *
 * Loaded in the admin's <head>, before jQuery: the DOMContentLoaded listener below runs before
 * jQuery's own, so the ready callback it queues runs after the admin's autocomplete.js one
 * (which draws the widgets). Rows added to an inline formset are named once drawn.
 */
(function () {
  "use strict";

  function labelId(select) {
    var label = document.querySelector('label[for="' + select.id + '"]');
    if (!label) return null;
    if (!label.id) label.id = select.id + "-label";
    return label.id;
  }

  function name(root) {
    root.querySelectorAll("select.admin-autocomplete[id]").forEach(function (select) {
      var label = labelId(select);
      var widget = select.nextElementSibling;
      if (!label || !widget || !widget.classList.contains("select2")) return;
      var shown = widget.querySelector(".select2-selection__rendered");
      var combobox = widget.querySelector(".select2-selection");
      if (shown) {
        if (!shown.id) shown.id = select.id + "-choice";
        shown.setAttribute("aria-labelledby", label);
      }
      if (combobox) {
        combobox.setAttribute("aria-labelledby", shown ? label + " " + shown.id : label);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.django || !window.django.jQuery) return; // a page without the admin's widgets
    window.django.jQuery(function () {
      name(document);
    });
  });

  document.addEventListener("formset:added", function (event) {
    // The admin draws the new row's widgets in its own listener for this event.
    window.setTimeout(function () {
      name(event.target);
    }, 0);
  });
})();
