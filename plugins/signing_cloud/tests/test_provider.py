"""The cloud provider inside a real Praxis against the fake vendor: signed requests, enrollment, intent checks,
batch limits, callbacks."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from praxis_signing_cloud import auth, plugin
from praxis_signing_cloud.provider import mask, normalise_mobile, resident_id_problem

from plugin_sdk import PermanentError, RetryableError
from plugin_sdk.errors import ValidationFailed
from plugin_sdk.providers import ChallengeStatus

P = plugin.PROVIDER


def test_the_string_to_sign_follows_the_published_recipe():
    text = auth.string_to_sign("post", "/v3/sign-flow/create-by-file", "b=2&a=1", "1B2M2Y8AsgTpgAmY7PhCfg==")
    assert text == ("POST\n*/*\n1B2M2Y8AsgTpgAmY7PhCfg==\napplication/json; charset=UTF-8\n\n"
                    "/v3/sign-flow/create-by-file?a=1&b=2")
    assert auth.content_md5(b"") == "1B2M2Y8AsgTpgAmY7PhCfg=="  # MD5 of the empty body


def test_a_request_signed_with_the_wrong_secret_is_refused_by_the_vendor(plugin_app, fake_vendor):
    app = plugin_app(plugin, settings=fake_vendor.plugin_settings(app_secret="not-the-secret"), country="CN")
    with pytest.raises(PermanentError) as raised:
        P.enroll(app.ctx, 1, "identity", {"name": "王莉", "id_number": "11010519491231002X", "phone": "13812345678"})
    assert raised.value.code == "401" and "signature mismatch" in str(raised.value)
    (check,) = app.call("praxis_test_connection", settings=app.ctx.settings)
    assert check.value.ok is False


def test_identity_and_seal_input_is_checked_naming_the_field(app):
    assert resident_id_problem("11010519491231002X") is None
    assert "check character" in resident_id_problem("110105194912310021")
    assert normalise_mobile("+86 138-1234-5678") == "13812345678" and mask("13812345678", 3, 4) == "138****5678"
    with pytest.raises(ValidationFailed) as raised:
        P.enroll(app.ctx, 1, "identity", {"name": "", "id_number": "123", "phone": "555"})
    assert [e.field for e in raised.value.errors] == ["name", "id_number", "phone"]
    with pytest.raises(PermanentError):  # the seal needs the identity first
        P.enroll(app.ctx, 1, "seal", {"image": base64.b64encode(b"GIF89a").decode()})


def test_enrollment_keeps_only_masked_identifiers(app, enroll):
    enrollment = enroll(app.ctx, 1)
    assert enrollment.ready and enrollment.details["mobile"] == "138****5678"
    with app.praxis.engine.connect() as conn:
        rows = [str(r) for r in conn.exec_driver_sql("SELECT * FROM signing_cloud_signer")]
        audit = [str(r) for r in conn.exec_driver_sql("SELECT data FROM core_audit")]
    assert "11010519491231002X" not in "".join(rows + audit) and "13812345678" not in "".join(rows + audit)
    with pytest.raises(ValidationFailed) as raised:
        P.enroll(app.ctx, 1, "seal", {"image": base64.b64encode(b"GIF89a....").decode()})
    assert raised.value.errors[0].field == "image" and raised.value.errors[0].code == "not_an_image"


def test_no_signature_without_a_passed_intent_check_and_never_beyond_the_batch(app, enroll, fake_vendor):
    enroll(app.ctx, 1)
    with pytest.raises(PermanentError) as raised:
        P.sign(app.ctx, 1, [b"doc"])
    assert raised.value.code == "intent_required"
    challenge = P.begin(app.ctx, 1, 2)
    with pytest.raises(PermanentError) as raised:
        P.sign_in_session(app.ctx, challenge.session_id, 1, [b"doc"])
    assert raised.value.code == "intent_required"
    assert P.complete(app.ctx, challenge.session_id, fake_vendor.last_code()).status == ChallengeStatus.passed
    with pytest.raises(PermanentError) as raised:
        P.sign_in_session(app.ctx, challenge.session_id, 2, [b"doc"])
    assert raised.value.code == "not_your_session"
    assert len(P.sign_in_session(app.ctx, challenge.session_id, 1, [b"one"])) == 1
    assert len(P.sign_in_session(app.ctx, challenge.session_id, 1, [b"two"])) == 1
    with pytest.raises(PermanentError) as raised:
        P.sign_in_session(app.ctx, challenge.session_id, 1, [b"three"])
    assert raised.value.code == "over_batch"


def test_wrong_codes_count_here_and_lock_after_five(app, enroll, fake_vendor):
    enroll(app.ctx, 1)
    challenge = P.begin(app.ctx, 1, 1)
    code = fake_vendor.last_code()
    wrong = "000000" if code != "000000" else "111111"
    outcomes = [P.complete(app.ctx, challenge.session_id, wrong) for _ in range(4)]
    assert [(o.status, o.attempts_left) for o in outcomes] == [("rejected", 4), ("rejected", 3), ("rejected", 2),
                                                                ("rejected", 1)]
    assert P.complete(app.ctx, challenge.session_id, "12ab").status == ChallengeStatus.locked  # malformed counts
    assert P.complete(app.ctx, challenge.session_id, code).status == ChallengeStatus.locked


def test_an_expired_intent_check(app, enroll, fake_vendor, praxis_clock):
    from datetime import UTC, datetime

    praxis_clock.set(datetime.now(UTC))
    enroll(app.ctx, 1)
    challenge = P.begin(app.ctx, 1, 1)
    praxis_clock.advance(timedelta(minutes=11))
    assert P.complete(app.ctx, challenge.session_id, fake_vendor.last_code()).status == ChallengeStatus.expired


def test_the_vendor_down_is_retryable(app, enroll, fake_vendor):
    enroll(app.ctx, 1)
    fake_vendor.stop()
    with pytest.raises(RetryableError):
        P.begin(app.ctx, 1, 1)
    fake_vendor.start()
    fake_vendor.rate_limit_next(1, retry_after=9)
    with pytest.raises(RetryableError) as raised:
        P.begin(app.ctx, 1, 1)
    assert raised.value.retry_after == 9


def _callback_app(plugin_app: Any, fake_vendor: Any, enroll: Any) -> Any:
    app = plugin_app(plugin, settings=fake_vendor.plugin_settings(notify_url="https://praxis.example/cb?clinic=7"),
                     country="CN")
    enroll(app.ctx, 1)
    return app


def test_an_authentic_callback_passes_the_face_check(plugin_app, fake_vendor, enroll):
    app = _callback_app(plugin_app, fake_vendor, enroll)
    challenge = P.begin(app.ctx, 1, 1, "qr_face")
    fake_vendor.scan(challenge.details["willingness_id"])
    ((headers, query, body),) = fake_vendor.callbacks
    assert query == {"clinic": "7"}
    assert P.handle_callback(app.ctx, headers, query, body) == {"applied": True, "session_id": challenge.session_id,
                                                                "status": "passed"}
    assert len(P.sign_in_session(app.ctx, challenge.session_id, 1, [b"doc"])) == 1


def test_forged_or_replayed_callbacks_are_refused_and_audited(plugin_app, fake_vendor, enroll, praxis_clock):
    from datetime import UTC, datetime

    praxis_clock.set(datetime.now(UTC))
    app = _callback_app(plugin_app, fake_vendor, enroll)
    challenge = P.begin(app.ctx, 1, 1, "qr_face")
    body = {"action": "WILLINGNESS_PASSED", "willingnessId": challenge.details["willingness_id"]}
    forged_headers, raw = fake_vendor.signed_callback(body, secret="guessed-secret")
    old_headers, old_raw = fake_vendor.signed_callback(body, at=praxis_clock.now - timedelta(minutes=30))
    good_headers, good_raw = fake_vendor.signed_callback(body)
    for headers, data in ((forged_headers, raw), (old_headers, old_raw), (good_headers, good_raw + b" ")):
        with pytest.raises(PermanentError) as raised:
            P.handle_callback(app.ctx, headers, {}, data)
        assert raised.value.code == "forged_callback"
    assert P.complete(app.ctx, challenge.session_id, None).status == ChallengeStatus.pending
    with app.praxis.engine.connect() as conn:
        refused = conn.exec_driver_sql("SELECT count(*) FROM core_audit WHERE action = "
                                       "'signing_cloud.callback_refused'").scalar()
    assert refused == 3
