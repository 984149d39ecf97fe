"""The desk: find patients, open a card, register and change patients, trash and restore, merge.

Every read and write goes through ``core.patients.service.PatientService`` (the same code as
``/api/clinics/{id}/patients``): validation, plugins' vetoes, the duplicate check, audit and events are the
service's. This module only turns forms into the service's schemas and its refusals into messages shown
next to each field in the user's language.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import phonenumbers
from babel import Locale
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from core.models.audit import AuditEntry
from core.patients.errors import DuplicateWarning, PatientConflict, PatientNotFound
from core.patients.schemas import PatientCreate, PatientOut, PatientUpdate
from core.patients.service import PatientService
from core.scheduling import appointments as ap
from core.scheduling.people import staff_names
from plugin_sdk.errors import ValidationFailed
from ui import i18n, menu
from ui.i18n import N_, _
from ui.screens import (
    FORM,
    Errors,
    call,
    clinic_zone,
    field_error_map,
    flag,
    form_of,
    full_name,
    htmx_response,
    merge_errors,
    parse_date,
    plugin_panels,
    pydantic_errors,
    status_label,
    text,
)
from ui.web import Page, PageError, clinic_page, redirect_with_flash, render, render_text

router = APIRouter(prefix="/clinics/{clinic_id}/desk", include_in_schema=False)
menu.register(menu.CoreItem("desk", N_("Patients"), "/clinics/{clinic_id}/desk", "patients.view", 10))

PAGE_SIZE = 25
ROWS = {"phones": 2, "emails": 1, "guardians": 1, "alerts": 1, "consents": 1}  # at least this many form rows
SEX = {"female": N_("Female"), "male": N_("Male"), "other": N_("Other"), "unknown": N_("Not given")}
CHANNELS = {"sms": N_("Text message"), "email": N_("E-mail"), "none": N_("No reminders")}
PHONE_KINDS = {"mobile": N_("Mobile"), "home": N_("Home"), "work": N_("Work"), "other": N_("Other")}
ALERT_TYPES = {"allergy": N_("Allergy"), "disease": N_("Disease"), "medication": N_("Medication"),
               "other": N_("Other")}
SEVERITIES = {"high": N_("High"), "medium": N_("Medium"), "low": N_("Low")}
LANGUAGES = ("en", "ko", "ru", "zh", "hu")
HISTORY_ACTIONS = {
    "patient.created": N_("Registered"), "patient.updated": N_("Changed"), "patient.deleted": N_("Moved to the trash"),
    "patient.restored": N_("Restored"), "patient.merged": N_("Another card merged into this one"),
    "patient.merged_into": N_("Merged into another card"), "patient.unmerged": N_("Merge undone"),
    "patient.access.view": N_("Opened"), "patient.access.view_identifiers": N_("Identifiers shown in full"),
    "patient.access.print": N_("Printed"), "patient.access.export": N_("Exported"),
}
FIELD_TITLES = {
    "chart_number": N_("Chart number"), "family_name": N_("Family name"), "given_name": N_("Given name"),
    "family_name_latin": N_("Family name in Latin letters"), "given_name_latin": N_("Given name in Latin letters"),
    "birth_date": N_("Birth date"), "sex": N_("Sex"), "address": N_("Address"),
    "preferred_channel": N_("Reminders by"), "preferred_language": N_("Preferred language"), "vip": N_("VIP"),
    "notes": N_("Notes"), "tags": N_("Tags"), "phones": N_("Phones"), "emails": N_("E-mail addresses"),
    "identifiers": N_("Identifiers"), "guardians": N_("Guardians"), "alerts": N_("Medical alerts"),
    "consents": N_("Consents"), "status": N_("Status"),
}


def service(page: Page) -> PatientService:
    return PatientService(page.praxis)


def labels(mapping: dict[str, str]) -> list[tuple[str, str]]:
    return [(key, i18n.gettext(title)) for key, title in mapping.items()]


def language_options(current: str | None) -> list[tuple[str, str]]:
    here = i18n.current().babel_locale
    options = [("", "—")]
    codes = list(LANGUAGES) + ([current] if current and current not in LANGUAGES else [])
    for code in codes:
        try:
            name = Locale.parse(code.replace("-", "_")).get_display_name(here) or code
        except (ValueError, TypeError):
            name = code
        options.append((code, name))
    return options


def phone_display(e164: str) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def age(birth: date | None, today: date) -> int | None:
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _not_found(exc: PatientNotFound) -> PageError:
    return PageError(404, "not_found", str(exc))


# --- the list ----------------------------------------------------------------------------------------------


@dataclass
class Search:
    q: str = ""
    phone: str = ""
    chart: str = ""
    identifier_type: str = ""
    identifier: str = ""
    tag: str = ""
    vip: bool = False
    page: int = 1

    @property
    def empty(self) -> bool:
        return not (self.q or self.phone or self.chart or self.identifier or self.tag or self.vip)

    def page_base(self) -> str:
        """The query string without the page number, ready for ``page=N`` to be appended."""
        query = self.query(1)
        return f"{query}&page=" if query else "page="

    def query(self, page: int | None = None) -> str:
        from urllib.parse import urlencode

        values = {k: v for k, v in (("q", self.q), ("phone", self.phone), ("chart", self.chart),
                                    ("identifier_type", self.identifier_type if self.identifier else ""),
                                    ("identifier", self.identifier), ("tag", self.tag),
                                    ("vip", "1" if self.vip else ""), ("page", str(page or self.page)))
                  if v and not (k == "page" and v == "1")}
        return urlencode(values)


def _search(page: Page, s: Search, status: str = "active") -> tuple[Any, Errors]:
    assert page.clinic_id is not None
    svc = service(page)
    try:
        with i18n.using(page.locale):
            result = svc.search(page.clinic_id, q=s.q or None, phone=s.phone or None, chart_number=s.chart or None,
                                 identifier_type=(s.identifier_type or None) if s.identifier else None,
                                 identifier=s.identifier or None, tag=s.tag or None, vip=True if s.vip else None,
                                 status=status, limit=PAGE_SIZE, offset=(s.page - 1) * PAGE_SIZE)
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            return None, field_error_map(exc)
    return result, {}


@router.get("")
def patient_list(clinic_id: int, q: str = Query("", max_length=200), phone: str = Query("", max_length=40),
                 chart: str = Query("", max_length=40), identifier_type: str = Query("", max_length=64),
                 identifier: str = Query("", max_length=64), tag: str = Query("", max_length=50),
                 vip: str = Query("", max_length=5), page_no: int = Query(1, ge=1, le=10_000, alias="page"),
                 page: Page = Depends(clinic_page("patients.view"))) -> Response:
    s = Search(q.strip(), phone.strip(), chart.strip(), identifier_type.strip(), identifier.strip(), tag.strip(),
               vip in ("1", "true", "on"), page_no)
    result, errors = _search(page, s)
    types = service(page).identifier_types(clinic_id)
    values = {"search": s, "result": result, "errors": errors, "id_types": types, "phone_display": phone_display,
              "full_name": full_name, "pages": _pages(result)}
    if page.is_htmx and page.request.headers.get("hx-target") == "results":
        return render(page, "desk/list.html", values, block="results")
    return render(page, "desk/list.html", values)


def _pages(result: Any) -> int:
    if result is None:
        return 0
    return max(1, -(-result.total // PAGE_SIZE))


@router.get("/trash")
def trash_list(clinic_id: int, q: str = Query("", max_length=200), page_no: int = Query(1, ge=1, alias="page"),
               page: Page = Depends(clinic_page("patients.delete"))) -> Response:
    s = Search(q=q.strip(), page=page_no)
    result, errors = _search(page, s, status="trashed")
    return render(page, "desk/trash.html", {"search": s, "result": result, "errors": errors,
                                            "full_name": full_name, "pages": _pages(result)})


# --- the card ----------------------------------------------------------------------------------------------


@dataclass
class CardView:
    patient: PatientOut
    name: str
    age: int | None
    appointments: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    merged_into_name: str | None = None
    id_titles: dict[str, str] = field(default_factory=dict)


def _card(page: Page, patient_id: uuid.UUID, *, reveal: bool = False) -> CardView:
    assert page.clinic_id is not None and page.principal is not None
    svc = service(page)
    try:
        patient = svc.get(page.clinic_id, patient_id, page.principal.actor, reveal=reveal)
    except PatientNotFound as exc:
        raise _not_found(exc) from None
    tz = clinic_zone(page)
    view = CardView(patient, full_name(patient.family_name, patient.given_name),
                    age(patient.birth_date, datetime.now(UTC).astimezone(tz).date()))
    view.id_titles = {t.code: i18n.plugin_text(None, t.title) for t in svc.identifier_types(page.clinic_id).values()}
    for ident in patient.identifiers:
        view.id_titles.setdefault(ident.type_code, i18n.plugin_text(None, ident.title))
    if patient.merged_into is not None:
        try:
            other = svc.get(page.clinic_id, patient.merged_into, page.principal.actor)
            view.merged_into_name = full_name(other.family_name, other.given_name)
        except PatientNotFound:
            view.merged_into_name = None
    if page.can("appointments.view"):
        listed = ap.list_appointments(page.praxis, page.clinic_id, ap.Query(patient_id=patient_id,
                                                                               include_cancelled=True, limit=200))
        items = sorted(listed["items"], key=lambda a: a["start_at"], reverse=True)
        with Session(page.praxis.engine) as session:
            names = staff_names(session, page.clinic_id, {a["doctor_id"] for a in items})
        for item in items:
            item["start"] = datetime.fromisoformat(item["start_at"])
            item["end"] = datetime.fromisoformat(item["end_at"])
            item["doctor_name"] = names.get(item["doctor_id"], "—")
        view.appointments = items
    for entry in _changes(page, patient_id):
        data = entry.data or {}
        changed = sorted((data.get("changes") or {}).keys())
        view.history.append({"at": entry.at, "actor": entry.actor_name, "action": entry.action,
                             "title": i18n.gettext(HISTORY_ACTIONS[entry.action]) if entry.action in HISTORY_ACTIONS
                             else entry.action,
                             "fields": [i18n.gettext(FIELD_TITLES.get(c, c)) if c in FIELD_TITLES else c
                                        for c in changed],
                             "reason": data.get("reason") or data.get("deleted_reason")})
    return view


def _card_values(page: Page, view: CardView, **extra: Any) -> dict[str, Any]:
    return {"card": view, "p": view.patient, "phone_display": phone_display, "status_label": status_label,
            "sex_titles": dict(labels(SEX)),
            "channel_titles": dict(labels(CHANNELS)), "kind_titles": dict(labels(PHONE_KINDS)),
            "alert_titles": dict(labels(ALERT_TYPES)), "severity_titles": dict(labels(SEVERITIES)),
            "language_names": dict(language_options(view.patient.preferred_language)), "errors": {},
            "reason": "", "revealed": False, "panels": [], **extra}


# --- create and edit ---------------------------------------------------------------------------------------


@dataclass
class PatientForm:
    """What the form shows: values by input name, rows of each list, errors by input name."""

    values: dict[str, Any]
    rows: dict[str, list[dict[str, str]]]
    identifiers: list[dict[str, str]]
    errors: Errors = field(default_factory=dict)
    duplicates: list[Any] = field(default_factory=list)
    version: int | None = None


def _blank_rows(kind: str, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    wanted = max(ROWS[kind], len(rows) + 1)
    return rows + [{} for _ in range(wanted - len(rows))]


def _identifier_rows(page: Page, existing: dict[str, str], typed: dict[str, str] | None = None) -> list[dict[str, str]]:
    assert page.clinic_id is not None
    out = []
    for code, kind in sorted(service(page).identifier_types(page.clinic_id).items()):
        out.append({"code": code, "title": i18n.plugin_text(None, kind.title), "masked": existing.get(code, ""),
                    "value": (typed or {}).get(code, "")})
    return out


def _form_from_patient(page: Page, p: PatientOut) -> PatientForm:
    values = {"family_name": p.family_name, "given_name": p.given_name,
              "family_name_latin": p.family_name_latin or "", "given_name_latin": p.given_name_latin or "",
              "birth_date": p.birth_date.isoformat() if p.birth_date else "", "sex": p.sex,
              "chart_number": p.chart_number, "address": p.address, "preferred_channel": p.preferred_channel,
              "preferred_language": p.preferred_language or "", "vip": p.vip, "notes": p.notes,
              "tags": ", ".join(p.tags)}
    tz = clinic_zone(page)
    rows = {
        "phones": [{"id": str(r.id), "number": phone_display(r.e164), "kind": r.kind} for r in p.phones],
        "emails": [{"id": str(r.id), "email": r.email} for r in p.emails],
        "guardians": [{"id": str(r.id), "name": r.name, "relation": r.relation, "phone": r.phone or "",
                       "email": r.email or ""} for r in p.guardians],
        "alerts": [{"id": str(r.id), "type": r.type, "text": r.text, "severity": r.severity} for r in p.alerts],
        "consents": [{"id": str(r.id), "type": r.type, "version": r.version,
                      "signed_at": r.signed_at.astimezone(tz).date().isoformat(),
                      "revoked_at": r.revoked_at.astimezone(tz).date().isoformat() if r.revoked_at else ""}
                     for r in p.consents],
    }
    existing = {i.type_code: i.masked for i in p.identifiers}
    return PatientForm(values, {k: _blank_rows(k, v) for k, v in rows.items()}, _identifier_rows(page, existing),
                       version=p.version)


SCALAR_INPUTS = ("family_name", "given_name", "family_name_latin", "given_name_latin", "birth_date", "sex",
                 "chart_number", "address", "preferred_channel", "preferred_language", "notes", "tags")
ROW_FIELDS = {
    "phones": ("id", "number", "kind"),
    "emails": ("id", "email"),
    "guardians": ("id", "name", "relation", "phone", "email"),
    "alerts": ("id", "type", "text", "severity"),
    "consents": ("id", "type", "version", "signed_at", "revoked_at"),
}
# A row counts as filled when one of these has a value (a kind or severity alone is only a default).
ROW_CONTENT = {"phones": ("number",), "emails": ("email",), "guardians": ("name", "phone", "email"),
               "alerts": ("text",), "consents": ("type", "signed_at")}


def _read_rows(form: dict[str, Any], kind: str) -> tuple[list[dict[str, str]], list[int]]:
    """All submitted rows of ``kind`` (to show again) and the form indexes of the filled ones, in order."""
    indexes = sorted({int(key.split(".")[1]) for key in form
                      if key.startswith(kind + ".") and key.count(".") == 2 and key.split(".")[1].isdigit()
                      and not key.endswith("[]")})
    rows, filled = [], []
    for i in indexes:
        row = {name: text(form, f"{kind}.{i}.{name}") for name in ROW_FIELDS[kind]}
        rows.append(row)
        if any(row[name] for name in ROW_CONTENT[kind]):
            filled.append(len(rows) - 1)
    return rows, filled


def _local_midnight(page: Page, value: date) -> datetime:
    return datetime.combine(value, time(), tzinfo=clinic_zone(page)).astimezone(UTC)


def _parse_form(page: Page, form: dict[str, Any], *, editing: bool, existing_ids: dict[str, str] | None = None
                ) -> tuple[PatientForm, dict[str, Any], dict[str, dict[int, int]], Errors]:
    """The form's values for the service, the row index map (service index -> form index) and early errors."""
    errors: Errors = {}
    values: dict[str, Any] = {name: text(form, name) for name in SCALAR_INPUTS}
    values["vip"] = flag(form, "vip")
    data: dict[str, Any] = {k: values[k] for k in ("family_name", "given_name", "address", "notes")}
    for name in ("family_name_latin", "given_name_latin", "preferred_language"):
        data[name] = values[name] or None
    data["sex"] = values["sex"] or "unknown"
    data["preferred_channel"] = values["preferred_channel"] or "sms"
    data["vip"] = values["vip"]
    data["tags"] = [t.strip() for t in values["tags"].replace("\n", ",").split(",") if t.strip()]
    birth = parse_date(values["birth_date"], "birth_date", errors)
    data["birth_date"] = birth
    if values["chart_number"] or editing:
        data["chart_number"] = values["chart_number"] or ("" if editing else None)
    rows: dict[str, list[dict[str, str]]] = {}
    index_map: dict[str, dict[int, int]] = {}
    for kind in ROW_FIELDS:
        all_rows, filled = _read_rows(form, kind)
        shown_rows = all_rows[:filled[-1] + 1] if filled else []  # trailing blank rows are not shown twice
        rows[kind] = _blank_rows(kind, shown_rows)
        index_map[kind] = {n: i for n, i in enumerate(filled)}
        items = []
        for i in filled:
            row = {k: v for k, v in all_rows[i].items()}
            item: dict[str, Any] = {"id": row.pop("id") or None}
            if kind == "consents":
                signed = parse_date(row["signed_at"], f"consents.{i}.signed_at", errors, required=True)
                revoked = parse_date(row["revoked_at"], f"consents.{i}.revoked_at", errors)
                item.update(type=row["type"], version=row["version"],
                            signed_at=_local_midnight(page, signed) if signed else None,
                            revoked_at=_local_midnight(page, revoked) if revoked else None)
                if signed is None:
                    continue
            elif kind == "guardians":
                item.update(name=row["name"], relation=row["relation"], phone=row["phone"] or None,
                            email=row["email"] or None)
            else:
                item.update({k: v for k, v in row.items() if v != "" or k in ("number", "email", "text")})
            items.append(item)
        data[kind] = items
    typed = {}
    identifiers: dict[str, str | None] = {}
    for row in _identifier_rows(page, existing_ids or {}):
        code = row["code"]
        raw = text(form, f"identifiers.{code}")
        typed[code] = raw
        if raw:
            identifiers[code] = raw
        elif editing and flag(form, f"identifiers.{code}.remove"):
            identifiers[code] = None
    data["identifiers"] = identifiers
    shown = PatientForm(values, rows, _identifier_rows(page, existing_ids or {}, typed))
    return shown, data, index_map, errors


