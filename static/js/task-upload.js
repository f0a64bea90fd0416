// The task page: say at once when chosen files pass the upload limits (the server checks
// them too). The limits come from the form's data attributes, written by the server.
(function () {
  "use strict";

  function size(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1).replace(/\.0$/, "") + " MB";
    if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
    return bytes + " bytes";
  }

  function problem(form, files) {
    var maxFile = Number(form.dataset.maxFile);
    var maxRequest = Number(form.dataset.maxRequest);
    var maxFiles = Number(form.dataset.maxFiles);
    if (files.length > maxFiles) return "Too many files: at most " + maxFiles + " per message.";
    var total = 0;
    for (var i = 0; i < files.length; i++) {
      if (files[i].size > maxFile) {
        return "The file “" + files[i].name + "” is " + size(files[i].size) +
          ", over the limit of " + size(maxFile) + " per file.";
      }
      total += files[i].size;
    }
    if (total > maxRequest) {
      return "The files add up to " + size(total) + ", over the limit of " + size(maxRequest) + ".";
    }
    return "";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form.task-form");
    if (!form) return;
    var input = form.querySelector("input[type=file]");
    var note = form.querySelector("[data-upload-error]");
    function check() {
      var message = problem(form, input.files || []);
      note.textContent = message;
      note.hidden = !message;
      input.setAttribute("aria-invalid", message ? "true" : "false");
      return message;
    }
    input.addEventListener("change", check);
    form.addEventListener("submit", function (event) {
      if (check()) {
        event.preventDefault();
        input.focus();
      }
    });
  });
})();
