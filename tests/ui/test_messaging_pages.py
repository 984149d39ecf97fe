"""The messaging screens through TestClient: the rule editor (kind-specific fields, the engine's field errors
next to their fields, saving, switching off, deleting), templates with the live preview (GSM-7 and UCS-2
counts, an unknown placeholder shown as an error), the message log (filters, pages, clinic-local times), a
message's vendor code, reason and timeline, retry and resolve, the patient card's section (opt-outs stop
messages on that channel, sending by hand), settings, permissions on every screen and all five languages."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from core.messaging import service
from core.messaging.schemas import RuleIn
from tests.auth_helpers import create_user
from tests.conftest import add_clinic, fixture_plugin
from tests.ui.helpers import csrf_of, log_in, web_client
from tests.ui.messaging_screens import ACTOR, Messaging, add_messaging, send_one, set_state
from tests.ui.screens import HTMX, Book, field_errors, set_up_book
from ui import i18n

PASSWORD = "correct horse battery"


@dataclass
class Site:
    praxis: Any
    clinic: int
    book: Book
    data: Messaging

    @property
    def base(self) -> str:
        return f"/clinics/{self.clinic}/messaging"

    def message(self, message_id: str) -> dict[str, Any]:
        return service.get_message(self.praxis, self.clinic, uuid.UUID(message_id))


@pytest.fixture
def site(make_praxis) -> Site:
    praxis = make_praxis([])
    clinic = add_clinic(praxis, "Szent Anna", country="HU", timezone="Europe/Budapest", locale="en")
    create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD, name="Anna Admin")
    create_user(praxis, [clinic], role="receptionist", login="desk", password=PASSWORD, name="Rita Desk")
    create_user(praxis, [clinic], role="doctor", login="doc", password=PASSWORD)
    create_user(praxis, [clinic], permissions=["patients.view", "appointments.view"], login="nobody",
                password=PASSWORD)
    book = set_up_book(praxis, clinic)  # a doctor, patients and a booked appointment on 2031-03-05 09:00
    return Site(praxis, clinic, book, add_messaging(praxis, clinic, book.patient))


def client_as(site: Site, login: str, locale: str | None = None):  # type: ignore[no-untyped-def]
    client = web_client(site.praxis)
    if locale:
        client.cookies.set(i18n.LANG_COOKIE, locale)
    assert log_in(client, login, PASSWORD).status_code == 303
    client.token = csrf_of(client.get(f"/clinics/{site.clinic}/").text)
    return client


def rows(html: str) -> list[str]:
    return re.findall(r'<tr id="message-([0-9a-f-]+)"', html)


def flashes(client, url: str) -> str:  # type: ignore[no-untyped-def]
    page = client.get(url)
    return " ".join(re.findall(r'class="flash flash-\w+">([^<]*)<', page.text))


# --- permissions -------------------------------------------------------------------------------------------


def test_each_screen_needs_its_messaging_permission(site):
    base, d, patient = site.base, site.data, site.book.patient
    views = [base, f"{base}/failures", f"{base}/replies", f"{base}/messages/{d.failed}", f"{base}/rules",
             f"{base}/templates", f"{base}/patient/{patient}", f"{base}/lookup?q=kov"]
    manage_pages = [f"{base}/rules/new", f"{base}/rules/{d.rule}", f"{base}/rules/fields?kind=birthday",
                    f"{base}/templates/new", f"{base}/templates/{d.template}", f"{base}/settings"]
    send_posts = [f"{base}/messages/{d.failed}/retry", f"{base}/messages/{d.unknown}/resolve",
                  f"{base}/patient/{patient}/opt-outs", f"{base}/patient/{patient}/send"]
    manage_posts = [f"{base}/rules/new", f"{base}/rules/{d.rule}", f"{base}/rules/{d.rule}/disable",
                    f"{base}/rules/{d.rule}/delete", f"{base}/templates/new", f"{base}/templates/{d.template}",
                    f"{base}/templates/{d.template}/delete", f"{base}/settings/quiet-hours",
                    f"{base}/settings/replies"]
    nobody = client_as(site, "nobody")
    for url in views + manage_pages:
        assert nobody.get(url).status_code == 403, url
    for url in send_posts + manage_posts + [f"{base}/templates/preview"]:
        assert nobody.post(url, data={"csrf_token": nobody.token, "outcome": "sent"}).status_code == 403, url
    home = nobody.get(f"/clinics/{site.clinic}/").text
    assert f'href="{base}"' not in home
    assert f"/messaging/patient/{patient}" not in nobody.get(f"/clinics/{site.clinic}/desk/{patient}").text

    doctor = client_as(site, "doc")  # messaging.view only
    for url in views:
        assert doctor.get(url).status_code == 200, url
    for url in manage_pages:
        assert doctor.get(url).status_code == 403, url
    for url in send_posts + manage_posts:
        assert doctor.post(url, data={"csrf_token": doctor.token, "outcome": "sent"}).status_code == 403, url
    assert "Send again" not in doctor.get(f"{base}/failures").text

    desk = client_as(site, "desk")  # view + send
    assert desk.post(f"{base}/messages/{d.failed}/retry", data={"csrf_token": desk.token},
                     follow_redirects=False).status_code == 303
    assert desk.get(f"{base}/rules/new").status_code == 403
    assert 'href="' + base + '/settings"' not in desk.get(base).text  # the settings tab needs messaging.manage
    assert desk.post(f"{base}/messages/{d.unknown}/retry").status_code == 403  # no CSRF token


# --- rules -----------------------------------------------------------------------------------------------------


def test_the_rule_editor_shows_the_engines_field_errors_and_saves(site):
    admin = client_as(site, "anna")
    base = site.base
    form = {"csrf_token": admin.token, "name": "", "kind": "days_before", "params.days": "400", "params.at": "",
            "template_code": "", "channel": "patient", "enabled": "1"}
    refused = admin.post(f"{base}/rules/new", data=form)
    assert refused.status_code == 422
    errors = field_errors(refused.text)
    assert errors["f-name"] == "This field is required."
    assert errors["f-params-days"] == "Enter a whole number from 0 to 365."
    assert errors["f-params-at"] == "Give the time of day."
    assert errors["f-template_code"] == "This field is required."
    assert 'value="400"' in refused.text  # what was typed stays
    taken = admin.post(f"{base}/rules/new", data={**form, "name": "Day before", "params.days": "2",
                                                  "params.at": "09:00", "template_code": "reminder"})
    assert field_errors(taken.text) == {"f-name": "A rule with this name exists."}
    birthday = admin.post(f"{base}/rules/new", data={**form, "name": "Birthday", "kind": "birthday",
                                                     "params.days_before": "0", "params.at": "09:00",
                                                     "template_code": "reminder"})
    assert birthday.status_code == 422
    assert "{date}, {time}" in field_errors(birthday.text)["f-template_code"]
    made = admin.post(f"{base}/rules/new", data={
        **form, "name": "Two hours before", "kind": "minutes_before", "params.minutes": "120",
        "template_code": "reminder", "channel": "sms", "filters.doctor_ids": [str(site.book.doctor)],
        "filters.type_codes": ["follow_up", "hygiene"], "filters.day_type": "working",
        "filters.created_today": "1", "set_communication_status": "reminder_sent"}, follow_redirects=False)
    assert made.status_code == 303, field_errors(made.text)
    rule = next(r for r in service.list_rules(site.praxis, site.clinic) if r["name"] == "Two hours before")
    assert rule["kind"] == "minutes_before" and rule["params"] == {"minutes": 120} and rule["channel"] == "sms"
    assert rule["filters"] == {"doctor_ids": [site.book.doctor], "type_codes": ["follow_up", "hygiene"],
                               "day_type": "working", "created_today": True}
    assert rule["set_communication_status"] == "reminder_sent" and rule["enabled"] is True
    listed = admin.get(f"{base}/rules").text
    assert "120 minutes before the start" in listed and "Working days only" in listed and "Dr. Kovács Anna" in listed

    editor = admin.get(f"{base}/rules/{rule['id']}")
    assert editor.status_code == 200 and 'value="120"' in editor.text and 'value="hygiene" checked' in editor.text
    edit = {"csrf_token": admin.token, "name": "Two hours before", "kind": "minutes_before", "params.minutes": "90",
            "template_code": "reminder", "channel": "sms", "enabled": "1", "version": str(rule["version"])}
    assert admin.post(f"{base}/rules/{rule['id']}", data=edit, follow_redirects=False).status_code == 303
    saved = service.get_rule(site.praxis, site.clinic, rule["id"])
    assert saved["params"] == {"minutes": 90} and saved["filters"] == {} and saved["version"] == rule["version"] + 1
    stale = admin.post(f"{base}/rules/{rule['id']}", data=edit)
    assert stale.status_code == 409 and "Someone else changed this meanwhile" in stale.text


def test_the_kind_fields_follow_the_chosen_kind_and_keep_what_was_typed(site):
    admin = client_as(site, "anna")
    birthday = admin.get(f"{site.base}/rules/fields?kind=birthday", headers=HTMX)
    assert birthday.status_code == 200 and "<html" not in birthday.text
    assert 'name="params.days_before"' in birthday.text and "filters.doctor_ids" not in birthday.text
    status = admin.get(f"{site.base}/rules/fields?kind=status_changed", headers=HTMX).text
    assert 'name="params.status"' in status and '<option value="no_show">No-show</option>' in status
    assert 'name="filters.doctor_ids"' in status and "set_communication_status" in status
    recall = admin.get(f"{site.base}/rules/fields?kind=recall&params.at=08:15&params.months=9", headers=HTMX).text
    assert 'value="08:15"' in recall and 'value="9"' in recall and 'name="params.type_codes"' in recall
    page = admin.get(f"{site.base}/rules/new").text
    assert 'hx-get="' + site.base + '/rules/fields"' in page and 'hx-target="#kind-fields"' in page


def test_switching_a_rule_off_cancels_its_messages_and_a_used_rule_cannot_be_deleted(site):
    admin = client_as(site, "anna")
    [planned] = service.list_messages(site.praxis, site.clinic, rule_id=site.data.rule)["items"]
    assert planned["status"] == "queued"
    off = admin.post(f"{site.base}/rules/{site.data.rule}/disable", data={"csrf_token": admin.token}, headers=HTMX)
    assert off.status_code == 200 and 'aria-checked="false" aria-label="Day before"' in off.text
    assert "Day before is off. 1 queued message cancelled." in off.text  # the flash, out of band
    assert site.message(planned["id"])["status"] == "cancelled"
    on = admin.post(f"{site.base}/rules/{site.data.rule}/enable", data={"csrf_token": admin.token}, headers=HTMX)
    assert 'aria-checked="true" aria-label="Day before"' in on.text
    assert site.message(planned["id"])["status"] == "queued"
    used = admin.post(f"{site.base}/rules/{site.data.rule}/delete", data={"csrf_token": admin.token})
    assert "switch it off instead" in used.text
    assert service.get_rule(site.praxis, site.clinic, site.data.rule)["name"] == "Day before"
    unused = service.create_rule(site.praxis, site.clinic, RuleIn(  # type: ignore[arg-type]
        name="Greeting", kind="birthday", params={"at": "09:00"}, template_code="news"), ACTOR)
    gone = admin.post(f"{site.base}/rules/{unused['id']}/delete", data={"csrf_token": admin.token})
    assert "The rule is deleted." in gone.text and "Greeting" not in admin.get(f"{site.base}/rules").text


# --- templates -------------------------------------------------------------------------------------------------


def preview(client, site: Site, body: str, **extra: str) -> str:  # type: ignore[no-untyped-def]
    answer = client.post(f"{site.base}/templates/preview", data={"csrf_token": client.token, "body": body, **extra},
                         headers=HTMX)
    assert answer.status_code == 200 and "<html" not in answer.text
    return answer.text


def counted(html: str) -> tuple[str, int, int]:
    found = re.search(r'data-encoding="(\w+)" data-segments="(\d+)" data-length="(\d+)"', html)
    assert found, html
    return found.group(1), int(found.group(2)), int(found.group(3))


def test_the_preview_renders_and_counts_gsm7_and_ucs2_parts(site):
    admin = client_as(site, "anna")
    short = preview(admin, site, "Hello {given_name}, see you on {date}.", language="en")
    assert "Hello Anna, see you on March 14, 2026." in short
    assert counted(short) == ("gsm7", 1, 38) and "GSM-7" in short
    assert counted(preview(admin, site, "A" * 160)) == ("gsm7", 1, 160)
    assert counted(preview(admin, site, "A" * 161)) == ("gsm7", 2, 161)
    korean = preview(admin, site, "안녕하세요 {given_name}님, 내일 예약이 있습니다.")
    assert counted(korean) == ("ucs2", 1, 25) and "UCS-2 (Unicode)" in korean
    assert counted(preview(admin, site, "예" * 70)) == ("ucs2", 1, 70)
    assert counted(preview(admin, site, "예" * 71)) == ("ucs2", 2, 71)
    euro = preview(admin, site, "Price: 10€")
    assert counted(euro) == ("gsm7", 1, 10) and "Counted as 11 units" in euro
    unknown = preview(admin, site, "Hello {nev}!")
    assert "Unknown placeholder {nev}" in unknown and 'id="preview-body"' not in unknown
    assert "{x.y} is not a placeholder" in preview(admin, site, "Hi {x.y}")
    assert "The braces do not match" in preview(admin, site, "Hi {given_name")


def test_the_template_editor_saves_and_shows_field_errors(site):
    admin = client_as(site, "anna")
    base = f"{site.base}/templates"
    form = {"csrf_token": admin.token, "code": "recall", "language": "hu", "channel": "sms", "subject": "",
            "body": "Kedves {nev}!"}
    refused = admin.post(f"{base}/new", data=form)
    assert refused.status_code == 422
    assert field_errors(refused.text)["f-body"].startswith("Unknown placeholder {nev}")
    assert "Kedves {nev}!" in refused.text and 'data-insert="{patient_name}"' in refused.text
    twice = admin.post(f"{base}/new", data={**form, "code": "reminder", "language": "en", "channel": "any",
                                            "body": "Hi {given_name}"})
    assert field_errors(twice.text) == {"f-language": "This template already has a text in this language for this "
                                                      "channel."}
    made = admin.post(f"{base}/new", data={**form, "body": "Kedves {given_name}! Ideje a kontrollnak."},
                      follow_redirects=False)
    assert made.status_code == 303
    listed = admin.get(base).text
    assert "Kedves {given_name}! Ideje a kontrollnak." in listed and "No rule uses this template." in listed
    news = next(t for t in service.list_templates(site.praxis, site.clinic) if t["code"] == "news")
    service.create_rule(site.praxis, site.clinic, RuleIn(name="Greeting", kind="birthday",  # type: ignore[arg-type]
                                                         params={"at": "09:00"}, template_code="news"), ACTOR)
    editor = admin.get(f"{base}/{news['id']}")
    assert editor.status_code == 200 and "Hello {given_name}!" in editor.text and 'id="sms-count"' in editor.text
    edit = {"csrf_token": admin.token, "subject": "", "body": "Happy birthday, {given_name}!",
            "version": str(news["version"])}
    assert admin.post(f"{base}/{news['id']}", data=edit, follow_redirects=False).status_code == 303
    assert service.get_template(site.praxis, site.clinic, news["id"])["body"] == "Happy birthday, {given_name}!"
    needs = admin.post(f"{base}/{news['id']}", data={**edit, "body": "See you at {time}",
                                                    "version": str(news["version"] + 1)})
    assert needs.status_code == 422
    assert "used by rules without one: Birthday greeting" in field_errors(needs.text)["f-body"]
    in_use = admin.post(f"{base}/{news['id']}/delete", data={"csrf_token": admin.token})
    assert "Rules use this template" in in_use.text


def test_a_plugins_placeholders_are_offered_only_while_it_is_enabled(make_praxis):
    praxis = make_praxis([fixture_plugin("portal")])
    clinic = add_clinic(praxis, "Szent Anna", country="HU", timezone="Europe/Budapest", locale="en")
    create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD)
    client = web_client(praxis)
    log_in(client, "anna", PASSWORD)
    base = f"/clinics/{clinic}/messaging/templates"
    token = csrf_of(client.get(base).text)
    form = {"csrf_token": token, "code": "portal", "language": "en", "channel": "sms", "subject": "",
            "body": "Your code: {portal_code}"}
    assert 'data-insert="{portal_code}"' not in client.get(f"{base}/new").text
    off = client.post(f"{base}/new", data=form)
    assert off.status_code == 422
    assert field_errors(off.text)["f-body"] == ("{portal_code} comes from the plugin Patient Portal (portal), which "
                                                "is not enabled in this clinic.")
    praxis.plugins.enable(clinic, "portal", ACTOR)
    editor = client.get(f"{base}/new").text
    assert 'data-insert="{portal_code}"' in editor and "The patient&#39;s portal login code" in editor
    assert "The visit&#39;s page in the portal · <em>needs an appointment</em>" in editor
    assert client.post(f"{base}/new", data=form, follow_redirects=False).status_code == 303
    shown = client.post(f"{base}/preview", data={"csrf_token": token, "body": "Code {portal_code}"}, headers=HTMX)
    assert "Code K-1234" in shown.text


# --- the log, a message, retry and resolve -------------------------------------------------------------------------


def test_the_log_filters_pages_and_shows_clinic_times(site, monkeypatch):
    import ui.routes.messaging as screen

    monkeypatch.setattr(screen, "PAGE_SIZE", 2)
    admin = client_as(site, "anna")
    d, base = site.data, site.base
    assert rows(admin.get(f"{base}?status=failed").text) == [d.failed]
    first, second = admin.get(base).text, admin.get(f"{base}?page=2").text
    assert "Page 1 of 3" in first and len(rows(first)) == 2 and not set(rows(first)) & set(rows(second))
    assert 'href="/clinics/' + str(site.clinic) + '/messaging?page=2"' in first
    assert "No messages match." in admin.get(f"{base}?channel=email").text
    # the rule's reminder: 1 day before the appointment of 2031-03-05, at 10:00 in Budapest
    [reminder] = service.list_messages(site.praxis, site.clinic, rule_id=d.rule)["items"]
    day = admin.get(f"{base}?date_from=2031-03-04&date_to=2031-03-04").text
    assert rows(day) == [reminder["id"]] and "3/4/31, 10:00\u202fAM" in day
    assert rows(admin.get(f"{base}?date_from=2031-03-05").text) == []
    wrong = admin.get(f"{base}?date_from=2031-03-05&date_to=2031-03-01")
    assert wrong.status_code == 422 and field_errors(wrong.text) == {"f-date_to": "The end must be after the start."}
    assert rows(admin.get(f"{base}?patient={site.book.other_patient}").text) == []
    mine = admin.get(f"{base}?patient={site.book.patient}&status=unknown").text
    assert rows(mine) == [d.unknown] and "Kovács Anna" in mine
    assert field_errors(admin.get(f"{base}?patient=nobody").text) == {
        "f-patient": "This patient was not found in this clinic."}
    found = admin.get(f"{base}/lookup?q=Nagy", headers=HTMX).text
    assert f'name="patient" value="{site.book.other_patient}"' in found


def test_a_message_shows_its_vendor_code_reason_and_timeline(site):
    admin = client_as(site, "anna")
    failed = admin.get(f"{site.base}/messages/{site.data.failed}").text
    assert "Vendor code" in failed and ">E42<" in failed and "number blocked by the operator" in failed
    assert "+36301234567" in failed and "Hello Anna, your results are in." in failed and "GSM-7" in failed
    invalid = send_one(site.praxis, site.clinic, site.book.patient, "Hi {given_name}")
    set_state(site.praxis, invalid, "failed", code="invalid_address", reason="the phone number is a landline")
    shown = admin.get(f"{site.base}/messages/{invalid}").text
    assert "The address cannot receive this kind of message." in shown and "the phone number is a landline" in shown
    sent = admin.get(f"{site.base}/messages/{site.data.sent}").text
    assert "Reply: 1" in sent and "Confirmed the appointment" in sent and "Accepted by the vendor" in sent


def test_retry_and_resolve_change_the_messages_state(site):
    desk = client_as(site, "desk")
    d, base = site.data, site.base
    failures = desk.get(f"{base}/failures").text
    assert rows(failures) == [d.unknown]  # the undecided ones first
    assert "It was sent" in failures and "Give up" in failures and "Send again" in failures
    assert rows(desk.get(f"{base}/failures?status=failed").text) == [d.failed]
    retried = desk.post(f"{base}/messages/{d.failed}/retry",
                        data={"csrf_token": desk.token, "back": f"{base}/failures?status=failed"})
    assert "The message is queued to be sent again." in retried.text
    assert str(retried.url).endswith("/failures?status=failed") and site.message(d.failed)["status"] == "queued"
    timeline = desk.get(f"{base}/messages/{d.failed}").text
    assert "Sent again by Rita Desk" in timeline
    desk.post(f"{base}/messages/{d.unknown}/resolve", data={"csrf_token": desk.token, "outcome": "sent",
                                                           "note": "the vendor's portal shows it"})
    after = site.message(d.unknown)
    assert after["status"] == "sent" and after["resolved_at"] is not None
    detail = desk.get(f"{base}/messages/{d.unknown}").text
    assert "Marked as sent · Rita Desk" in detail and "the vendor&#39;s portal shows it" in detail
    other = send_one(site.praxis, site.clinic, site.book.patient, "Hi {given_name}")
    set_state(site.praxis, other, "unknown", code="unknown_outcome")
    given_up = desk.post(f"{base}/messages/{other}/resolve", data={"csrf_token": desk.token, "outcome": "failed"})
    assert "given up and will not go out" in given_up.text
    assert site.message(other)["status"] == "failed" and site.message(other)["error_code"] == "given_up"
    assert "Given up by a member of staff." in desk.get(f"{base}/messages/{other}").text
    again = desk.post(f"{base}/messages/{d.sent}/retry", data={"csrf_token": desk.token})
    assert "Only failed, cancelled or undecided messages can be sent again." in again.text
    assert site.message(d.sent)["status"] == "sent"


# --- the patient card ---------------------------------------------------------------------------------------------


def latest_manual(site: Site) -> dict[str, Any]:
    found = service.list_messages(site.praxis, site.clinic, patient_id=uuid.UUID(site.book.patient))["items"]
    return max((m for m in found if m["kind"] == "manual"), key=lambda m: m["created_at"])


def test_an_opt_out_stops_messages_on_that_channel_and_sending_by_hand_follows_it(site):
    desk = client_as(site, "desk")
    patient = site.book.patient
    card = desk.get(f"/clinics/{site.clinic}/desk/{patient}").text
    assert f'hx-get="/clinics/{site.clinic}/messaging/patient/{patient}"' in card
    section = f"{site.base}/patient/{patient}"
    assert 'aria-checked="true" aria-label="SMS"' in desk.get(section, headers=HTMX).text
    queued = [m["id"] for m in service.list_messages(site.praxis, site.clinic, patient_id=uuid.UUID(patient),
                                                     status="queued", channel="sms")["items"]]
    assert len(queued) == 2  # the rule's reminder and a message sent by hand
    off = desk.post(f"{section}/opt-outs", data={"csrf_token": desk.token, "channel": "sms", "opt_out": "1"},
                    headers=HTMX)
    assert off.status_code == 200 and 'aria-checked="false" aria-label="SMS"' in off.text
    assert "No more messages by SMS to this patient." in off.text
    assert service.get_opt_outs(site.praxis, site.clinic, uuid.UUID(patient))["channels"] == ["sms"]
    assert {site.message(m)["error_code"] for m in queued} == {"opted_out"}
    sent = desk.post(f"{section}/send", data={"csrf_token": desk.token, "channel": "sms", "body": "Hi {given_name}"},
                     headers=HTMX)
    assert sent.status_code == 200 and "No message could go out" in sent.text
    newest = latest_manual(site)
    assert newest["status"] == "cancelled" and newest["error_code"] == "opted_out"
    assert "The patient does not want messages on this channel." in sent.text
    desk.post(f"{section}/opt-outs", data={"csrf_token": desk.token, "channel": "sms", "opt_out": "0"}, headers=HTMX)
    again = desk.post(f"{section}/send", data={"csrf_token": desk.token, "channel": "sms", "body": "Hi {given_name}"},
                      headers=HTMX)
    assert "The message is queued and goes out in a moment." in again.text
    newest = latest_manual(site)
    assert newest["status"] == "queued" and newest["body"] == "Hi Anna"


def test_sending_by_hand_shows_field_errors(site):
    desk = client_as(site, "desk")
    section = f"{site.base}/patient/{site.book.patient}"
    page = desk.get(section, headers=HTMX).text
    assert '<option value="news">news (en)</option>' in page and 'value="reminder"' not in page  # needs a visit
    timed = desk.post(f"{section}/send", data={"csrf_token": desk.token, "channel": "sms", "body": "At {time}"},
                      headers=HTMX)
    assert timed.status_code == 422
    assert field_errors(timed.text) == {"f-body": "This kind of message has no appointment to fill {time} from."}
    empty = desk.post(f"{section}/send", data={"csrf_token": desk.token, "channel": "sms"}, headers=HTMX)
    assert field_errors(empty.text) == {"f-body": "Choose a template or write a text."}
    by_template = desk.post(f"{section}/send", data={"csrf_token": desk.token, "channel": "patient",
                                                     "template_code": "news"}, headers=HTMX)
    assert by_template.status_code == 200 and "Hello Anna!" in by_template.text


# --- settings -----------------------------------------------------------------------------------------------------


def test_quiet_hours_and_reply_settings_save_and_show_field_errors(site):
    admin = client_as(site, "anna")
    url = f"{site.base}/settings"
    same = admin.post(f"{url}/quiet-hours", data={"csrf_token": admin.token, "quiet_enabled": "1", "start": "21:00",
                                                  "end": "21:00"})
    assert same.status_code == 422 and field_errors(same.text) == {"f-end": "The end must differ from the start."}
    bad = admin.post(f"{url}/quiet-hours", data={"csrf_token": admin.token, "start": "25:00", "end": ""})
    assert field_errors(bad.text) == {"f-start": "Enter a time.", "f-end": "This field is required."}
    saved = admin.post(f"{url}/quiet-hours", data={"csrf_token": admin.token, "quiet_enabled": "1",
                                                   "start": "20:00", "end": "08:30"})
    assert "Quiet hours are saved." in saved.text and "Europe/Budapest" in saved.text
    assert service.get_quiet_hours(site.praxis, site.clinic) == {"enabled": True, "start": "20:00", "end": "08:30"}
    form = {"csrf_token": admin.token, "replies_enabled": "1", "confirm_replies": "1, yes", "cancel_replies": "YES",
            "cancel_reason": "patient_request", "confirmed_communication_status": "confirmed",
            "reply_window_hours": "0", "link": ""}
    refused = admin.post(f"{url}/replies", data=form)
    assert field_errors(refused.text) == {"f-reply_window_hours": "Enter a number no less than 1."}
    overlap = admin.post(f"{url}/replies", data={**form, "reply_window_hours": "48"})
    assert field_errors(overlap.text) == {"f-cancel_replies": "A reply cannot both confirm and cancel."}
    done = admin.post(f"{url}/replies", data={**form, "reply_window_hours": "48", "cancel_replies": "2, no",
                                              "link": "https://example.org/book"})
    assert "The reply settings are saved." in done.text
    stored = service.get_settings(site.praxis, site.clinic)
    assert stored["confirm_replies"] == ["1", "yes"] and stored["cancel_replies"] == ["2", "no"]
    assert stored["reply_window_hours"] == 48 and stored["link"] == "https://example.org/book"


# --- languages ----------------------------------------------------------------------------------------------------


def test_the_messaging_screens_in_every_language(site):
    for locale in i18n.LOCALES:
        client = client_as(site, "anna", locale)
        state = i18n.LocaleState(locale, client.app.state.ui.catalogs.get(locale), i18n.timezone("UTC"), {})
        with i18n.using(state):
            words = [i18n.gettext(w) for w in ("Message log", "Outcome unknown", "Days before the appointment",
                                               "UCS-2 (Unicode)", "Quiet hours", "The patient accepts messages by")]
            failed = i18n.pgettext("message status", "Failed")
        log = client.get(site.base).text
        rule = client.get(f"{site.base}/rules/new").text
        korean = preview(client, site, "안녕하세요 {given_name}")
        settings = client.get(f"{site.base}/settings").text
        section = client.get(f"{site.base}/patient/{site.book.patient}", headers=HTMX).text
        assert words[0] in log and words[1] in log and failed in log and words[2] in rule and words[3] in korean
        assert words[4] in settings and words[5] in section
        if locale != "en":
            for english in ("Message log", "Days before the appointment", "Quiet hours", "Characters"):
                assert english not in log + rule + korean + settings + section, (locale, english)