def _renamer(index_map: dict[str, dict[int, int]]) -> Any:
    """Map a service field ('phones.1', 'guardians.0.phone', 'identifiers.hu.taj') to the form's input name."""

    def rename(name: str) -> str:
        parts = name.split(".")
        if parts[0] in index_map and len(parts) >= 2 and parts[1].isdigit():
            form_index = index_map[parts[0]].get(int(parts[1]), int(parts[1]))
            tail = parts[2:] or [{"phones": "number", "emails": "email", "guardians": "name", "alerts": "text",
                                  "consents": "type"}[parts[0]]]
            return ".".join([parts[0], str(form_index), *tail])
        if parts[0] == "tags":
            return "tags"
        if parts[0] == "identifiers" and len(parts) > 1:
            return "identifiers." + ".".join(parts[1:])
        return name

    return rename


def _input_names(shown: PatientForm) -> set[str]:
    names = set(shown.values) | {"birth_date"}
    for kind, rows in shown.rows.items():
        for i in range(len(rows)):
            names |= {f"{kind}.{i}.{f}" for f in ROW_FIELDS[kind]}
    names |= {f"identifiers.{r['code']}" for r in shown.identifiers}
    return names


def _form_page(page: Page, shown: PatientForm, *, patient: PatientOut | None, status: int = 200) -> Response:
    assert page.clinic_id is not None
    return render(page, "desk/form.html", {
        "form": shown, "patient": patient, "full_name": full_name,
        "sex_options": labels(SEX), "channel_options": labels(CHANNELS), "kind_options": labels(PHONE_KINDS),
        "alert_options": labels(ALERT_TYPES), "severity_options": labels(SEVERITIES),
        "language_options": language_options(shown.values.get("preferred_language")),
        "chart_example": service(page).chart_format(page.clinic_id).example if patient is None else "",
        "phone_display": phone_display,
    }, status=status)


