"""End to end through a real vendor plugin: the SMSC.ru plugin (plugins/sms_smsc) against its fake server.

SMSC does not deduplicate resends, so a lost answer is settled with its status lookup; its callbacks are
hashed form posts that the plugin checks before the core applies them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import EntryPoint
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from core.api.app import create_app
from core.messaging import service
from core.messaging.schemas import RuleIn, TemplateIn
from core.models.messaging import MessageStatus
from core.outbox.worker import Worker
from core.patients.schemas import PatientCreate, PhoneIn
from core.patients.service import PatientService
from core.scheduling import appointments
from tests.auth_helpers import create_user
from tests.conftest import add_clinic
from tests.messaging.conftest import ACTOR, BOSS

fake_server = pytest.importorskip("praxis_sms_smsc.fake_server")
SMSC = EntryPoint(name="sms_smsc", value="praxis_sms_smsc.plugin", group="praxis.plugins")
MOSCOW = ZoneInfo("Europe/Moscow")


def _drain(worker: Worker) -> None:
    for _ in range(30):
        if not worker.run_once():
            return


def test_reminder_through_smsc_with_a_lost_answer_a_delivery_callback_and_a_reply(make_praxis, praxis_clock):
    praxis = make_praxis([SMSC])
    clinic = add_clinic(praxis, "Москва", country="RU", timezone="Europe/Moscow", locale="ru")
    doctor = create_user(praxis, [clinic], role="doctor", name="Иванова Мария")
    with fake_server.FakeSmsc() as smsc:
        praxis.plugins.enable(clinic, "sms_smsc", ACTOR)
        praxis.plugins.configure(clinic, "sms_smsc", smsc.plugin_settings(timeout_seconds=0.5), ACTOR)
        service.create_template(praxis, clinic, TemplateIn(
            code="reminder", language="ru", body="{given_name}, напоминаем: {date} в {time}, врач {doctor}. "
                                                 "Ответьте 1 для подтверждения, 2 для отмены."), ACTOR)
        service.create_rule(praxis, clinic, RuleIn(name="Накануне", kind="days_before", template_code="reminder",
                                                   params={"days": 1, "at": "12:00"}), ACTOR)
        patient = PatientService(praxis).create(clinic, PatientCreate(
            family_name="Петров", given_name="Иван", phones=[PhoneIn(number="+7 916 123-45-67")]), ACTOR).id
        start = datetime(2026, 1, 7, 10, 0, tzinfo=MOSCOW).astimezone(UTC)
        appt = appointments.create(praxis, clinic, {"doctor_id": doctor, "patient_id": patient, "start_at": start,
                                                    "end_at": start + timedelta(minutes=30)}, BOSS, overbook=True)
        worker = Worker(praxis, name="e2e", handler_timeout=5.0)
        praxis_clock.set(datetime(2026, 1, 6, 12, 0, tzinfo=MOSCOW))
        smsc.hang_next(1, after=True, path="/sys/send.php")  # SMSC sends it; the answer is lost
        _drain(worker)
        smsc.release()
        [message] = service.list_messages(praxis, clinic)["items"]
        assert message["status"] == MessageStatus.sending and len(smsc.effects) == 1
        praxis_clock.advance(timedelta(minutes=2))
        _drain(worker)  # asks status.php instead of sending again
        [message] = service.list_messages(praxis, clinic)["items"]
        assert message["status"] == MessageStatus.sent
        assert len(smsc.effects) == 1
        assert message["body"] == ("Иван, напоминаем: 7 января 2026\u202fг. в 10:00, врач Иванова Мария. "
                                   "Ответьте 1 для подтверждения, 2 для отмены.")
        assert message["encoding"] == "ucs2" and message["segments"] == 2

        client = TestClient(create_app(praxis, start_worker=False))
        url = f"/api/messaging/callbacks/sms_smsc/{clinic}"
        headers, body = smsc.callback(int(message["vendor_message_id"]), "+79161234567", 1)
        assert client.post(url, content=body, headers=headers).json()["applied"] == 1
        headers, body = smsc.callback(int(message["vendor_message_id"]), "+79161234567", 1, secret="wrong")
        assert client.post(url, content=body, headers=headers).status_code == 403
        headers, body = smsc.incoming("+79161234567", "1", message_id=77)
        assert client.post(url, content=body, headers=headers).json()["replies"] == 1
    assert service.get_message(praxis, clinic, uuid.UUID(message["id"]))["status"] == MessageStatus.delivered
    confirmed = appointments.get(praxis, clinic, appt["id"])
    assert confirmed["status"] == "confirmed" and confirmed["communication_status"] == "confirmed"
    assert date(2026, 1, 7) == start.astimezone(MOSCOW).date()
