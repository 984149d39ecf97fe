// The appointment book's interactions. Everything also works without this file: slots and appointments are
// links to dialogs that are pages of their own, and every change is a form post.
//  - dialogs: htmx swaps a dialog body into <dialog id="book-dialog">; this opens it and closes it after a change
//  - drag an appointment to move it (to another time, day, doctor or room); drag its lower edge to resize
//  - keyboard: Enter opens, Alt+Up/Down moves by one grid step, Alt+Shift+Up/Down changes the length,
//    Ctrl+X / Ctrl+C cut or copy, Ctrl+V on a free time pastes, the context-menu key (or Shift+F10) opens the menu
//  - right click on an appointment: a menu with the statuses, cut/copy, cancel, trash and history
(function () {
  "use strict";

  var book = document.getElementById("book");
  if (!book) { return; }
  var base = book.dataset.base;
  var dialog = document.getElementById("book-dialog");
  var dialogBody = document.getElementById("dialog-body");
  var menu = document.getElementById("appt-menu");
  var canEdit = book.dataset.canEdit === "true";
  var CLIP = "praxis-book-clipboard";
  var lastFocus = null;

  function step() {
    var grid = document.getElementById("book-grid");
    return parseInt((grid && grid.dataset.step) || book.dataset.step || "15", 10);
  }
  function px() { return parseFloat(book.dataset.px || "1.6"); }
  function gridStart() {
    var grid = document.getElementById("book-grid");
    return parseInt((grid && grid.dataset.start) || "480", 10);
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function hhmm(minutes) { return pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60); }

  // --- dialogs -----------------------------------------------------------------------------------------------
  function openDialog() {
    if (!dialog.open) {
      lastFocus = document.activeElement;
      dialog.showModal();
    }
    var first = dialogBody.querySelector("[aria-invalid='true'], .notice-error, input:not([type=hidden]):not([type=radio]), select, textarea, button");
    if (first) { first.focus(); }
  }
  function closeDialog() {
    if (dialog.open) { dialog.close(); }
  }
  dialog.addEventListener("close", function () {
    dialogBody.innerHTML = "";
    if (lastFocus && document.body.contains(lastFocus)) { lastFocus.focus(); }
  });
  dialog.addEventListener("click", function (event) {
    if (event.target === dialog || event.target.closest("[data-close]")) { closeDialog(); }
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target === dialogBody && dialogBody.innerHTML.trim() !== "") { openDialog(); }
  });
  document.body.addEventListener("book-changed", function () { closeDialog(); });

  function openUrl(url) {
    htmx.ajax("GET", url, { target: "#dialog-body", swap: "innerHTML" });
  }
  function post(url, values) {
    values.csrf_token = csrfToken();
    return htmx.ajax("POST", url, { target: "#dialog-body", swap: "innerHTML", values: values });
  }
  function csrfToken() {
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    return headers["X-CSRF-Token"] || "";
  }

  // Auto-submit the toolbar's selects and date.
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-autosubmit]")) { event.target.form.submit(); }
  });

  // Open an appointment given in the address (from the patient card), or a pre-chosen patient's booking.
  if (book.dataset.open) { openUrl(base + "/appointments/" + book.dataset.open); }

  // --- clipboard (cut / copy / paste) --------------------------------------------------------------------------
  function clip() {
    try { return JSON.parse(sessionStorage.getItem(CLIP) || "null"); } catch (e) { return null; }
  }
  function setClip(value) {
    if (value) { sessionStorage.setItem(CLIP, JSON.stringify(value)); } else { sessionStorage.removeItem(CLIP); }
    showClip();
  }
  function showClip() {
    var bar = document.getElementById("clipboard-bar");
    var value = clip();
    if (!bar) { return; }
    bar.hidden = !value;
    document.querySelectorAll(".appt.is-clipped").forEach(function (el) { el.classList.remove("is-clipped"); });
    if (!value) { return; }
    var template = document.getElementById("clipboard-messages").content;
    var message = template.querySelector(value.mode === "cut" ? "[data-cut]" : "[data-copy]").textContent;
    document.getElementById("clipboard-text").textContent = message.replace("{what}", value.label);
    var el = document.querySelector(".appt[data-id='" + value.id + "']");
    if (el) { el.classList.add("is-clipped"); }
  }
  document.getElementById("clipboard-clear").addEventListener("click", function () { setClip(null); });
  function paste(slot) {
    var value = clip();
    if (!value) { return false; }
    var column = slot.closest(".col-body");
    var values = { date: column.dataset.date, time: slot.dataset.time, mode: value.mode === "cut" ? "move" : "copy" };
    if (column.dataset.kind === "doctor") { values.doctor_id = column.dataset.resource; }
    else { values.room_id = column.dataset.resource; }
    if (value.mode === "cut") { setClip(null); }
    post(base + "/appointments/" + value.id + "/move", values);
    return true;
  }
  // With something on the clipboard, choosing a free time pastes it instead of opening a new booking.
  document.addEventListener("click", function (event) {
    var slot = event.target.closest && event.target.closest(".slot");
    if (slot && clip()) {
      event.preventDefault();
      event.stopPropagation();
      paste(slot);
    }
  }, true);
  document.body.addEventListener("htmx:afterSettle", showClip);
  showClip();

  // --- context menu --------------------------------------------------------------------------------------------
  var menuTarget = null;
  function openMenu(appt, x, y) {
    if (!menu || !canEdit) { return; }
    menuTarget = appt;
    menu.hidden = false;
    var width = menu.offsetWidth, height = menu.offsetHeight;
    menu.style.left = Math.min(x, window.innerWidth - width - 8) + "px";
    menu.style.top = Math.min(y, window.innerHeight - height - 8) + "px";
    var first = menu.querySelector("[role=menuitem]");
    if (first) { first.focus(); }
  }
  function closeMenu(refocus) {
    if (!menu || menu.hidden) { return; }
    menu.hidden = true;
    if (refocus && menuTarget && document.body.contains(menuTarget)) { menuTarget.focus(); }
  }
  document.addEventListener("contextmenu", function (event) {
    var appt = event.target.closest && event.target.closest(".appt");
    if (!appt || !canEdit) { return; }
    event.preventDefault();
    openMenu(appt, event.clientX, event.clientY);
  });
  document.addEventListener("click", function (event) {
    if (menu && !menu.hidden && !menu.contains(event.target)) { closeMenu(false); }
  });
  if (menu) {
    menu.addEventListener("click", function (event) {
      var item = event.target.closest("[role=menuitem]");
      if (!item || !menuTarget) { return; }
      var id = menuTarget.dataset.id;
      var action = item.dataset.action;
      closeMenu(false);
      if (action === "open") { openUrl(base + "/appointments/" + id); }
      else if (action === "panel") { openUrl(base + "/appointments/" + id + "?panel=" + item.dataset.panel); }
      else if (action === "status") { post(base + "/appointments/" + id + "/status", { status: item.dataset.status, version: menuTarget.dataset.version }); }
      else if (action === "cut" || action === "copy") { setClip({ id: id, mode: action, label: menuTarget.dataset.label }); }
    });
    menu.addEventListener("keydown", function (event) {
      var items = Array.prototype.slice.call(menu.querySelectorAll("[role=menuitem]"));
      var index = items.indexOf(document.activeElement);
      if (event.key === "ArrowDown") { items[(index + 1) % items.length].focus(); event.preventDefault(); }
      else if (event.key === "ArrowUp") { items[(index - 1 + items.length) % items.length].focus(); event.preventDefault(); }
      else if (event.key === "Home") { items[0].focus(); event.preventDefault(); }
      else if (event.key === "End") { items[items.length - 1].focus(); event.preventDefault(); }
      else if (event.key === "Escape" || event.key === "Tab") { closeMenu(true); event.preventDefault(); }
    });
  }

  // --- keyboard in the grid ------------------------------------------------------------------------------------
  document.addEventListener("keydown", function (event) {
    var appt = event.target.closest && event.target.closest(".appt");
    var slot = event.target.closest && event.target.closest(".slot");
    var ctrl = event.ctrlKey || event.metaKey;
    if (event.key === "Escape" && clip() && !dialog.open) { setClip(null); return; }
    if (appt && (event.key === "Enter" || event.key === " ") && !event.altKey && !ctrl) {
      openUrl(base + "/appointments/" + appt.dataset.id);
      event.preventDefault();
      return;
    }
    if (appt && canEdit) {
      if (event.key === "ContextMenu" || (event.shiftKey && event.key === "F10")) {
        var rect = appt.getBoundingClientRect();
        openMenu(appt, rect.left + 12, rect.top + 12);
        event.preventDefault();
      } else if (ctrl && (event.key === "x" || event.key === "c")) {
        setClip({ id: appt.dataset.id, mode: event.key === "x" ? "cut" : "copy", label: appt.dataset.label });
        event.preventDefault();
      } else if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
        var minutes = (event.key === "ArrowUp" ? -1 : 1) * step();
        post(base + "/appointments/" + appt.dataset.id + "/shift",
             { what: event.shiftKey ? "length" : "start", minutes: minutes, version: appt.dataset.version });
        event.preventDefault();
      }
    } else if (slot && ctrl && event.key === "v") {
      if (paste(slot)) { event.preventDefault(); }
    }
  });

  // --- drag to move, drag the lower edge to resize -------------------------------------------------------------
  var drag = null;
  document.addEventListener("pointerdown", function (event) {
    var appt = event.target.closest && event.target.closest(".appt");
    if (!appt || !canEdit || event.button !== 0) { return; }
    drag = {
      appt: appt, resize: !!event.target.closest(".resize-handle"), x: event.clientX, y: event.clientY,
      grab: event.clientY - appt.getBoundingClientRect().top,
      top: parseFloat(appt.style.top), height: parseFloat(appt.style.height), started: false, column: null, minutes: null
    };
  });
  document.addEventListener("pointermove", function (event) {
    if (!drag) { return; }
    var dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    event.preventDefault();
    if (!drag.started) {
      if (Math.abs(dx) < 5 && Math.abs(dy) < 5) { return; }
      drag.started = true;
      drag.appt.classList.add("is-dragging");
      document.body.classList.add("book-dragging");
    }
    var snap = step() * px();
    if (drag.resize) {
      var height = Math.max(snap, Math.round((drag.height + dy) / snap) * snap);
      drag.appt.style.height = height + "px";
      drag.minutes = Math.round(height / px());
      return;
    }
    drag.appt.style.visibility = "hidden";
    var below = document.elementFromPoint(event.clientX, event.clientY);
    drag.appt.style.visibility = "";
    var column = below && below.closest && below.closest(".col-body");
    if (!column) { return; }
    var rect = column.getBoundingClientRect();
    var offset = event.clientY - rect.top - drag.grab;
    var top = Math.max(0, Math.round(offset / snap) * snap);
    if (column !== drag.appt.parentElement) { column.appendChild(drag.appt); }
    drag.appt.style.top = top + "px";
    drag.column = column;
    drag.minutes = gridStart() + Math.round(top / px());
  });
  document.addEventListener("pointerup", function () {
    if (!drag) { return; }
    var current = drag;
    drag = null;
    document.body.classList.remove("book-dragging");
    if (!current.started) { return; }
    current.appt.classList.remove("is-dragging");
    // The click that follows a drag must not open the dialog.
    current.appt.addEventListener("click", function stop(e) { e.stopImmediatePropagation(); e.preventDefault(); }, { capture: true, once: true });
    var id = current.appt.dataset.id;
    if (current.resize) {
      post(base + "/appointments/" + id + "/resize", { duration: current.minutes, version: current.appt.dataset.version });
      return;
    }
    if (!current.column || current.minutes === null) { return; }
    var values = { date: current.column.dataset.date, time: hhmm(current.minutes), mode: "move", version: current.appt.dataset.version };
    if (current.column.dataset.kind === "doctor") { values.doctor_id = current.column.dataset.resource; }
    else { values.room_id = current.column.dataset.resource; }
    post(base + "/appointments/" + id + "/move", values);
  });

  // A refused drag answers with the appointment's dialog (the reason and, when allowed, "overbook"); the grid
  // is reloaded so the appointment is back where it is.
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var status = event.detail.xhr && event.detail.xhr.status;
    if (status === 409 || status === 422) { htmx.trigger(document.body, "book-refresh"); }
  });
  document.body.addEventListener("book-refresh", function () {
    var grid = document.getElementById("book-grid");
    if (grid) { htmx.ajax("GET", grid.getAttribute("hx-get"), { target: "#book-grid", swap: "outerHTML" }); }
  });
})();
