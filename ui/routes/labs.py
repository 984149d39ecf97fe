"""Lab results and lab orders on the patient card (loaded by htmx into its "Lab results" section), and the
dental lab-case warning of the appointment dialog.

Reads go through ``core.labs.results``, ``core.labs.orders`` and ``core.labs.dental`` (the same code as
``/api/clinics/{id}/labs``). Abnormal values carry a class for the highlight and a text marker (the lab's flag
spelled out), so they never rely on colour alone; times are shown in the clinic's time zone.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlmodel import Session

from core.labs import dental, orders, results
from core.labs.errors import NotFound
from ui import i18n
from ui.i18n import N_
from ui.screens import htmx_response
from ui.web import Page, clinic_page, render_text

router = APIRouter(prefix="/clinics/{clinic_id}/labs", include_in_schema=False)

RESULT_LIMIT = 200
ORDER_LIMIT = 50
RESULT_STATUS_TITLES = {"preliminary": N_("Preliminary"), "final": N_("Final"), "corrected": N_("Corrected")}
ORDER_STATUS_TITLES = {"placed": N_("Placed"), "sent": N_("Sent to the lab"), "acknowledged": N_("Accepted by the lab"),
                       "partial": N_("Some results in"), "final": N_("All results in"), "cancelled": N_("Cancelled"),
                       "rejected": N_("Refused by the lab")}
# HL7 table 0078: what the lab's abnormal flag means, as the marker next to the value.
FLAG_TITLES = {"L": N_("Low"), "LL": N_("Critically low"), "H": N_("High"), "HH": N_("Critically high"),
               "<": N_("Below the measurable range"), ">": N_("Above the measurable range"), "A": N_("Abnormal"),
               "AA": N_("Critically abnormal")}
CASE_WARNINGS = {"due_after_appointment": N_("The lab's due date %(due)s is after the appointment."),
                 "not_received": N_("The work is not back from the lab and the appointment is today or past."),
                 "overdue": N_("The work was due back from the lab on %(due)s."),
                 "not_sent": N_("The work has not been sent to the lab yet.")}


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def titles(mapping: dict[str, str]) -> dict[str, str]:
    return {key: i18n.gettext(value) for key, value in mapping.items()}


def flag_text(flag: str | None) -> str:
    """The marker of an abnormal value in the user's language (the lab's own flag when it is not a known one)."""
    code = (flag or "").strip().upper()
    title = FLAG_TITLES.get(code)
    return i18n.gettext(title) if title else (code or i18n.gettext("Abnormal"))


def patient_lab_values(session: Session, clinic_id: int, patient_id: uuid.UUID) -> dict[str, Any]:
    found = results.patient_results(session, clinic_id, patient_id, limit=RESULT_LIMIT)
    items = [{**r, "observed": _moment(r["observed_at"]), "received": _moment(r["received_at"]),
              "marker": flag_text(r["abnormal_flag"]) if r["abnormal"] else ""} for r in found]
    lab_orders = [{**o, "placed": _moment(o["placed_at"])}
                  for o in orders.list_orders(session, clinic_id, patient_id=patient_id, limit=ORDER_LIMIT)]
    return {"results": items, "orders": lab_orders, "patient_id": patient_id,
            "result_status_titles": titles(RESULT_STATUS_TITLES),
            "order_status_titles": titles(ORDER_STATUS_TITLES)}


@router.get("/patient/{patient_id}")
def patient_labs(clinic_id: int, patient_id: uuid.UUID, page: Page = Depends(clinic_page("labs.view"))) -> Response:
    """The patient's lab results and orders, for the patient card (loaded by htmx)."""
    with i18n.using(page.locale), Session(page.praxis.engine) as session:
        body = render_text(page, "labs/patient.html", patient_lab_values(session, clinic_id, patient_id))
    return htmx_response(page, body, flash=False)


def _warning_text(warning: dict[str, str], due: str) -> str:
    message = CASE_WARNINGS.get(warning["code"])
    return i18n.gettext(message) % {"due": due} if message else warning["message"]


def case_warnings(session: Session, clinic_id: int, appointment_id: int) -> list[dict[str, Any]]:
    """The appointment's dental lab cases that will not be back in time, each with its warnings in the user's
    language (empty when every case is on track, or the appointment needs none)."""
    try:
        status = dental.appointment_status(session, clinic_id, appointment_id)
    except NotFound:
        return []
    late = []
    for case in status["cases"]:
        if not case["warnings"]:
            continue
        due = i18n.format_date(date.fromisoformat(case["due_date"])) if case.get("due_date") else ""
        late.append({"work_type": case["work_type"], "teeth": case.get("teeth") or [],
                     "messages": [_warning_text(w, due) for w in case["warnings"]]})
    return late
