"""Doctors' EESZT logins: eID card or password + one-time code, reused for 7 hours, then asked again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any


def test_eid_login_is_reused_within_7_hours_and_asked_again_after(eeszt: Any) -> None:
    patient = eeszt.patient()
    documents = f"{eeszt.base}/patients/{patient}/documents"
    needs_login = eeszt.client.get(documents)
    assert needs_login.status_code == 409 and needs_login.json()["error"] == "eeszt_login_required"

    no_card = eeszt.client.post(f"{eeszt.base}/session/eid")
    assert no_card.status_code == 422 and no_card.json()["eeszt_code"] == "no_card"
    logged_in = eeszt.login_eid()
    assert logged_in.status_code == 200, logged_in.text
    assert logged_in.json()["logged_in"] is True and logged_in.json()["method"] == "eid"
    assert logged_in.json()["remaining_seconds"] == 7 * 3600

    assert eeszt.client.get(documents).status_code == 200
    eeszt.clock.advance(timedelta(hours=3))
    assert eeszt.client.get(documents).status_code == 200
    eeszt.clock.advance(timedelta(hours=3, minutes=59))  # 6 h 59 min after the login
    assert eeszt.client.get(documents).status_code == 200
    assert len(eeszt.fake.logins) == 1  # one login, reused

    eeszt.clock.advance(timedelta(minutes=2))  # 7 h 01 min
    asked = eeszt.client.get(documents)
    assert asked.status_code == 409 and asked.json()["error"] == "eeszt_login_required"
    assert eeszt.client.get(f"{eeszt.base}/session").json()["logged_in"] is False
    assert eeszt.login_eid().status_code == 200
    assert eeszt.client.get(documents).status_code == 200
    assert len(eeszt.fake.logins) == 2


def test_wrong_pin_is_refused(eeszt: Any) -> None:
    eeszt.fake.present_card("506097", eeszt.STAMP, "0000")
    refused = eeszt.client.post(f"{eeszt.base}/session/eid")
    assert refused.status_code == 422 and refused.json()["eeszt_code"] == "wrong_pin"


def test_token_login_with_one_time_code_and_replay_guard(eeszt: Any) -> None:
    url = f"{eeszt.base}/session/token"
    code = eeszt.fake.otp(eeszt.STAMP)
    wrong = eeszt.client.post(url, json={"password": "nem-jo", "otp": code})
    assert wrong.status_code == 422 and wrong.json()["eeszt_code"] == "bad_credentials"
    code = eeszt.fake.otp(eeszt.STAMP, eeszt.clock.now + timedelta(seconds=30))
    eeszt.clock.advance(timedelta(seconds=30))
    ok = eeszt.client.post(url, json={"password": "titok-2026", "otp": code})
    assert ok.status_code == 200 and ok.json()["method"] == "token"
    replay = eeszt.client.post(url, json={"password": "titok-2026", "otp": code})
    assert replay.status_code == 422 and replay.json()["fields"][0]["code"] == "otp_replayed"
    assert len(eeszt.fake.logins) == 1
    # EESZT refuses a code of a time step already used on its own too (e.g. typed at another workstation)
    other = "000000" if code != "000000" else "111111"
    assert eeszt.client.post(url, json={"password": "titok-2026", "otp": other}).status_code == 422
    again = eeszt.client.post(url, json={"password": "titok-2026", "otp": code})
    assert again.status_code == 422 and again.json()["eeszt_code"] == "otp_replayed"
    eeszt.clock.advance(timedelta(seconds=30))
    fresh = eeszt.client.post(url, json={"password": "titok-2026", "otp": eeszt.fake.otp(eeszt.STAMP)})
    assert fresh.status_code == 200, fresh.text
    assert len(eeszt.fake.logins) == 2


def test_expired_at_eeszt_asks_for_a_new_login_and_session_status_is_listed(eeszt: Any) -> None:
    eeszt.fake.session_ttl = timedelta(hours=1)  # EESZT ends sessions earlier than the clinic keeps them
    assert eeszt.login_eid().status_code == 200
    eeszt.clock.advance(timedelta(hours=2))
    patient = eeszt.patient()
    asked = eeszt.client.get(f"{eeszt.base}/patients/{patient}/documents")
    assert asked.status_code == 409 and asked.json()["error"] == "eeszt_login_required"
    listed = eeszt.client.get(f"{eeszt.base}/sessions").json()
    assert listed == [{"user_id": eeszt.app.user_id, "logged_in": False, "method": None, "started_at": None,
                       "expires_at": None, "remaining_seconds": 0}]


def test_a_doctor_without_stamp_number_cannot_log_in(eeszt: Any) -> None:
    from tests.auth_helpers import client_for, create_user

    env = eeszt
    other = client_for(env.app.praxis, create_user(env.app.praxis, [env.app.clinic_id], permissions=["eeszt.use"]))
    refused = other.post(f"{env.base}/session/eid")
    assert refused.status_code == 409 and refused.json()["error"] == "stamp_number_missing"
    bad = env.client.put(f"{env.base}/doctors/{env.app.user_id}", json={"stamp_number": "5801"})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "stamp_number"
