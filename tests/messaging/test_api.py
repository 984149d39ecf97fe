"""The messaging REST API: permissions on every route, 422 with fields, the log, actions, manual sending."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from core.models.messaging import MessageStatus
from tests.auth_helpers import anonymous_client, client_for, create_user

MONDAY = date(2026, 1, 5)


@pytest.fixture
def api(env):
    base = f"/api/clinics/{env.clinic_id}/messaging"
    clients = {role: client_for(env.praxis, create_user(env.praxis, [env.clinic_id], role=role))
               for role in ("admin", "receptionist", "doctor")}
    clients["nobody"] = client_for(env.praxis, create_user(env.praxis, [env.clinic_id], permissions=[]))
    return env, base, clients


def test_permissions_per_route(api):
    env, base, c = api
    assert anonymous_client(env.praxis).get(f"{base}/rules").status_code == 401
    assert c["nobody"].get(f"{base}/messages").status_code == 403
    assert c["doctor"].get(f"{base}/messages").status_code == 200  # messaging.view
    body = {"code": "reminder", "language": "hu", "body": "{time}"}
    assert c["receptionist"].post(f"{base}/templates", json=body).status_code == 403  # needs messaging.manage
    assert c["admin"].post(f"{base}/templates", json=body).status_code == 201
    patient = env.patient()
    send = {"patient_ids": [str(patient)], "body": "Szia {given_name}!"}
    assert c["doctor"].post(f"{base}/send", json=send).status_code == 403  # needs messaging.send
    assert c["receptionist"].post(f"{base}/send", json=send).status_code == 202
    other = env.praxis  # an admin of another clinic sees nothing of this one
    from tests.conftest import add_clinic

    elsewhere = add_clinic(other, "Seoul", country="KR", timezone="Asia/Seoul", locale="ko")
    outsider = client_for(env.praxis, create_user(env.praxis, [elsewhere], role="admin"))
    assert outsider.get(f"{base}/messages").status_code == 404


def test_templates_and_rules_over_http_with_field_errors(api):
    env, base, c = api
    admin = c["admin"]
    bad = admin.post(f"{base}/templates", json={"code": "r", "language": "hu", "body": "Szia {nev}!"})
    assert bad.status_code == 422
    assert bad.json()["error"] == "validation_error"
    assert [(f["field"], f["code"]) for f in bad.json()["fields"]] == [("body", "unknown_placeholder")]
    template = admin.post(f"{base}/templates", json={"code": "reminder", "language": "hu",
                                                     "body": "{patient_name}: holnap {time}"}).json()
    assert template["sms"]["segments"] == 1 and template["placeholders"] == ["patient_name", "time"]
    preview = admin.post(f"{base}/templates/preview", json={"body": "€ {given_name}"}).json()
    assert preview["body"] == "€ Anna" and preview["sms"]["units"] == 7
    assert admin.post(f"{base}/rules", json={"name": "x", "kind": "weekly", "template_code": "reminder"}
                      ).json()["fields"][0]["field"] == "kind"
    missing = admin.post(f"{base}/rules", json={"name": "x", "kind": "days_before", "template_code": "reminder",
                                                "params": {"at": "12:00"}})
    assert missing.status_code == 422 and missing.json()["fields"][0]["field"] == "params.days"
    anna = env.patient()
    env.book(env.local(MONDAY + timedelta(days=3), 10, 0), anna)  # booked before the rule exists
    created = admin.post(f"{base}/rules", json={"name": "Day before", "kind": "days_before",
                                                "params": {"days": 1, "at": "12:00"}, "template_code": "reminder"})
    assert created.status_code == 201 and created.json()["planned"]["created"] == 1
    rule = created.json()
    changed = admin.patch(f"{base}/rules/{rule['id']}", json={"params": {"days": 2, "at": "08:00"},
                                                             "version": rule["version"]})
    assert changed.status_code == 200 and changed.json()["planned"]["updated"] == 1
    [message] = env.messages()
    assert message.planned_for == env.local(MONDAY + timedelta(days=1), 8, 0)
    stale = admin.patch(f"{base}/rules/{rule['id']}", json={"name": "y", "version": rule["version"]})
    assert stale.status_code == 409 and stale.json()["error"] == "version_conflict"
    assert admin.post(f"{base}/rules/{rule['id']}/disable").json()["enabled"] is False
    assert env.messages()[0].status == MessageStatus.cancelled
    assert admin.post(f"{base}/rules/{rule['id']}/enable").json()["enabled"] is True
    assert env.messages()[0].status == MessageStatus.queued
    assert admin.delete(f"{base}/rules/{rule['id']}").status_code == 409  # it has messages: switch it off
    assert [r["name"] for r in admin.get(f"{base}/rules").json()] == ["Day before"]
    assert admin.delete(f"{base}/templates/{template['id']}").status_code == 409


def test_message_log_actions_and_manual_sending_with_progress(api):
    env, base, c = api
    desk = c["receptionist"]
    patients = [env.patient("Kovács", f"Anna{i}", phone=f"+36 30 123 45{i:02d}") for i in range(5)]
    bad = desk.post(f"{base}/send", json={"patient_ids": [str(patients[0])], "body": "{time}"})
    assert bad.status_code == 422 and bad.json()["fields"][0]["code"] == "placeholder_not_available"
    assert desk.post(f"{base}/send", json={"patient_ids": [str(uuid.uuid4())], "body": "x"}).status_code == 422
    answer = desk.post(f"{base}/send", json={"patient_ids": [str(p) for p in patients],
                                             "body": "Kedves {given_name}, rendelőnk jövő héten zárva."})
    assert answer.status_code == 202
    batch = answer.json()
    assert batch["total"] == 5 and batch["counts"]["queued"] == 5 and batch["progress"] == 0
    env.vendor.fail_next(2, status=503, path="/sms")
    env.run()
    progress = desk.get(f"{base}/batches/{batch['id']}").json()
    assert progress["counts"]["sent"] == 3 and progress["counts"]["queued"] == 2
    env.advance(minutes=10)
    env.run()
    assert desk.get(f"{base}/batches/{batch['id']}").json()["progress"] == 1.0
    assert len(env.vendor.sms()) == 5
    log = desk.get(f"{base}/messages", params={"patient_id": str(patients[2])}).json()
    assert log["total"] == 1 and log["items"][0]["body"] == "Kedves Anna2, rendelőnk jövő héten zárva."
    page = desk.get(f"{base}/messages", params={"status": "sent", "limit": 2, "offset": 2}).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    message_id = log["items"][0]["id"]
    detail = desk.get(f"{base}/messages/{message_id}").json()
    assert detail["status"] == "sent" and detail["replies"] == []
    assert desk.post(f"{base}/messages/{message_id}/retry").status_code == 409  # sent: nothing to retry
    assert desk.post(f"{base}/messages/{message_id}/resolve", json={"outcome": "maybe"}).status_code == 422
    # a filtered list: everybody with an appointment tomorrow
    env.book(env.local(MONDAY + timedelta(days=1), 10, 0), patients[0])
    env.book(env.local(MONDAY + timedelta(days=1), 11, 0), patients[3])
    filtered = desk.post(f"{base}/send", json={"filter": {"appointment_from": "2026-01-06",
                                                          "appointment_to": "2026-01-06"},
                                               "body": "Holnap áramszünet lesz, {given_name}."}).json()
    assert filtered["total"] == 2


def test_opt_outs_quiet_hours_and_settings(api):
    env, base, c = api
    desk, admin = c["receptionist"], c["admin"]
    anna = env.patient()
    url = f"{base}/patients/{anna}/opt-outs"
    assert desk.put(url, json={"channels": ["sms"], "note": "kérte"}).json()["channels"] == ["sms"]
    assert desk.get(url).json()["items"][0]["note"] == "kérte"
    assert desk.put(url, json={"channels": ["fax"]}).status_code == 422
    assert desk.put(url, json={"channels": []}).json()["channels"] == []
    assert desk.get(f"{base}/patients/{uuid.uuid4()}/opt-outs").status_code == 404
    quiet = {"enabled": True, "start": "21:00", "end": "08:00"}
    assert desk.put(f"{base}/quiet-hours", json=quiet).status_code == 403
    assert admin.put(f"{base}/quiet-hours", json=quiet).json() == {"enabled": True, "start": "21:00", "end": "08:00"}
    same = admin.put(f"{base}/quiet-hours", json={"enabled": True, "start": "21:00", "end": "21:00"})
    assert same.status_code == 422 and same.json()["fields"][0]["field"] == "end"
    settings = admin.put(f"{base}/settings", json={"confirm_replies": ["1", "igen"], "cancel_replies": ["2"],
                                                   "cancel_reason": "patient_request", "link": "https://x.hu"})
    assert settings.status_code == 200 and settings.json()["confirm_replies"] == ["1", "igen"]
    clash = admin.put(f"{base}/settings", json={"confirm_replies": ["1"], "cancel_replies": ["1"],
                                                "cancel_reason": "nope"})
    assert sorted(f["field"] for f in clash.json()["fields"]) == ["cancel_reason", "cancel_replies"]
    assert c["doctor"].get(f"{base}/placeholders").json()[0]["name"] == "address"
