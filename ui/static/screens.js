// The page's Content-Security-Policy (style-src 'self') ignores style="" attributes in the markup, so the
// screens put computed layout (grid positions, heights, status colours) in data-css="prop:value;..." and this
// applies it through the CSSOM, on load and after every htmx swap.
(function () {
  "use strict";
  var SAFE_PROPERTY = /^(--[a-z][a-z0-9-]*|top|height|left|width)$/;

  function apply(root) {
    var nodes = root.querySelectorAll ? root.querySelectorAll("[data-css]") : [];
    var list = Array.prototype.slice.call(nodes);
    if (root.hasAttribute && root.hasAttribute("data-css")) { list.push(root); }
    list.forEach(function (el) {
      el.getAttribute("data-css").split(";").forEach(function (pair) {
        var at = pair.indexOf(":");
        if (at < 0) { return; }
        var name = pair.slice(0, at).trim(), value = pair.slice(at + 1).trim();
        if (SAFE_PROPERTY.test(name)) { el.style.setProperty(name, value); }
      });
    });
  }

  window.praxisApplyCss = apply;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { apply(document); });
  } else {
    apply(document);
  }
  // An outerHTML swap replaces the element the event names, so the whole (small) document is gone over.
  document.addEventListener("htmx:afterSettle", function () { apply(document); });
})();
