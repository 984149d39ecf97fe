"""Messages to patients: the clinic's message log (filters by status, channel, planned date and patient), each
message with its recipient, text, vendor, error and timeline, the failures that wait for a person (retry, mark
as sent, give up), patients' replies, and the patient card's "Messages" section (the patient's messages,
opt-outs per channel, sending one message by hand).

Reads and writes go through ``core.messaging.service`` (the same functions as ``/api/clinics/{id}/messaging``);
``core.messaging.ui_queries`` adds the message's history and names. Times are shown in the clinic's zone.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import ValidationError

from core.auth.errors import ApiError
from core.messaging import delivery, service, ui_queries
from core.messaging import placeholders as placeholder_set
from core.messaging import templates as tpl
from core.messaging.schemas import OptOutsIn, ResolveIn, SendIn
from core.models.messaging import MessageStatus
from core.patients.service import PatientService
from plugin_sdk.errors import ValidationFailed
from ui import i18n
from ui.i18n import N_, _
from ui.routes.messaging_common import (
    CHANNEL_TITLES,
    PAGE_SIZE,
    REPLY_TITLES,
    RESOLVE_TITLES,
    SEND,
    VIEW,
    common,
    conflict_text,
    error_title,
    field_errors,
    plugin_title,
    status_choices,
    status_titles,
    titles,
)
from ui.screens import (
    Errors,
    call,
    clinic_zone,
    form_of,
    full_name,
    htmx_response,
    local_instant,
    parse_date,
    pydantic_errors,
    text,
)
from ui.web import Page, PageError, clinic_page, redirect_with_flash, render, render_text

router = APIRouter(prefix="/clinics/{clinic_id}/messaging", include_in_schema=False)

CHANNELS = ("sms", "email")
PATIENT_LIMIT = 20
FAILURE_STATUSES = (MessageStatus.unknown.value, MessageStatus.failed.value)


def _not_found() -> PageError:
    return PageError(404, "not_found")


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _names(page: Page, items: list[dict[str, Any]]) -> None:
    """Add the patient's name, the rule's name and texts in the user's language to each message of a page."""
    assert page.clinic_id is not None
    patients = ui_queries.patient_names(page.praxis, page.clinic_id, (m["patient_id"] for m in items))
    rules = {r["id"]: r["name"] for r in service.list_rules(page.praxis, page.clinic_id)} if any(
        m["rule_id"] for m in items) else {}
    for m in items:
        names = patients.get(m["patient_id"] or "")
        m["patient_name"] = full_name(*names) if names else ""
        m["rule_name"] = rules.get(m["rule_id"], "") if m["rule_id"] else ""
        m["error_title"] = error_title(m["error_code"])
        m["vendor_title"] = plugin_title(page, m["provider_plugin"])


def _range(page: Page, date_from: str, date_to: str, errors: Errors) -> tuple[datetime | None, datetime | None]:
    """The UTC bounds of clinic-local days ``date_from`` .. ``date_to`` (both included)."""
    tz = clinic_zone(page)
    first = parse_date(date_from, "date_from", errors)
    last = parse_date(date_to, "date_to", errors)
    if first and last and last < first:
        errors.setdefault("date_to", []).append(_("The end must be after the start."))
        return None, None
    start = local_instant(first, time(0), tz, "date_from", errors) if first else None
    end = local_instant(last + timedelta(days=1), time(0), tz, "date_to", errors) if last else None
    return start, end


NO_PROVIDER = {"sms": N_("No SMS plugin is enabled in this clinic: text messages wait until an administrator "
                          "enables one."),
               "email": N_("No e-mail plugin is enabled in this clinic: e-mails wait until an administrator enables "
                           "one.")}
PAUSED = {"sms": N_("Sending text messages is paused after repeated failures until %(time)s."),
          "email": N_("Sending e-mails is paused after repeated failures until %(time)s.")}


def _provider_notices(page: Page) -> list[str]:
    """Channels whose queued messages wait: no provider enabled, or every provider paused after failures."""
    assert page.clinic_id is not None
    notices = []
    for channel in CHANNELS:
        choice = delivery.choose_provider(page.praxis.runtime, page.clinic_id, channel)
        if choice.provider is not None:
            continue
        if not ui_queries.status_counts(page.praxis, page.clinic_id, ["queued"], channel=channel)["queued"]:
            continue
        if choice.wait_until is not None:
            notices.append(i18n.gettext(PAUSED[channel]) % {"time": i18n.format_datetime(choice.wait_until, "short")})
        else:
            notices.append(i18n.gettext(NO_PROVIDER[channel]))
    return notices