@router.get("/new")
def new_patient(clinic_id: int, name: str = Query("", max_length=200), phone: str = Query("", max_length=40),
                page: Page = Depends(clinic_page("patients.edit"))) -> Response:
    family, _sep, given = name.strip().partition(" ")
    values: dict[str, Any] = dict.fromkeys(SCALAR_INPUTS, "")
    values.update(family_name=family, given_name=given, sex="unknown", preferred_channel="sms", vip=False)
    rows = {k: _blank_rows(k, []) for k in ROWS}
    if phone.strip():
        rows["phones"][0] = {"number": phone.strip(), "kind": "mobile"}
    with i18n.using(page.locale):
        shown = PatientForm(values, rows, _identifier_rows(page, {}))
    return _form_page(page, shown, patient=None)


@router.post("/new")
async def create_patient(clinic_id: int, page: Page = Depends(clinic_page("patients.edit"))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    with i18n.using(page.locale):
        shown, data, index_map, errors = _parse_form(page, form, editing=False)
    rename = _renamer(index_map)
    known = _input_names(shown)
    if not errors:
        try:
            body = PatientCreate.model_validate({**data, "confirm_duplicate": flag(form, "confirm_duplicate")})
        except ValidationError as exc:
            with i18n.using(page.locale):
                errors = pydantic_errors(exc, rename=rename, known=known)
        else:
            try:
                created = await call(page, service(page).create, clinic_id, body, page.principal.actor)
            except ValidationFailed as exc:
                with i18n.using(page.locale):
                    errors = field_error_map(exc, rename=rename, known=known)
            except DuplicateWarning as exc:
                shown.duplicates = [c for c in exc.details.get("candidates", [])]
                return _form_page(page, shown, patient=None, status=409)
            else:
                with i18n.using(page.locale):
                    page.flash(_("%(name)s is registered with chart number %(chart)s.")
                               % {"name": full_name(created.family_name, created.given_name),
                                  "chart": created.chart_number})
                return redirect_with_flash(page, f"/clinics/{clinic_id}/desk/{created.id}")
    shown.errors = merge_errors(errors)
    return _form_page(page, shown, patient=None, status=422)


def _load(page: Page, patient_id: uuid.UUID) -> PatientOut:
    assert page.clinic_id is not None and page.principal is not None
    try:
        return service(page).get(page.clinic_id, patient_id, page.principal.actor)
    except PatientNotFound as exc:
        raise _not_found(exc) from None


@router.get("/{patient_id}/edit")
def edit_patient(clinic_id: int, patient_id: uuid.UUID,
                 page: Page = Depends(clinic_page("patients.edit"))) -> Response:
    patient = _load(page, patient_id)
    with i18n.using(page.locale):
        shown = _form_from_patient(page, patient)
    return _form_page(page, shown, patient=patient)


@router.post("/{patient_id}/edit")
async def update_patient(clinic_id: int, patient_id: uuid.UUID,
                         page: Page = Depends(clinic_page("patients.edit"))) -> Response:
    assert page.principal is not None
    patient = await call(page, _load, page, patient_id)
    form = await form_of(page)
    existing = {i.type_code: i.masked for i in patient.identifiers}
    with i18n.using(page.locale):
        shown, data, index_map, errors = _parse_form(page, form, editing=True, existing_ids=existing)
    shown.version = patient.version
    rename = _renamer(index_map)
    known = _input_names(shown)
    if not errors:
        try:
            version = int(text(form, "version") or patient.version)
        except ValueError:
            version = patient.version
        try:
            body = PatientUpdate.model_validate({**data, "version": version})
        except ValidationError as exc:
            with i18n.using(page.locale):
                errors = pydantic_errors(exc, rename=rename, known=known)
        else:
            try:
                saved = await call(page, service(page).update, clinic_id, patient_id, body, page.principal.actor)
            except ValidationFailed as exc:
                with i18n.using(page.locale):
                    errors = field_error_map(exc, rename=rename, known=known)
            except PatientConflict as exc:
                with i18n.using(page.locale):
                    if exc.code == "version_conflict":
                        errors = {FORM: [_("Someone else changed this card while you were editing it. Reload "
                                           "the card and make your change again.")]}
                    else:
                        errors = {FORM: [_("This card cannot be changed: it is in the trash or merged.")]}
                shown.errors = errors
                return _form_page(page, shown, patient=patient, status=409)
            else:
                with i18n.using(page.locale):
                    page.flash(_("The card of %(name)s is saved.")
                               % {"name": full_name(saved.family_name, saved.given_name)})
                return redirect_with_flash(page, f"/clinics/{clinic_id}/desk/{patient_id}")
    shown.errors = errors
    return _form_page(page, shown, patient=patient, status=422)


def _changes(page: Page, patient_id: uuid.UUID, limit: int = 100) -> list[AuditEntry]:
    """The card's changes from the audit journal, newest first (openings are in the access log)."""
    with Session(page.praxis.engine) as session:
        return list(session.exec(
            select(AuditEntry).where(AuditEntry.clinic_id == page.clinic_id,
                                     AuditEntry.target == f"patient:{patient_id}",
                                     col(AuditEntry.action).not_like("patient.access.%"))
            .order_by(col(AuditEntry.seq).desc()).limit(limit)).all())


@router.get("/{patient_id}")
def patient_card(clinic_id: int, patient_id: uuid.UUID, reveal: str = Query("", max_length=5),
                 page: Page = Depends(clinic_page("patients.view"))) -> Response:
    show = reveal in ("1", "true")
    if show and not page.can("patients.view_identifiers"):
        raise PageError(403, "forbidden")
    with i18n.using(page.locale):
        view = _card(page, patient_id, reveal=show)
    values = _card_values(page, view, revealed=show)
    with i18n.using(page.locale):
        values["panels"] = plugin_panels(page, "patient", patient_id=str(patient_id)) \
            if view.patient.status == "active" else []
    if show and page.is_htmx:
        return render(page, "desk/card.html", values, block="identifiers")
    return render(page, "desk/card.html", values)


# --- trash, restore, merge ---------------------------------------------------------------------------------


@router.post("/{patient_id}/trash")
async def trash_patient(clinic_id: int, patient_id: uuid.UUID,
                        page: Page = Depends(clinic_page("patients.delete"))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    reason = text(form, "reason")
    try:
        trashed = await call(page, service(page).trash, clinic_id, patient_id, reason, page.principal.actor)
    except PatientNotFound as exc:
        raise _not_found(exc) from None
    except (ValidationFailed, PatientConflict) as exc:
        with i18n.using(page.locale):
            if isinstance(exc, ValidationFailed):
                errors = field_error_map(exc)
            else:
                errors = {"reason": [_("This card is already in the trash or merged.")]}
            view = _card(page, patient_id)
        return render(page, "desk/card.html", _card_values(page, view, errors=errors, reason=reason,
                                                           open_trash=True), status=422)
    with i18n.using(page.locale):
        page.flash(_("The card of %(name)s is in the trash. It can be restored from there.")
                   % {"name": full_name(trashed.family_name, trashed.given_name)})
    return redirect_with_flash(page, f"/clinics/{clinic_id}/desk/{patient_id}")


@router.post("/{patient_id}/restore")
async def restore_patient(clinic_id: int, patient_id: uuid.UUID,
                          page: Page = Depends(clinic_page("patients.delete"))) -> Response:
    assert page.principal is not None
    try:
        restored = await call(page, service(page).restore, clinic_id, patient_id, page.principal.actor)
    except PatientNotFound as exc:
        raise _not_found(exc) from None
    except (ValidationFailed, PatientConflict) as exc:
        with i18n.using(page.locale):
            if isinstance(exc, ValidationFailed):
                message = " ".join(m for ms in field_error_map(exc).values() for m in ms)
            else:
                message = _("This card is not in the trash.")
            page.flash(message, "error")
        return redirect_with_flash(page, f"/clinics/{clinic_id}/desk/{patient_id}")
    with i18n.using(page.locale):
        page.flash(_("The card of %(name)s is restored.") % {"name": full_name(restored.family_name,
                                                                                   restored.given_name)})
    return redirect_with_flash(page, f"/clinics/{clinic_id}/desk/{patient_id}")


@router.get("/{patient_id}/merge")
def merge_page(clinic_id: int, patient_id: uuid.UUID, q: str = Query("", max_length=200),
               other: uuid.UUID | None = None, page: Page = Depends(clinic_page("patients.merge"))) -> Response:
    patient = _load(page, patient_id)
    s = Search(q=q.strip())
    result, errors = _search(page, s) if s.q else (None, {})
    other_patient = _load(page, other) if other is not None else None
    values = {"patient": patient, "search": s, "result": result, "errors": errors, "other": other_patient,
              "full_name": full_name, "phone_display": phone_display}
    if page.is_htmx and page.request.headers.get("hx-target") == "merge-results":
        return render(page, "desk/merge.html", values, block="results")
    return render(page, "desk/merge.html", values)


@router.post("/{patient_id}/merge")
async def merge_patients(clinic_id: int, patient_id: uuid.UUID,
                         page: Page = Depends(clinic_page("patients.merge"))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    try:
        other = uuid.UUID(text(form, "other"))
    except ValueError:
        raise PageError(404, "not_found") from None
    survivor, merged = (patient_id, other) if text(form, "keep") != "other" else (other, patient_id)
    try:
        result = await call(page, service(page).merge, clinic_id, survivor, merged, page.principal.actor)
    except PatientNotFound as exc:
        raise _not_found(exc) from None
    except (ValidationFailed, PatientConflict) as exc:
        with i18n.using(page.locale):
            if isinstance(exc, ValidationFailed):
                messages = [m for ms in field_error_map(exc).values() for m in ms]
            else:
                messages = [_("Only active cards can be merged.")]
        patient = await call(page, _load, page, patient_id)
        other_patient = await call(page, _load, page, other)
        return render(page, "desk/merge.html", {
            "patient": patient, "search": Search(), "result": None, "errors": {FORM: messages},
            "other": other_patient, "full_name": full_name, "phone_display": phone_display}, status=422)
    with i18n.using(page.locale):
        page.flash(_("The cards are merged; the merge can be undone from the merged card."))
    return redirect_with_flash(page, f"/clinics/{clinic_id}/desk/{result.survivor.id}")


@router.post("/{patient_id}/unmerge")
async def unmerge_patient(clinic_id: int, patient_id: uuid.UUID,
                          page: Page = Depends(clinic_page("patients.merge"))) -> Response:
    assert page.principal is not None
    try:
        await call(page, service(page).unmerge, clinic_id, patient_id, page.principal.actor)
    except PatientNotFound as exc:
        raise _not_found(exc) from None
    except (ValidationFailed, PatientConflict):
        with i18n.using(page.locale):
            page.flash(_("The merge can no longer be undone: rows that came with it were changed since."), "error")
        return redirect_with_flash(page, f"/clinics/{clinic_id}/desk/{patient_id}")
    with i18n.using(page.locale):
        page.flash(_("The merge is undone; this card is active again."))
    return redirect_with_flash(page, f"/clinics/{clinic_id}/desk/{patient_id}")


# --- patient search for other screens (the booking dialog, merge) --------------------------------------------


@router.get("/lookup/patients")
def lookup(clinic_id: int, q: str = Query("", max_length=200), field_name: str = Query("patient_id", alias="field",
                                                                                          max_length=40),
           page: Page = Depends(clinic_page("patients.view"))) -> Response:
    """A short list of matching patients as radio buttons, for forms that pick a patient (htmx)."""
    q = q.strip()
    result = None
    errors: Errors = {}
    if q:
        digits = "".join(c for c in q if c.isdigit())
        s = Search(phone=q) if len(digits) >= 3 and len(digits) >= len(q.replace(" ", "")) - 2 else Search(q=q)
        result, errors = _search(page, s)
        if result is not None and not result.items and s.phone:
            result, errors = _search(page, Search(chart=q))
    body = render_text(page, "desk/lookup.html", {"result": result, "q": q, "errors": errors,
                                                  "field_name": field_name, "full_name": full_name,
                                                  "phone_display": phone_display})
    return htmx_response(page, body, flash=False)

