"""Clinical records: the list of records waiting for a signature (filters by day, doctor and patient), signing
many at once with one intent check (none, an SMS code, or a QR code for a face check), verification reports,
the PDF export, and writing, finalising and amending records from the patient card.

Every read and write goes through ``core.records.service.RecordService`` and ``core.records.signing.SigningService``
(the same code as ``/api/clinics/{id}/records``); this module turns forms into their schemas and their refusals
into messages in the user's language, next to the field they concern.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session

from core.models.records import SignatureKind
from core.patients.errors import PatientNotFound
from core.patients.service import PatientService
from core.records.errors import IntentCheckFailed, RecordError, RecordNotFound, SessionExpired, SessionLocked
from core.records.schemas import AmendIn, ChallengeOut, RecordCreate, RecordOut, RecordUpdate, VerificationOut
from core.records.service import ListFilters, RecordService
from core.records.signing import Signer, SigningService
from plugin_sdk.errors import ValidationFailed
from ui import i18n, menu
from ui.i18n import N_, _
from ui.routes.book import resources
from ui.screens import (
    FORM,
    Errors,
    call,
    field_error_map,
    form_of,
    full_name,
    htmx_response,
    parse_date,
    pydantic_errors,
    text,
)
from ui.web import Page, PageError, clinic_page, redirect_with_flash, render, render_text

router = APIRouter(prefix="/clinics/{clinic_id}/records", include_in_schema=False)
menu.register(menu.CoreItem("records", N_("Records"), "/clinics/{clinic_id}/records", "records.view", 30))

PAGE_SIZE = 50
STATUS_TITLES = {"draft": N_("Draft"), "final": N_("Final, not signed"), "signed": N_("Signed"),
                 "locked": N_("Locked")}
KIND_TITLES = {"visit_note": N_("Visit note"), "treatment": N_("Treatment"), "consent_note": N_("Consent note")}
WAITING_TITLES = {"sign": N_("Waiting for the author's signature"),
                  "countersign": N_("Waiting for a countersignature")}
METHOD_TITLES = {"none": N_("No extra check"), "sms_code": N_("Code by text message"),
                 "qr_face": N_("Face check with a QR code")}
FIELDS = ("title", "kind", "text", "content", "reason", "appointment_id")
# The records service's refusals, by error code, in the user's language.
CODE_MESSAGES = {
    "record_signed": N_("This record is signed and can no longer be changed: write an amendment instead."),
    "record_not_draft": N_("This record is final: turn it back into a draft before editing."),
    "record_not_final": N_("Only final records can be signed; finalise the draft first."),
    "not_author": N_("You sign only your own records; a supervisor countersigns a trainee's."),
    "own_record": N_("A countersignature comes from a supervisor, not from the author."),
    "no_countersign_needed": N_("This record does not wait for a countersignature."),
    "superseded": N_("This record was amended; sign its latest version."),
    "no_provider": N_("No signing plugin is enabled in this clinic; an administrator enables one."),
    "not_enrolled": N_("You cannot sign yet: finish the one-time set-up of the signing plugin first."),
    "session_done": N_("This signing session is finished already."),
    "session_locked": N_("Too many wrong codes: this signing session is locked. Start signing again."),
    "session_expired": N_("The signing session expired. Start signing again."),
    "session_failed": N_("The signing session failed. Start signing again."),
    "signing_failed": N_("The signing service refused to sign; nothing was stored."),
    "signing_unavailable": N_("The signing service cannot be reached now; nothing was stored. Try again later."),
    "intent_check_failed": N_("The code is not correct."),
    "intent_pending": N_("The check is not finished yet: scan the QR code with your phone, finish the face check, "
                         "then press the button again."),
    "revision_conflict": N_("Someone saved this record meanwhile; reload it and make your change again."),
    "forbidden": N_("You do not have permission to do this."),
}
FIELD_CODES = {"not_found": N_("This entry no longer exists; reload the page."),
               "inactive": N_("Records are written for active patients only."),
               "unknown_provider": N_("Choose one of the offered values."),
               "unknown_method": N_("Choose one of the offered values."),
               "patient_mismatch": N_("This appointment belongs to another patient."),
               "empty": N_("An empty record cannot be finalised; write the note first.")}


def records(page: Page) -> RecordService:
    return RecordService(page.praxis)


def signing(page: Page) -> SigningService:
    return SigningService(page.praxis)


def signer(page: Page) -> Signer:
    assert page.principal is not None and page.clinic_id is not None
    return Signer(page.principal.actor, page.principal.permissions_in(page.clinic_id))


def refusal(exc: RecordError) -> str:
    """A records refusal in the user's language (the service's own words for a code we do not know)."""
    message = CODE_MESSAGES.get(exc.code)
    return i18n.gettext(message) if message else str(exc)


def field_errors(exc: ValidationFailed) -> Errors:
    errors: Errors = {}
    for error in exc.errors:
        name = error.field.split(".")[0] if error.field else FORM
        message = FIELD_CODES.get(error.code)
        text_ = i18n.gettext(message) if message else field_error_map(ValidationFailed([error]))[error.field][0]
        errors.setdefault(name if name in FIELDS or name in ("provider", "method", "response") else FORM,
                          []).append(text_)
    return errors


def _not_found() -> PageError:
    return PageError(404, "not_found")


def titles(mapping: dict[str, str]) -> dict[str, str]:
    return {key: i18n.gettext(value) for key, value in mapping.items()}


def _common(page: Page) -> dict[str, Any]:
    return {"status_titles": titles(STATUS_TITLES), "kind_titles": titles(KIND_TITLES),
            "waiting_titles": titles(WAITING_TITLES), "method_titles": titles(METHOD_TITLES),
            "base": f"/clinics/{page.clinic_id}/records", "api": f"/api/clinics/{page.clinic_id}/records"}


# --- the list: waiting for signature --------------------------------------------------------------------------


def _providers(page: Page) -> list[dict[str, Any]]:
    if not page.can("records.edit") and not page.can("records.countersign"):
        return []
    assert page.clinic_id is not None
    found = signing(page).list_providers(page.clinic_id, signer(page))
    return [{"plugin": p.plugin, "title": i18n.plugin_text(p.plugin, p.title), "methods": p.intent_methods,
             "ready": bool(p.enrollment and p.enrollment.ready),
             "todo": [s.message for s in (p.enrollment.steps if p.enrollment else []) if not s.done],
             "problem": p.problem} for p in found]


def _list_values(page: Page, *, show: str, date_from: str, date_to: str, author: str, patient: str,
                 number: int, errors: Errors | None = None) -> dict[str, Any]:
    assert page.clinic_id is not None and page.principal is not None
    errors = dict(errors or {})
    first = parse_date(date_from, "date_from", errors)
    last = parse_date(date_to, "date_to", errors)
    if first and last and last < first:
        errors.setdefault("date_to", []).append(_("The end must be after the start."))
    author_id = int(author) if author.isdigit() else None
    patient_id = None
    patient_name = ""
    if patient:
        try:
            patient_id = uuid.UUID(patient)
            found = PatientService(page.praxis).get(page.clinic_id, patient_id, page.principal.actor)
            patient_name = full_name(found.family_name, found.given_name)
        except (ValueError, PatientNotFound):
            errors.setdefault("patient", []).append(_("This patient was not found in this clinic."))
            patient_id = None
    result = None
    if not errors:
        filters = ListFilters(waiting=show != "all", author_id=author_id, patient_id=patient_id, date_from=first,
                              date_to=last, include_superseded=show != "all")
        result = records(page).search(page.clinic_id, filters, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    with Session(page.praxis.engine) as session:
        doctors = resources(session, page.clinic_id).doctors
    me = page.principal.user_id
    rows = []
    for row in result.items if result else []:
        can_sign = row.waiting_for == "sign" and row.author_id == me and page.can("records.edit")
        can_countersign = (row.waiting_for == "countersign" and row.author_id != me
                           and page.can("records.countersign"))
        rows.append({"row": row, "selectable": can_sign or can_countersign,
                     "action": "sign" if can_sign else "countersign" if can_countersign else ""})
    query = {k: v for k, v in (("show", show if show == "all" else ""), ("date_from", date_from),
                               ("date_to", date_to), ("author", author), ("patient", patient)) if v}
    return {"rows": rows, "total": result.total if result else 0, "errors": errors, "show": show,
            "date_from": date_from, "date_to": date_to, "author": author, "patient": patient,
            "patient_name": patient_name, "doctors": doctors, "number": number,
            "pages": max(1, -(-(result.total if result else 0) // PAGE_SIZE)),
            "page_base": "?" + urlencode(query) + ("&" if query else "") + "page=",
            "providers": _providers(page), **_common(page)}


@router.get("")
def record_list(clinic_id: int, show: str = Query("waiting", max_length=10),
                date_from: str = Query("", max_length=10), date_to: str = Query("", max_length=10),
                author: str = Query("", max_length=12), patient: str = Query("", max_length=40),
                number: int = Query(1, ge=1, le=10_000, alias="page"),
                page: Page = Depends(clinic_page("records.view"))) -> Response:
    with i18n.using(page.locale):
        values = _list_values(page, show=show, date_from=date_from.strip(), date_to=date_to.strip(),
                              author=author.strip(), patient=patient.strip(), number=number)
    return render(page, "records/list.html", values, status=422 if values["errors"] else 200)


# --- signing: one intent check for the chosen records ----------------------------------------------------------


def _qr_data_uri(url: str | None) -> str | None:
    if not url:
        return None
    return str(segno.make(url, error="m").svg_data_uri(scale=5))


def _challenge_page(page: Page, challenge: ChallengeOut, errors: Errors | None = None, *,
                    status: int = 200, back: str = "") -> Response:
    return render(page, "records/sign.html", {"challenge": challenge, "qr": _qr_data_uri(challenge.qr_url),
                                              "errors": errors or {}, "back": back, **_common(page)}, status=status)


def _safe_back(page: Page, back: str) -> str:
    base = f"/clinics/{page.clinic_id}/"
    return back if back.startswith(base) and "//" not in back and "\\" not in back else f"{base}records"


def _signed(page: Page, count: int, kind: str) -> None:
    if kind == SignatureKind.countersign:
        page.flash(i18n.ngettext("%(num)d record countersigned.", "%(num)d records countersigned.", count)
                   % {"num": count})
    else:
        page.flash(i18n.ngettext("%(num)d record signed.", "%(num)d records signed.", count) % {"num": count})


@router.post("/sign")
async def begin_signing(clinic_id: int, page: Page = Depends(clinic_page("records.view"))) -> Response:
    form = await form_of(page)
    kind = SignatureKind.countersign if text(form, "kind") == "countersign" else SignatureKind.sign
    if not page.can("records.countersign" if kind == SignatureKind.countersign else "records.edit"):
        raise PageError(403, "forbidden")
    back = _safe_back(page, text(form, "back"))
    ids: list[uuid.UUID] = []
    for raw in form.get("record_ids[]", []):
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            raise _not_found() from None
    with i18n.using(page.locale):
        if not ids:
            page.flash(_("Choose the records to sign first."), "error")
            return redirect_with_flash(page, back)
    provider = text(form, "provider") or None
    method = text(form, "method") or None
    try:
        challenge = await call(page, signing(page).begin, clinic_id, signer(page), ids, kind, provider, method)
        if challenge.status != "passed":
            return _challenge_page(page, challenge, back=back)
        done = await call(page, signing(page).complete, clinic_id, signer(page), challenge.session_id, None)
    except RecordNotFound:
        raise _not_found() from None
    except (RecordError, ValidationFailed) as exc:
        with i18n.using(page.locale):
            if isinstance(exc, ValidationFailed):
                messages = [m for ms in field_errors(exc).values() for m in ms]
            else:
                messages = [refusal(exc)]
            for message in messages:
                page.flash(message, "error")
        return redirect_with_flash(page, back)
    with i18n.using(page.locale):
        _signed(page, len(done.signed), kind)
    return redirect_with_flash(page, back)


@router.post("/signing/{session_id}")
async def complete_signing(clinic_id: int, session_id: uuid.UUID,
                           page: Page = Depends(clinic_page("records.view"))) -> Response:
    form = await form_of(page)
    back = _safe_back(page, text(form, "back"))
    answer = text(form, "response") or None
    svc = signing(page)
    try:
        done = await call(page, svc.complete, clinic_id, signer(page), session_id, answer)
    except RecordNotFound:
        raise _not_found() from None
    except IntentCheckFailed as exc:
        with i18n.using(page.locale):
            left = exc.details.get("attempts_left")
            message = refusal(exc)
            if isinstance(left, int):
                message += " " + i18n.ngettext("%(num)d more try.", "%(num)d more tries.", left) % {"num": left}
            challenge = _session_challenge(page, session_id, form)
            return _challenge_page(page, challenge, {"response": [message]}, status=422, back=back)
    except (SessionLocked, SessionExpired, RecordError) as exc:
        with i18n.using(page.locale):
            if exc.code == "intent_pending":
                challenge = _session_challenge(page, session_id, form)
                return _challenge_page(page, challenge, {FORM: [refusal(exc)]}, status=409, back=back)
            page.flash(refusal(exc), "error")
        return redirect_with_flash(page, back)
    kind = SignatureKind.countersign if text(form, "kind") == "countersign" else SignatureKind.sign
    with i18n.using(page.locale):
        _signed(page, len(done.signed), kind)
    return redirect_with_flash(page, back)


def _session_challenge(page: Page, session_id: uuid.UUID, form: dict[str, Any]) -> ChallengeOut:
    """The challenge page again after a wrong code: what the form carried (the session stays open)."""
    ids = []
    for raw in form.get("record_ids[]", []):
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            continue
    return ChallengeOut(session_id=session_id, provider=text(form, "provider"), kind=text(form, "challenge_kind"),
                        status="rejected", signing=text(form, "kind") or "sign", document_count=len(ids),
                        record_ids=ids, expires_at=None, attempts_left=None, qr_url=text(form, "qr_url") or None,
                        sent_to=text(form, "sent_to") or None, message="")


# --- one record ----------------------------------------------------------------------------------------------


def _load(page: Page, record_id: uuid.UUID) -> RecordOut:
    assert page.clinic_id is not None and page.principal is not None
    try:
        return records(page).get(page.clinic_id, record_id, page.principal.actor)
    except RecordNotFound:
        raise _not_found() from None


def _patient_name(page: Page, patient_id: uuid.UUID) -> str:
    assert page.clinic_id is not None and page.principal is not None
    try:
        p = PatientService(page.praxis).get(page.clinic_id, patient_id, page.principal.actor)
    except PatientNotFound:
        return ""
    return full_name(p.family_name, p.given_name)


def _record_values(page: Page, record: RecordOut, **extra: Any) -> dict[str, Any]:
    assert page.clinic_id is not None and page.principal is not None
    versions = records(page).versions(page.clinic_id, record.id)
    mine = record.author_id == page.principal.user_id
    return {"r": record, "versions": versions, "mine": mine, "patient_name": _patient_name(page, record.patient_id),
            "content_json": json.dumps(record.content, ensure_ascii=False, indent=2) if record.content else "",
            "report": None, "errors": {}, "values": {}, "amending": False, **_common(page), **extra}


@router.get("/{record_id}")
def record_view(clinic_id: int, record_id: uuid.UUID, page: Page = Depends(clinic_page("records.view"))) -> Response:
    with i18n.using(page.locale):
        record = _load(page, record_id)
        return render(page, "records/record.html", _record_values(page, record))


@router.post("/{record_id}/verify")
async def verify(clinic_id: int, record_id: uuid.UUID, page: Page = Depends(clinic_page("records.verify"))) -> Response:
    assert page.principal is not None
    try:
        report: VerificationOut = await call(page, signing(page).verify, clinic_id, record_id, page.principal.actor)
    except RecordNotFound:
        raise _not_found() from None
    with i18n.using(page.locale):
        if page.is_htmx:
            body = render_text(page, "records/record.html", {"report": report, **_common(page)}, block="report")
            return htmx_response(page, body, flash=False)
        record = _load(page, record_id)
        return render(page, "records/record.html", _record_values(page, record, report=report))


# --- write, edit, finalise, amend -----------------------------------------------------------------------------


def _content(raw: str, errors: Errors) -> dict[str, Any] | None:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        errors.setdefault("content", []).append(_("Enter the findings as a JSON object, e.g. {\"tooth\": \"36\"}."))
        return None
    return value


def _form_values(form: dict[str, Any]) -> dict[str, str]:
    return {name: str(form.get(name) or "") for name in FIELDS}


def _kind_options(current: str) -> list[tuple[str, str]]:
    options = [(k, i18n.gettext(v)) for k, v in KIND_TITLES.items()]
    if current and current not in KIND_TITLES:
        options.append((current, current))
    return options


def _editor(page: Page, *, mode: str, values: dict[str, str], errors: Errors, patient_id: uuid.UUID,
            record: RecordOut | None = None, status: int = 200) -> Response:
    return render(page, "records/form.html", {
        "mode": mode, "values": values, "errors": errors, "patient_id": patient_id, "record": record,
        "patient_name": _patient_name(page, patient_id), "kind_options": _kind_options(values.get("kind", "")),
        **_common(page)}, status=status)


def _write_errors(exc: Exception) -> Errors:
    if isinstance(exc, ValidationError):
        return pydantic_errors(exc, rename=lambda loc: loc.split(".")[0], known=FIELDS)
    if isinstance(exc, ValidationFailed):
        return field_errors(exc)
    assert isinstance(exc, RecordError)
    return {FORM: [refusal(exc)]}


@router.get("/new/{patient_id}")
def new_record(clinic_id: int, patient_id: uuid.UUID, appointment: int | None = Query(None, ge=1),
               page: Page = Depends(clinic_page("records.edit"))) -> Response:
    with i18n.using(page.locale):
        if not _patient_name(page, patient_id):
            raise _not_found()
        values = {**{name: "" for name in FIELDS}, "kind": "visit_note", "appointment_id": str(appointment or "")}
        return _editor(page, mode="new", values=values, errors={}, patient_id=patient_id)


@router.post("/new/{patient_id}")
async def create_record(clinic_id: int, patient_id: uuid.UUID,
                        page: Page = Depends(clinic_page("records.edit"))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    values = _form_values(form)
    errors: Errors = {}
    with i18n.using(page.locale):
        content = _content(values["content"], errors)
        try:
            body = RecordCreate(patient_id=patient_id, appointment_id=values["appointment_id"] or None,
                                kind=values["kind"] or "visit_note", title=values["title"], text=values["text"],
                                content=content or {})
        except ValidationError as exc:
            errors = {**_write_errors(exc), **errors}
        if errors:
            return _editor(page, mode="new", values=values, errors=errors, patient_id=patient_id, status=422)
    try:
        made = await call(page, records(page).create, clinic_id, body, page.principal.actor)
        if text(form, "finalise"):
            made = await call(page, records(page).finalise, clinic_id, made.id, page.principal.actor)
    except (ValidationFailed, RecordError) as exc:
        with i18n.using(page.locale):
            return _editor(page, mode="new", values=values, errors=_write_errors(exc), patient_id=patient_id,
                           status=422)
    with i18n.using(page.locale):
        page.flash(_("The record is saved as final; sign it from the records list.") if made.status == "final"
                   else _("The draft is saved."))
    return redirect_with_flash(page, f"/clinics/{clinic_id}/records/{made.id}")


@router.get("/{record_id}/edit")
def edit_record(clinic_id: int, record_id: uuid.UUID, page: Page = Depends(clinic_page("records.edit"))) -> Response:
    with i18n.using(page.locale):
        record = _load(page, record_id)
        values = {"title": record.title, "kind": record.kind, "text": record.text,
                  "content": json.dumps(record.content, ensure_ascii=False, indent=2) if record.content else "",
                  "appointment_id": str(record.appointment_id or ""), "reason": "",
                  "revision": str(record.revision)}
        errors: Errors = {}
        if record.status != "draft":
            code = "record_signed" if record.status in ("signed", "locked") else "record_not_draft"
            errors[FORM] = [i18n.gettext(CODE_MESSAGES[code])]
        return _editor(page, mode="edit", values=values, errors=errors, patient_id=record.patient_id, record=record,
                       status=409 if errors else 200)


@router.post("/{record_id}/edit")
async def update_record(clinic_id: int, record_id: uuid.UUID,
                        page: Page = Depends(clinic_page("records.edit"))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    values = {**_form_values(form), "revision": text(form, "revision")}
    with i18n.using(page.locale):
        record = _load(page, record_id)
        errors: Errors = {}
        content = _content(values["content"], errors)
        try:
            body = RecordUpdate(appointment_id=values["appointment_id"] or None, kind=values["kind"] or None,
                                title=values["title"], text=values["text"], content=content or {},
                                expected_revision=int(values["revision"]) if values["revision"].isdigit() else None)
        except ValidationError as exc:
            errors = {**_write_errors(exc), **errors}
        if errors:
            return _editor(page, mode="edit", values=values, errors=errors, patient_id=record.patient_id,
                           record=record, status=422)
    try:
        saved = await call(page, records(page).update, clinic_id, record_id, body, page.principal.actor)
        if text(form, "finalise"):
            saved = await call(page, records(page).finalise, clinic_id, record_id, page.principal.actor)
    except RecordNotFound:
        raise _not_found() from None
    except (ValidationFailed, RecordError) as exc:
        with i18n.using(page.locale):
            status = 409 if isinstance(exc, RecordError) and exc.status == 409 else 422
            return _editor(page, mode="edit", values=values, errors=_write_errors(exc), patient_id=record.patient_id,
                           record=record, status=status)
    with i18n.using(page.locale):
        page.flash(_("The record is saved as final; sign it from the records list.") if saved.status == "final"
                   else _("The draft is saved."))
    return redirect_with_flash(page, f"/clinics/{clinic_id}/records/{record_id}")


async def _transition(page: Page, record_id: uuid.UUID, fn_name: str, done: str) -> Response:
    assert page.principal is not None and page.clinic_id is not None
    svc = records(page)
    target = f"/clinics/{page.clinic_id}/records/{record_id}"
    try:
        await call(page, getattr(svc, fn_name), page.clinic_id, record_id, page.principal.actor)
    except RecordNotFound:
        raise _not_found() from None
    except RecordError as exc:
        with i18n.using(page.locale):
            page.flash(refusal(exc), "error")
        return redirect_with_flash(page, target)
    with i18n.using(page.locale):
        page.flash(i18n.gettext(done))
    if fn_name == "delete_draft":
        return redirect_with_flash(page, f"/clinics/{page.clinic_id}/records")
    return redirect_with_flash(page, target)


@router.post("/{record_id}/finalise")
async def finalise(clinic_id: int, record_id: uuid.UUID, page: Page = Depends(clinic_page("records.edit"))) -> Response:
    return await _transition(page, record_id, "finalise", N_("The record is final; sign it from the records list."))


@router.post("/{record_id}/reopen")
async def reopen(clinic_id: int, record_id: uuid.UUID, page: Page = Depends(clinic_page("records.edit"))) -> Response:
    return await _transition(page, record_id, "reopen", N_("The record is a draft again."))


@router.post("/{record_id}/delete")
async def delete(clinic_id: int, record_id: uuid.UUID, page: Page = Depends(clinic_page("records.edit"))) -> Response:
    return await _transition(page, record_id, "delete_draft", N_("The draft is deleted."))


@router.get("/{record_id}/amend")
def amend_form(clinic_id: int, record_id: uuid.UUID, page: Page = Depends(clinic_page("records.edit"))) -> Response:
    with i18n.using(page.locale):
        record = _load(page, record_id)
        values = {"title": record.title, "kind": record.kind, "text": record.text, "reason": "",
                  "content": json.dumps(record.content, ensure_ascii=False, indent=2) if record.content else "",
                  "appointment_id": ""}
        return _editor(page, mode="amend", values=values, errors={}, patient_id=record.patient_id, record=record)


@router.post("/{record_id}/amend")
async def amend(clinic_id: int, record_id: uuid.UUID, page: Page = Depends(clinic_page("records.edit"))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    values = _form_values(form)
    with i18n.using(page.locale):
        record = _load(page, record_id)
        errors: Errors = {}
        content = _content(values["content"], errors)
        try:
            body = AmendIn(reason=values["reason"], title=values["title"], text=values["text"], content=content or {})
        except ValidationError as exc:
            errors = {**_write_errors(exc), **errors}
        if errors:
            return _editor(page, mode="amend", values=values, errors=errors, patient_id=record.patient_id,
                           record=record, status=422)
    try:
        made = await call(page, records(page).amend, clinic_id, record_id, body, page.principal.actor)
    except RecordNotFound:
        raise _not_found() from None
    except (ValidationFailed, RecordError) as exc:
        with i18n.using(page.locale):
            return _editor(page, mode="amend", values=values, errors=_write_errors(exc), patient_id=record.patient_id,
                           record=record, status=409 if isinstance(exc, RecordError) else 422)
    with i18n.using(page.locale):
        page.flash(_("The amendment is saved as a new draft version; finalise and sign it."))
    return redirect_with_flash(page, f"/clinics/{clinic_id}/records/{made.id}")


# --- the patient card's section --------------------------------------------------------------------------------


@router.get("/patient/{patient_id}")
def patient_records(clinic_id: int, patient_id: uuid.UUID,
                    page: Page = Depends(clinic_page("records.view"))) -> Response:
    """The records of one patient, for the patient card (loaded by htmx)."""
    with i18n.using(page.locale):
        found = records(page).search(clinic_id, ListFilters(patient_id=patient_id, include_superseded=False),
                                     limit=PAGE_SIZE)
        body = render_text(page, "records/patient.html", {"items": found.items, "total": found.total,
                                                          "patient_id": patient_id,
                                                          **_common(page)})
    return htmx_response(page, body, flash=False)
