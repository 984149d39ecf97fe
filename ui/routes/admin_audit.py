"""Admin: the clinic's audit journal (filters and a "verify" of the hash chain), the patient access log and
the login history of the clinic's staff. Reading only; ``core.audit.verify`` checks the chain."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlmodel import Session, col, func, select

from core import audit
from core.models.audit import AuditEntry
from core.models.auth import AccessLog, LoginAttempt, Membership
from core.models.patient import Patient
from ui import i18n, menu
from ui.i18n import N_
from ui.screens import call, clinic_zone, full_name
from ui.web import Page, clinic_page, render

router = APIRouter(prefix="/clinics/{clinic_id}/admin/audit", include_in_schema=False)
menu.register(menu.CoreItem("audit", N_("Audit journal"), "/clinics/{clinic_id}/admin/audit", "audit.view", 850))
PAGE = 50
ACCESS_ACTIONS = {"view": N_("Opened the card"), "view_identifiers": N_("Showed identifiers in full"),
                  "print": N_("Printed"), "export": N_("Exported")}
LOGIN_REASONS = {"ok": N_("Logged in"), "bad_password": N_("Wrong password"), "unknown_user": N_("Unknown login name"),
                 "inactive": N_("Account deactivated"), "locked": N_("Locked after failed attempts")}


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _range(page: Page, first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    tz = clinic_zone(page)
    start = datetime.combine(first, time(), tzinfo=tz) if first else None
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=tz) if last else None
    return start, end


def _journal(page: Page, action: str, actor: str, target: str, first: date | None, last: date | None,
             number: int) -> tuple[list[AuditEntry], int]:
    start, end = _range(page, first, last)
    conditions: list[Any] = [AuditEntry.clinic_id == page.clinic_id]
    if action:
        conditions.append(col(AuditEntry.action).startswith(action))
    if actor:
        conditions.append(func.lower(AuditEntry.actor_name).contains(actor.casefold()))
    if target:
        conditions.append(col(AuditEntry.target).startswith(target))
    if start is not None:
        conditions.append(col(AuditEntry.at) >= start)
    if end is not None:
        conditions.append(col(AuditEntry.at) < end)
    with Session(page.praxis.engine) as session:
        total = session.exec(select(func.count()).select_from(AuditEntry).where(*conditions)).one()
        rows = session.exec(select(AuditEntry).where(*conditions).order_by(col(AuditEntry.seq).desc())
                            .limit(PAGE).offset((number - 1) * PAGE)).all()
        actions = sorted({a.split(".")[0] for a in session.exec(
            select(AuditEntry.action).where(AuditEntry.clinic_id == page.clinic_id).distinct()).all()})
    page.request.state.audit_actions = actions
    return list(rows), int(total)


@router.get("")
def journal(clinic_id: int, action: str = Query("", max_length=100), actor: str = Query("", max_length=100),
            target: str = Query("", max_length=200), start: str = Query("", alias="from", max_length=10),
            end: str = Query("", alias="to", max_length=10), number: int = Query(1, ge=1, alias="page"),
            page: Page = Depends(clinic_page("audit.view"))) -> Response:
    filters = {"action": action.strip(), "actor": actor.strip(), "target": target.strip(), "from": start, "to": end}
    rows, total = _journal(page, filters["action"], filters["actor"], filters["target"], _day(start), _day(end),
                           number)
    entries = [{"e": e, "data": json.dumps(e.data, ensure_ascii=False, sort_keys=True)[:600]} for e in rows]
    return render(page, "admin/audit.html", _values(page, entries, total, number, filters, None))


def _values(page: Page, entries: list[dict[str, Any]], total: int, number: int, filters: dict[str, str],
            verified: Any) -> dict[str, Any]:
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in filters.items() if v})
    return {"entries": entries, "total": total, "number": number, "pages": max(1, -(-total // PAGE)),
            "filters": filters, "verified": verified, "tab": "audit",
            "actions": getattr(page.request.state, "audit_actions", []),
            "page_base": f"/clinics/{page.clinic_id}/admin/audit?" + (query + "&" if query else "") + "page="}


@router.post("/verify")
async def verify(clinic_id: int, page: Page = Depends(clinic_page("audit.view"))) -> Response:
    """Walk the whole hash chain (every clinic's entries are links of the one chain) and report breaks."""

    def run() -> dict[str, Any]:
        with Session(page.praxis.engine) as session:
            count = session.exec(select(func.count()).select_from(AuditEntry)).one()
            problems = audit.verify(session)
        return {"ok": not problems, "count": int(count), "problems": problems[:50]}

    result = await call(page, run)
    rows, total = _journal(page, "", "", "", None, None, 1)
    entries = [{"e": e, "data": json.dumps(e.data, ensure_ascii=False, sort_keys=True)[:600]} for e in rows]
    filters = {"action": "", "actor": "", "target": "", "from": "", "to": ""}
    return render(page, "admin/audit.html", _values(page, entries, total, 1, filters, result),
                  status=200 if result["ok"] else 409)


@router.get("/access")
def access_log(clinic_id: int, patient: str = Query("", max_length=64), number: int = Query(1, ge=1, alias="page"),
               page: Page = Depends(clinic_page("audit.view"))) -> Response:
    import uuid

    with Session(page.praxis.engine) as session:
        query = select(AccessLog).where(AccessLog.clinic_id == clinic_id)
        if patient.strip():
            query = query.where(AccessLog.patient_id == patient.strip())
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(query.order_by(col(AccessLog.at).desc(), col(AccessLog.id).desc())
                            .limit(PAGE).offset((number - 1) * PAGE)).all()
        ids = set()
        for r in rows:
            try:
                ids.add(uuid.UUID(r.patient_id))
            except ValueError:
                continue
        names = {str(pid): full_name(f, g) for pid, f, g in session.exec(
            select(Patient.id, Patient.family_name, Patient.given_name).where(col(Patient.id).in_(list(ids)))).all()}
    with i18n.using(page.locale):
        items = [{"r": r, "patient": names.get(r.patient_id, r.patient_id),
                  "what": i18n.gettext(ACCESS_ACTIONS[r.action]) if r.action in ACCESS_ACTIONS else r.action}
                 for r in rows]
    return render(page, "admin/access.html", {"items": items, "total": int(total), "patient": patient,
                                              "number": number, "pages": max(1, -(-int(total) // PAGE)),
                                              "tab": "access"})


@router.get("/logins")
def login_history(clinic_id: int, failed: str = Query("", max_length=5), number: int = Query(1, ge=1, alias="page"),
                  page: Page = Depends(clinic_page("users.manage"))) -> Response:
    """Login attempts of the people working in this clinic, newest first (as ``/api/auth/logins``)."""
    with Session(page.praxis.engine) as session:
        members = select(Membership.user_id).where(Membership.clinic_id == clinic_id)
        query = select(LoginAttempt).where(col(LoginAttempt.user_id).in_(members))
        if failed in ("1", "true"):
            query = query.where(LoginAttempt.success == False)  # noqa: E712
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(query.order_by(col(LoginAttempt.at).desc(), col(LoginAttempt.id).desc())
                            .limit(PAGE).offset((number - 1) * PAGE)).all()
    with i18n.using(page.locale):
        items = [{"r": r, "what": i18n.gettext(LOGIN_REASONS[r.reason]) if r.reason in LOGIN_REASONS else r.reason}
                 for r in rows]
    return render(page, "admin/logins.html", {"items": items, "total": int(total), "failed": failed in ("1", "true"),
                                              "number": number, "pages": max(1, -(-int(total) // PAGE)),
                                              "tab": "logins"})
