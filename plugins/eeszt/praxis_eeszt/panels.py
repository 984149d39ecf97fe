"""The plugin's panels on the patient card and in the appointment dialog, as small HTML fragments.

The panel routes answer JSON, or this HTML when the request comes from the UI (``HX-Request`` header, or a
browser asking for ``text/html`` first); every value is escaped, every label comes from the plugin's catalog in
the clinic's language.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from plugin_sdk import N_
from plugin_sdk.contributions import Panel
from praxis_eeszt.i18n import translate

PATIENT_PANELS = (Panel(N_("EESZT documents"), "/patients/{patient_id}/documents", "eeszt.use", 60),
                  Panel(N_("EESZT eProfile"), "/patients/{patient_id}/eprofile", "eeszt.use", 61),
                  Panel(N_("EESZT e-referrals"), "/referrals?patient_id={patient_id}", "eeszt.use", 62))
VISIT_PANELS = (Panel(N_("EESZT sync"), "/visits/{appointment_id}", "eeszt.use", 60),)
EMPTY = N_("Nothing in EESZT.")
LABELS = {"documents": N_("Documents"), "entries": N_("Entries"), "referrals": N_("E-referrals"),
          "sync": N_("Sync steps"), "event": N_("Event"), "document": N_("Outpatient report")}


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return bool(request.headers.get("hx-request")) or accept.startswith("text/html")


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{escape(str(k))}: {escape(str(v))}" for k, v in value.items()
                         if v not in (None, "", [], {}) and not isinstance(v, (dict, list)))
    return escape(str(value))


def fragment(locale: str | None, answer: dict[str, Any]) -> HTMLResponse:
    """The answer as a definition list: each list as items, each object as its plain fields."""
    parts = []
    for key, value in answer.items():
        if key not in LABELS:
            continue
        label = escape(translate(locale, LABELS[key]))
        if isinstance(value, list):
            items = "".join(f"<li>{_value(v)}</li>" for v in value)
            body = f'<ul class="plain">{items}</ul>' if items else escape(translate(locale, EMPTY))
        elif value is None:
            body = "—"
        else:
            body = _value(value)
        parts.append(f"<dt>{label}</dt><dd>{body}</dd>")
    if not parts:
        return HTMLResponse(f'<p class="small">{escape(translate(locale, EMPTY))}</p>')
    return HTMLResponse(f'<dl class="facts">{"".join(parts)}</dl>')
