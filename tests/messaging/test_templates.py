"""Templates: SMS length and parts, placeholder validation, languages, preview."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core.messaging import service
from core.messaging import templates as tpl
from core.messaging.schemas import PreviewIn, RuleIn, TemplatePatch
from core.messaging.segments import count
from plugin_sdk.errors import ValidationFailed
from tests.messaging.conftest import ACTOR

MONDAY = date(2026, 1, 5)


@pytest.mark.parametrize(("text", "encoding", "units", "parts"), [
    ("", "gsm7", 0, 0),
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("€" * 80, "gsm7", 160, 1),  # the extension table counts double
    ("€" * 81, "gsm7", 162, 2),
    ("{}[]~|^\\", "gsm7", 16, 1),
    ("a" * 152 + "€" + "a" * 152, "gsm7", 306, 3),  # the escape pair is never split: 152 | € + 151 | 1
    ("Kedves Ödön, üdvözöljük!", "gsm7", 24, 1),  # ö and ü are in GSM-7 ...
    ("Kedves Anna, holnap 10:30-kor várjuk!", "ucs2", 37, 1),  # ... á is not
    ("Ő" * 70, "ucs2", 70, 1),  # nor Ő and ű: Hungarian often goes as UCS-2
    ("Ő" * 71, "ucs2", 71, 2),
    ("ű" * 134, "ucs2", 134, 2),
    ("ű" * 135, "ucs2", 135, 3),
    ("Напоминаем о приёме", "ucs2", 19, 1),
    ("예약 알림", "ucs2", 5, 1),
    ("😀" * 35, "ucs2", 70, 1),  # outside the BMP: two code units each
    ("a" * 66 + "😀" + "a" * 5, "ucs2", 73, 2),
])
def test_sms_encoding_length_and_parts(text, encoding, units, parts):
    counted = count(text)
    assert (counted.encoding, counted.units, counted.segments) == (encoding, units, parts)
    assert counted.length == len(text)


def test_only_known_plain_placeholders_pass():
    assert tpl.check("Kedves {patient_name}, {date} {time} {{nem mező}}", "body") == []
    [unknown] = tpl.check("Kedves {patient_nmae}!", "body")
    assert (unknown.field, unknown.code) == ("body", "unknown_placeholder") and "{patient_nmae}" in unknown.message
    for bad in ("{time:>10}", "{patient_name!r}", "{patient_name.upper}", "{0}", "{}", "{date", "date}"):
        [error] = tpl.check(bad, "body")
        assert error.code == "invalid_placeholder", bad
    [unfit] = tpl.check("{time}", "body", allowed_needs={tpl.ANY})
    assert unfit.code == "placeholder_not_available"


def test_plugins_can_add_placeholders_to_the_registry():
    placeholder = tpl.Placeholder("portal_code", "Portal login code", "text", tpl.ANY,
                                  lambda c: c.data.get("code", ""), lambda c: "123456", source="portal")
    tpl.register(placeholder)
    try:
        assert tpl.check("Kód: {portal_code}", "body") == []
        ctx = tpl.RenderContext(language="hu", timezone="Europe/Budapest", data={"code": "987"})
        assert tpl.render("Kód: {portal_code}", ctx) == "Kód: 987"
        with pytest.raises(ValueError):
            tpl.register(tpl.Placeholder("portal_code", "other", "text", tpl.ANY, str, str, source="other"))
    finally:
        tpl.unregister("portal_code")
    assert tpl.check("{portal_code}", "body")[0].code == "unknown_placeholder"


def test_unknown_placeholders_are_refused_when_saving_and_rules_must_fit_their_templates(env):
    with pytest.raises(ValidationFailed) as refused:
        env.template("reminder", "Kedves {nev}!")
    assert [(e.field, e.code) for e in refused.value.errors] == [("body", "unknown_placeholder")]
    with pytest.raises(ValidationFailed) as refused:
        env.template("reminder", "ok", subject="{subjekt}")
    assert [(e.field, e.code) for e in refused.value.errors] == [("subject", "unknown_placeholder")]
    env.template("visit", "{patient_name}, holnap {time}")
    with pytest.raises(ValidationFailed) as refused:
        env.rule("birthday", {"at": "10:00"}, template_code="visit")
    assert [(e.field, e.code) for e in refused.value.errors] == [("template_code", "placeholder_not_available")]
    greeting = env.template("greeting", "Boldog születésnapot, {given_name}!")
    env.rule("birthday", {"at": "10:00"}, template_code="greeting")
    with pytest.raises(ValidationFailed) as refused:  # the template may not start needing an appointment
        service.update_template(env.praxis, env.clinic_id, greeting["id"], TemplatePatch(body="{time}"), ACTOR)
    assert refused.value.errors[0].field == "body"
    with pytest.raises(ValidationFailed) as refused:
        service.create_rule(env.praxis, env.clinic_id, RuleIn(
            name="x", kind="days_before", params={"days": "one", "at": "25:00", "color": 1},
            template_code="nosuch", set_communication_status="telepathy"), ACTOR)
    assert sorted((e.field, e.code) for e in refused.value.errors) == [
        ("params.at", "invalid"), ("params.color", "unknown_parameter"), ("params.days", "invalid"),
        ("set_communication_status", "unknown_code"), ("template_code", "unknown_template")]


def test_the_patients_language_picks_the_template(env):
    env.template("reminder", "Holnap {time}", language="hu")
    env.template("reminder", "Tomorrow at {time}", language="en")
    env.template("reminder", "Завтра в {time}", language="ru", channel="sms")
    env.rule("on_booking", {})
    tomorrow = MONDAY + timedelta(days=1)
    env.book(env.local(tomorrow, 10, 0), env.patient("Smith", "John", language="en-GB"))
    env.book(env.local(tomorrow, 11, 0), env.patient("Иванов", "Пётр", phone="+36 20 555 1234", language="ru"))
    env.book(env.local(tomorrow, 12, 0), env.patient("Lee", "Min", phone="+36 70 555 1234", language="ko"))
    env.run()
    assert sorted(s["text"] for s in env.vendor.sms()) == [
        "Holnap 12:00", "Tomorrow at 10:00\u202fAM", "Завтра в 11:00"]  # Babel's narrow space before AM
    russian = env.messages(language="ru")[0]
    assert russian.encoding == "ucs2" and russian.segments == 1


def test_preview_with_samples_and_with_real_data(env):
    sample = service.preview(env.praxis, env.clinic_id, PreviewIn(body="Kedves {patient_name}! {date} {time}, "
                                                                      "{doctor}. {link}"))
    assert sample["sample"] is True
    assert sample["body"] == ("Kedves Kovács Anna! 2026. március 14. 10:30, Dr. Nagy Péter. "
                              "https://example.org/r/abc123")
    assert sample["sms"]["encoding"] == "ucs2" and sample["sms"]["segments"] == 2  # "március": á is not GSM-7
    anna = env.patient("Szőke", "Ödön")
    appt = env.book(env.local(MONDAY + timedelta(days=1), 9, 15), anna)
    real = service.preview(env.praxis, env.clinic_id, PreviewIn(body="Kedves {patient_name}! {date} {time}, {doctor}",
                                                                appointment_id=appt["id"]))
    assert real["sample"] is False
    assert real["body"] == "Kedves Szőke Ödön! 2026. január 6. 9:15, Dr. Nagy Péter"
    assert real["sms"] == {"encoding": "ucs2", "length": 55, "units": 55, "segments": 1, "per_segment": 70}
    with pytest.raises(ValidationFailed):
        service.preview(env.praxis, env.clinic_id, PreviewIn(body="{nincs}"))
