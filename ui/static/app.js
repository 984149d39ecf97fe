// Small progressive enhancements; every page also works without JavaScript.
(function () {
  "use strict";

  // Keep aria-invalid and the error style of settings fields in step with their error text after htmx swaps.
  function syncFieldErrors(root) {
    root.querySelectorAll(".field-error[id$='-error']").forEach(function (error) {
      var id = error.id.slice(0, -"-error".length);
      var input = document.getElementById(id);
      var invalid = error.textContent.trim() !== "";
      if (input) {
        if (invalid) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
      }
      var wrap = document.getElementById(id + "-wrap");
      if (wrap) { wrap.classList.toggle("has-error", invalid); }
    });
    var first = root.querySelector("[aria-invalid='true']");
    if (first && document.activeElement && document.activeElement.closest("form") === first.form) { first.focus(); }
  }

  document.addEventListener("htmx:afterSettle", function () { syncFieldErrors(document); });

  // Close an open dropdown with Escape and return focus to its summary.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var open = document.querySelector("details.dropdown[open]");
    if (open) {
      open.removeAttribute("open");
      var summary = open.querySelector("summary");
      if (summary) { summary.focus(); }
    }
  });

  // Only one dropdown open at a time; clicking elsewhere closes it.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.dropdown[open]").forEach(function (details) {
      if (!details.contains(event.target)) { details.removeAttribute("open"); }
    });
  });
})();