def _page_base(query: dict[str, str]) -> str:
    kept = {k: v for k, v in query.items() if v}
    return "?" + urlencode(kept) + ("&" if kept else "") + "page="


# --- the log -----------------------------------------------------------------------------------------------


@router.get("")
def message_log(clinic_id: int, status: str = Query("", max_length=16), channel: str = Query("", max_length=8),
                date_from: str = Query("", max_length=10), date_to: str = Query("", max_length=10),
                patient: str = Query("", max_length=40), number: int = Query(1, ge=1, le=100_000, alias="page"),
                page: Page = Depends(clinic_page(VIEW))) -> Response:
    errors: Errors = {}
    with i18n.using(page.locale):
        status, channel, patient = status.strip(), channel.strip(), patient.strip()
        if status and status not in {s.value for s in MessageStatus}:
            errors["status"] = [_("Choose one of the offered values.")]
        if channel and channel not in CHANNELS:
            errors["channel"] = [_("Choose one of the offered values.")]
        start, end = _range(page, date_from.strip(), date_to.strip(), errors)
        patient_id = _uuid(patient) if patient else None
        patient_name = ""
        if patient:
            names = ui_queries.patient_names(page.praxis, clinic_id, [patient_id]) if patient_id else {}
            if not names:
                errors["patient"] = [_("This patient was not found in this clinic.")]
            else:
                patient_name = full_name(*names[str(patient_id)])
        found: dict[str, Any] = {"items": [], "total": 0}
        if not errors:
            found = service.list_messages(page.praxis, clinic_id, patient_id=patient_id, status=status or None,
                                          channel=channel or None, start=start, end=end, limit=PAGE_SIZE,
                                          offset=(number - 1) * PAGE_SIZE)
            _names(page, found["items"])
        query = {"status": status, "channel": channel, "date_from": date_from.strip(), "date_to": date_to.strip(),
                 "patient": patient}
        values = common(page, "log", items=found["items"], total=found["total"], errors=errors,
                        statuses=status_choices(), channels=[(c, i18n.gettext(CHANNEL_TITLES[c])) for c in CHANNELS],
                        filters=query, patient_name=patient_name, number=number,
                        pages=max(1, -(-found["total"] // PAGE_SIZE)), page_base=_page_base(query),
                        notices=_provider_notices(page),
                        undecided=ui_queries.status_counts(page.praxis, clinic_id, ["unknown"])["unknown"])
        return render(page, "messaging/log.html", values, status=422 if errors else 200)


@router.get("/failures")
def failures(clinic_id: int, status: str = Query("", max_length=16), channel: str = Query("", max_length=8),
             number: int = Query(1, ge=1, le=100_000, alias="page"),
             page: Page = Depends(clinic_page(VIEW))) -> Response:
    """Messages that wait for a person (outcome unknown) or did not go out (failed)."""
    with i18n.using(page.locale):
        chosen_channel = channel if channel in CHANNELS else None
        counts = ui_queries.status_counts(page.praxis, clinic_id, FAILURE_STATUSES, channel=chosen_channel)
        chosen = status if status in FAILURE_STATUSES else ("unknown" if counts["unknown"] else "failed")
        found = service.list_messages(page.praxis, clinic_id, status=chosen, channel=chosen_channel,
                                      limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        _names(page, found["items"])
        query = {"status": chosen, "channel": chosen_channel or ""}
        values = common(page, "failures", items=found["items"], total=found["total"], counts=counts, chosen=chosen,
                        channel=chosen_channel or "", number=number, pages=max(1, -(-found["total"] // PAGE_SIZE)),
                        page_base=_page_base(query),
                        channels=[(c, i18n.gettext(CHANNEL_TITLES[c])) for c in CHANNELS],
                        undecided=counts["unknown"])
        return render(page, "messaging/failures.html", values)


@router.get("/replies")
def replies(clinic_id: int, number: int = Query(1, ge=1, le=100_000, alias="page"),
            page: Page = Depends(clinic_page(VIEW))) -> Response:
    """What patients wrote back, and what was done with it."""
    with i18n.using(page.locale):
        found = service.list_replies(page.praxis, clinic_id, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        patients = ui_queries.patient_names(page.praxis, clinic_id, (r["patient_id"] for r in found["items"]))
        for r in found["items"]:
            names = patients.get(r["patient_id"] or "")
            r["patient_name"] = full_name(*names) if names else ""
            r["plugin_title"] = plugin_title(page, r["plugin"])
        values = common(page, "replies", items=found["items"], total=found["total"], number=number,
                        pages=max(1, -(-found["total"] // PAGE_SIZE)), reply_titles=titles(REPLY_TITLES),
                        undecided=ui_queries.status_counts(page.praxis, clinic_id, ["unknown"])["unknown"])
        return render(page, "messaging/replies.html", values)


@router.get("/lookup")
def patient_lookup(clinic_id: int, q: str = Query("", max_length=200),
                   page: Page = Depends(clinic_page(VIEW))) -> Response:
    """Patients matching a name, phone or chart number, to filter the log by (htmx)."""
    if not page.can("patients.view"):
        raise PageError(403, "forbidden")
    q = q.strip()
    items: list[Any] = []
    with i18n.using(page.locale):
        if q:
            digits = sum(c.isdigit() for c in q)
            svc = PatientService(page.praxis)
            try:
                phone = digits >= 3 and digits >= len(q.replace(" ", "")) - 2
                found = svc.search(clinic_id, phone=q, limit=8) if phone else svc.search(clinic_id, q=q, limit=8)
                if not found.items and digits:
                    found = svc.search(clinic_id, chart_number=q, limit=8)
                items = list(found.items)
            except ValidationFailed:
                items = []
        body = render_text(page, "messaging/lookup.html", {"items": items, "q": q, "full_name": full_name})
    return htmx_response(page, body, flash=False)


# --- one message ---------------------------------------------------------------------------------------------


def _timeline(message: dict[str, Any], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What happened to the message, in order: planned, due, sent, delivered, failed, people's decisions, replies."""
    events: list[dict[str, Any]] = [{"at": message["created_at"], "title": _("Planned"), "detail": ""}]
    status = message["status"]
    if message["planned_for"] and status in ("queued", "sending"):
        events.append({"at": message["planned_for"], "title": _("Due to go out"), "detail": ""})
    if message["sent_at"]:
        events.append({"at": message["sent_at"], "title": _("Accepted by the vendor"),
                       "detail": message.get("vendor_title") or ""})
    if message["delivered_at"]:
        events.append({"at": message["delivered_at"], "title": _("Delivered"), "detail": ""})
    if message["finished_at"] and status in ("failed", "cancelled"):
        events.append({"at": message["finished_at"], "title": status_titles()[status],
                       "detail": message["error_title"] or message["reason"] or ""})
    for entry in history:
        if entry["action"] == "messaging.message_retried":
            title = _("Sent again by %(name)s") % {"name": entry["actor_name"]}
        else:
            outcome = RESOLVE_TITLES.get(entry["outcome"] or "")
            title = (i18n.gettext(outcome) if outcome else str(entry["outcome"])) + " · " + entry["actor_name"]
        events.append({"at": entry["at"], "title": title, "detail": entry["note"]})
    for reply in message["replies"]:
        action = REPLY_TITLES.get(reply["action"])
        events.append({"at": reply["received_at"], "title": _("Reply: %(text)s") % {"text": reply["body"]},
                       "detail": i18n.gettext(action) if action else reply["action"]})
    events.sort(key=lambda e: e["at"])
    return events


@router.get("/messages/{message_id}")
def message_detail(clinic_id: int, message_id: uuid.UUID, page: Page = Depends(clinic_page(VIEW))) -> Response:
    with i18n.using(page.locale):
        try:
            message = service.get_message(page.praxis, clinic_id, message_id)
        except ApiError:
            raise _not_found() from None
        _names(page, [message])
        history = ui_queries.message_history(page.praxis, clinic_id, message_id)
        resolver = ui_queries.user_names(page.praxis, [message["resolved_by"]]).get(message["resolved_by"] or -1, "")
        values = common(page, "log", m=message, timeline=_timeline(message, history), resolver=resolver,
                        reply_titles=titles(REPLY_TITLES),
                        undecided=ui_queries.status_counts(page.praxis, clinic_id, ["unknown"])["unknown"])
        return render(page, "messaging/message.html", values)


def _back(page: Page, raw: str, default: str) -> str:
    base = f"/clinics/{page.clinic_id}/"
    return raw if raw.startswith(base) and "//" not in raw and "\\" not in raw else default


@router.post("/messages/{message_id}/retry")
async def retry(clinic_id: int, message_id: uuid.UUID, page: Page = Depends(clinic_page(SEND))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    back = _back(page, text(form, "back"), f"/clinics/{clinic_id}/messaging/messages/{message_id}")
    try:
        await call(page, service.retry, page.praxis, clinic_id, message_id, page.principal.actor)
    except ApiError as exc:
        if exc.status_code == 404:
            raise _not_found() from None
        with i18n.using(page.locale):
            page.flash(conflict_text(exc), "error")
    except ValidationFailed as exc:
        with i18n.using(page.locale):
            for messages in field_errors(exc).values():
                for message in messages:
                    page.flash(message, "error")
    else:
        with i18n.using(page.locale):
            page.flash(_("The message is queued to be sent again."))
    return redirect_with_flash(page, back)


@router.post("/messages/{message_id}/resolve")
async def resolve(clinic_id: int, message_id: uuid.UUID, page: Page = Depends(clinic_page(SEND))) -> Response:
    assert page.principal is not None
    form = await form_of(page)
    back = _back(page, text(form, "back"), f"/clinics/{clinic_id}/messaging/messages/{message_id}")
    with i18n.using(page.locale):
        try:
            body = ResolveIn(outcome=text(form, "outcome"), note=text(form, "note"))  # type: ignore[arg-type]
        except ValidationError as exc:
            for messages in pydantic_errors(exc).values():
                for message in messages:
                    page.flash(message, "error")
            return redirect_with_flash(page, back)
    try:
        await call(page, service.resolve, page.praxis, clinic_id, message_id, body, page.principal.actor)
    except ApiError as exc:
        if exc.status_code == 404:
            raise _not_found() from None
        with i18n.using(page.locale):
            page.flash(conflict_text(exc), "error")
    else:
        with i18n.using(page.locale):
            page.flash(_("Recorded: the message was sent.") if body.outcome == "sent"
                       else _("Recorded: the message is given up and will not go out."))
    return redirect_with_flash(page, back)


# --- the patient card's section --------------------------------------------------------------------------------


def _templates_for_sending(page: Page) -> list[tuple[str, str]]:
    """Template codes a message without an appointment can fill (for the manual send form)."""
    assert page.clinic_id is not None
    by_code: dict[str, list[str]] = {}
    unfit: set[str] = set()
    available = placeholder_set.for_clinic(page.praxis.runtime, page.clinic_id)
    for t in service.list_templates(page.praxis, page.clinic_id):
        by_code.setdefault(t["code"], []).append(t["language"])
        if any(tpl.check(text_, "body", allowed_needs={tpl.ANY}, available=available)
               for text_ in (t["body"], t["subject"])):
            unfit.add(t["code"])
    return [(code, f"{code} ({', '.join(languages)})") for code, languages in sorted(by_code.items())
            if code not in unfit]


def _patient_values(page: Page, patient_id: uuid.UUID, *, errors: Errors | None = None,
                    values: dict[str, str] | None = None) -> dict[str, Any]:
    assert page.clinic_id is not None
    brief = ui_queries.patient_brief(page.praxis, page.clinic_id, patient_id)
    if brief is None:
        raise _not_found()
    found = service.list_messages(page.praxis, page.clinic_id, patient_id=patient_id, limit=PATIENT_LIMIT)
    _names(page, found["items"])
    opt_outs = service.get_opt_outs(page.praxis, page.clinic_id, patient_id)
    return common(page, "patient", patient=brief, patient_id=str(patient_id), items=found["items"],
                  total=found["total"], opted_out=set(opt_outs["channels"]), opt_out_items=opt_outs["items"],
                  channels=[(c, i18n.gettext(CHANNEL_TITLES[c])) for c in CHANNELS],
                  send_channels=[(c, i18n.gettext(CHANNEL_TITLES[c])) for c in ("patient", *CHANNELS)],
                  templates=_templates_for_sending(page) if page.can(SEND) else [],
                  errors=errors or {}, values=values or {"channel": "patient", "template_code": "", "body": ""})


def _patient_section(page: Page, patient_id: uuid.UUID, *, status: int = 200, **kwargs: Any) -> Response:
    with i18n.using(page.locale):
        body = render_text(page, "messaging/patient.html", _patient_values(page, patient_id, **kwargs))
    return htmx_response(page, body, status=status)


@router.get("/patient/{patient_id}")
def patient_messages(clinic_id: int, patient_id: uuid.UUID, page: Page = Depends(clinic_page(VIEW))) -> Response:
    """The patient's messages, opt-outs and the send form, for the patient card (loaded by htmx)."""
    with i18n.using(page.locale):
        body = render_text(page, "messaging/patient.html", _patient_values(page, patient_id))
    return htmx_response(page, body, flash=False)


def _card(page: Page, patient_id: uuid.UUID) -> str:
    return f"/clinics/{page.clinic_id}/desk/{patient_id}"


@router.post("/patient/{patient_id}/opt-outs")
async def set_opt_out(clinic_id: int, patient_id: uuid.UUID, page: Page = Depends(clinic_page(SEND))) -> Response:
    """Switch one channel on or off for the patient (queued messages on a switched-off channel are cancelled)."""
    assert page.principal is not None
    form = await form_of(page)
    channel = text(form, "channel")
    if channel not in CHANNELS:
        raise PageError(422, "invalid")
    try:
        current = set((await call(page, service.get_opt_outs, page.praxis, clinic_id, patient_id))["channels"])
        wanted = current | {channel} if text(form, "opt_out") == "1" else current - {channel}
        await call(page, service.set_opt_outs, page.praxis, clinic_id, patient_id,
                   OptOutsIn(channels=sorted(wanted), note=text(form, "note")), page.principal.actor)  # type: ignore[arg-type]
    except ApiError:
        raise _not_found() from None
    with i18n.using(page.locale):
        name = i18n.gettext(CHANNEL_TITLES[channel])
        page.flash(_("No more messages by %(channel)s to this patient.") % {"channel": name} if channel in wanted
                   else _("Messages by %(channel)s are allowed again.") % {"channel": name})
    if page.is_htmx:
        return _patient_section(page, patient_id)
    return redirect_with_flash(page, _card(page, patient_id))


SEND_FIELDS = ("channel", "template_code", "body")


@router.post("/patient/{patient_id}/send")
async def send_to_patient(clinic_id: int, patient_id: uuid.UUID, page: Page = Depends(clinic_page(SEND))) -> Response:
    """Send one message to the patient now (a template without appointment placeholders, or a text)."""
    assert page.principal is not None
    form = await form_of(page)
    values = {name: text(form, name) for name in SEND_FIELDS}
    errors: Errors = {}
    with i18n.using(page.locale):
        try:
            body = SendIn(patient_ids=[patient_id], channel=values["channel"] or "patient",  # type: ignore[arg-type]
                          template_code=values["template_code"] or None, body=values["body"] or None)
        except ValidationError as exc:
            errors = pydantic_errors(exc, rename=lambda loc: loc.split(".")[0], known=SEND_FIELDS)
    if not errors:
        try:
            batch = await call(page, service.send, page.praxis, clinic_id, body, page.principal.actor)
        except ValidationFailed as exc:
            with i18n.using(page.locale):
                errors = field_errors(exc, SEND_FIELDS)
        except ApiError:
            raise _not_found() from None
        else:
            with i18n.using(page.locale):
                queued = batch["counts"].get("queued", 0)
                if queued:
                    page.flash(_("The message is queued and goes out in a moment."))
                else:
                    page.flash(_("No message could go out: see the reason in the list below."), "error")
            if page.is_htmx:
                return _patient_section(page, patient_id)
            return redirect_with_flash(page, _card(page, patient_id))
    if page.is_htmx:
        return _patient_section(page, patient_id, status=422, errors=errors, values=values)
    with i18n.using(page.locale):
        for messages in errors.values():
            for message in messages:
                page.flash(message, "error")
    return redirect_with_flash(page, _card(page, patient_id))

