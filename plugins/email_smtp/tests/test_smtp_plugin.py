"""The SMTP plugin against a real aiosmtpd server: message format, TLS modes, login, refusals, settings."""

from __future__ import annotations

import importlib.metadata
import uuid
from typing import Any

import pytest
from praxis_email_smtp import plugin
from praxis_email_smtp.client import retry_after
from praxis_email_smtp.fake_server import FakeSmtp
from praxis_email_smtp.provider import message_id
from praxis_email_smtp.settings import SmtpSettings

from plugin_sdk import ConnectionCheck, PermanentError, RetryableError
from plugin_sdk.providers import DeliveryStatus, OutgoingMessage

PROVIDER = plugin.PROVIDER


def mail(to: str = "Kovács.Éva@example.com", key: str | None = None, **kw: Any) -> OutgoingMessage:
    return OutgoingMessage(channel="email", to=to, body=kw.pop("body", "Kedves Éva!\n.\nHolnap 10:00-kor várjuk."),
                           subject=kw.pop("subject", "Időpont emlékeztető"), idempotency_key=key or str(uuid.uuid4()),
                           **kw)


def test_entry_point_and_manifest(smtp):
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="praxis.plugins")}
    assert installed.get("email_smtp") == "praxis_email_smtp.plugin"
    assert (plugin.manifest.category, plugin.manifest.countries) == ("messaging", ())
    assert plugin.manifest.secret_fields() == ["password"] and PROVIDER.channel == "email"


def test_the_message_has_a_stable_message_id_and_survives_the_trip(smtp, fake_smtp, praxis_clock):
    message = mail(key="key-1", metadata={"html": "<p>Kedves Éva!</p>"})
    result = PROVIDER.send(smtp.ctx, message)
    assert result.status is DeliveryStatus.sent
    assert result.vendor_message_id == message_id("key-1", "rendelo@praxis.example")
    assert result.vendor_message_id.endswith("@praxis.example>")
    (received,) = fake_smtp.messages
    assert received["Message-ID"] == result.vendor_message_id
    assert received["From"] == "Praxis Rendelő <rendelo@praxis.example>"
    assert (received["To"], received["Subject"]) == ("Kovács.Éva@example.com", "Időpont emlékeztető")
    assert received["Date"] == "Mon, 05 Jan 2026 08:00:00 +0000"
    assert received.get_body(("plain",)).get_content() == "Kedves Éva!\n.\nHolnap 10:00-kor várjuk.\n"
    assert received.get_body(("html",)).get_content().strip() == "<p>Kedves Éva!</p>"
    assert PROVIDER.send(smtp.ctx, mail(key="key-1")).vendor_message_id == result.vendor_message_id


def test_bad_addresses_are_refused_before_sending_or_by_the_server(smtp, fake_smtp):
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(smtp.ctx, mail(to="not-an-address"))
    assert raised.value.code == "invalid_address" and fake_smtp.requests == []
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(smtp.ctx, mail(to="nobody@invalid.example"))
    assert raised.value.code == "550" and "User unknown" in str(raised.value)


def test_deferrals_are_retryable_with_the_servers_delay(smtp, fake_smtp):
    fake_smtp.rate_limit_next(retry_after=30)
    with pytest.raises(RetryableError) as raised:
        PROVIDER.send(smtp.ctx, mail())
    assert raised.value.code == "451" and raised.value.retry_after == 30
    assert retry_after("451 4.7.0 Try again later") is None
    assert retry_after("421 too busy, retry after 120 s") == 120


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_modes_with_login(plugin_app, mode):
    with FakeSmtp(tls=mode, username="rendelo", password="titok") as fake:
        app = plugin_app(plugin, settings=fake.plugin_settings())
        assert PROVIDER.send(app.ctx, mail()).status is DeliveryStatus.sent
        assert len(fake.messages) == 1
        app.configure(fake.plugin_settings(password="rossz"))
        with pytest.raises(PermanentError) as raised:
            PROVIDER.send(app.ctx, mail())
        assert raised.value.code == "535"
        app.configure({**fake.plugin_settings(), "ca_certificate": None})  # the server's CA is not trusted
        with pytest.raises(PermanentError) as raised:
            PROVIDER.send(app.ctx, mail())
        assert raised.value.code == "certificate_untrusted"
        (check,) = app.call("praxis_test_connection", settings=SmtpSettings(**fake.plugin_settings()))
        assert check.value.ok and mode in check.value.message and "logged in" in check.value.message


def test_starttls_required_but_not_offered_is_permanent(smtp, fake_smtp):
    smtp.configure(fake_smtp.plugin_settings(security="starttls"))
    with pytest.raises(PermanentError) as raised:
        PROVIDER.send(smtp.ctx, mail())
    assert raised.value.code == "starttls_unavailable"


def test_connection_check(smtp, fake_smtp):
    (ok,) = smtp.call("praxis_test_connection", settings=SmtpSettings(**fake_smtp.plugin_settings()))
    assert isinstance(ok.value, ConnectionCheck) and ok.value.ok and fake_smtp.messages == []
    fake_smtp.stop()
    (down,) = smtp.call("praxis_test_connection", settings=SmtpSettings(**fake_smtp.plugin_settings()))
    assert not down.value.ok and down.value.details["code"] == "unreachable"


def test_settings_rules(smtp):
    def errors(**values: Any) -> list[tuple[str, str]]:
        (result,) = smtp.call("praxis_validate_settings", settings=SmtpSettings(**values))
        return [(e.field, e.code) for e in result.value]

    assert errors(host="mail.example.com", from_address="a@example.com", username="u", password="p") == []
    assert errors(host="mail.example.com") == [("from_address", "required")]
    assert errors(from_address="nope") == [("from_address", "invalid")]
    assert errors(host="mail.example.com", from_address="a@example.com", username="u") == [("password", "required")]
    assert errors(host="mail.example.com", from_address="a@example.com", username="u", password="p",
                  security="none") == [("security", "insecure_login")]
    assert errors(ca_certificate="garbage") == [("ca_certificate", "invalid")]
