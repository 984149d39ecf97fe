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

  // Plugins' panels (praxis_panels): each is a route of the plugin, loaded with the session; HTML is shown as
  // the plugin made it, JSON as a list of its fields (text only).
  function loadPanels(root) {
    root.querySelectorAll("[data-panel-url]:not([data-loaded])").forEach(function (body) {
      body.setAttribute("data-loaded", "");
      fetch(body.getAttribute("data-panel-url"), { credentials: "same-origin", headers: { "Accept": "text/html, application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          var type = response.headers.get("content-type") || "";
          return (type.indexOf("json") >= 0 ? response.json() : response.text()).then(function (value) { return [type, value]; });
        })
        .then(function (result) {
          if (result[0].indexOf("json") < 0) { body.innerHTML = result[1]; return; }
          var list = document.createElement("dl");
          list.className = "facts";
          var data = result[1] && typeof result[1] === "object" ? result[1] : { "": result[1] };
          Object.keys(data).forEach(function (key) {
            var dt = document.createElement("dt"), dd = document.createElement("dd");
            dt.textContent = key;
            dd.textContent = typeof data[key] === "object" ? JSON.stringify(data[key]) : String(data[key]);
            list.appendChild(dt); list.appendChild(dd);
          });
          body.replaceChildren(list);
        })
        .catch(function () {
          var p = document.createElement("p");
          p.className = "small";
          p.textContent = body.getAttribute("data-panel-error");
          body.replaceChildren(p);
        });
    });
  }

  // Placeholder buttons of the template editor: insert "{name}" at the text field's cursor (at its end while
  // it was never focused) and fire "input", so the live preview follows.
  document.addEventListener("focusin", function (event) {
    var el = event.target;
    if (el && el.hasAttribute && el.hasAttribute("data-placeholder-field")) { el.setAttribute("data-touched", ""); }
  });
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("[data-insert]") : null;
    if (!button) { return; }
    var field = document.getElementById(button.getAttribute("data-insert-into"));
    if (!field) { return; }
    var text = button.getAttribute("data-insert");
    var start = field.selectionStart, end = field.selectionEnd;
    if (!field.hasAttribute("data-touched") || typeof start !== "number") { start = end = field.value.length; }
    field.value = field.value.slice(0, start) + text + field.value.slice(end);
    field.focus();
    field.setSelectionRange(start + text.length, start + text.length);
    field.dispatchEvent(new Event("input", { bubbles: true }));
  });

  window.praxisApplyCss = apply;
  document.addEventListener("DOMContentLoaded", function () { loadPanels(document); });
  document.addEventListener("htmx:afterSettle", function () { loadPanels(document); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { apply(document); });
  } else {
    apply(document);
  }
  // An outerHTML swap replaces the element the event names, so the whole (small) document is gone over.
  document.addEventListener("htmx:afterSettle", function () { apply(document); });
})();
