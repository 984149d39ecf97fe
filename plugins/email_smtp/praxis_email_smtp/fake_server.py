"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests, with the fault controls of ``plugin_sdk.testing.FakeServer``.

It speaks SMTP, not HTTP, so it overrides how the server runs but keeps the fault queue: ``fail_next`` makes the
next messages deferred with ``451`` (an HTTP 5xx means "the vendor is in trouble"), ``rate_limit_next`` defers with
"try again in N seconds", ``hang_next`` withholds the reply to the end of ``DATA`` (with ``after=True`` the message
is queued first, the reply lost). It offers STARTTLS or implicit TLS with a throw-away CA (``ca_pem``), requires
AUTH when given a user, refuses mailboxes in ``refused_domains`` with ``550 5.1.1``, and can limit messages per
second. Every queued message is one entry in ``effects`` and in ``messages`` (parsed).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import tempfile
import time
import warnings
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plugin_sdk.testing import FakeServer, RecordedRequest


async def _not_http(scope: Any, receive: Any, send: Any) -> None:  # FakeServer wants an app; SMTP needs none
    raise RuntimeError("FakeSmtp speaks SMTP, not HTTP")


class FakeSmtp(FakeServer):
    def __init__(self, *, tls: Literal["none", "starttls", "ssl"] = "none", username: str | None = None,
                 password: str | None = None, refused_domains: tuple[str, ...] = ("invalid.example",),
                 rate_limit: int | None = None) -> None:
        super().__init__(app=_not_http)
        self.tls = tls
        self.username, self.password = username, password
        self.refused_domains = {d.lower() for d in refused_domains}
        self.rate_limit = rate_limit
        self.messages: list[EmailMessage] = []
        self.ca_pem = ""
        self._context: ssl.SSLContext | None = None
        self._controller: Controller | None = None
        self._hits: list[float] = []
        self._queue_id = 0
        if tls != "none":
            self._context = self._make_certificates()

    # --- settings for the plugin ----------------------------------------------------------------------

    def plugin_settings(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "security": self.tls,
                                  "from_address": "rendelo@praxis.example", "from_name": "Praxis Rendelő",
                                  "timeout_seconds": 0.5}
        if self.username:
            values.update(username=self.username, password=self.password)
        if self.ca_pem:
            values["ca_certificate"] = self.ca_pem
        return {**values, **overrides}

    # --- running ---------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> FakeSmtp:
        if self._controller is not None:
            return self
        if self._port is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self._port = probe.getsockname()[1]
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self._port, "server_hostname": "fake-smtp.test",
                                  "ready_timeout": self.start_timeout}
        if self.tls == "ssl":
            kwargs["ssl_context"] = self._context
        elif self.tls == "starttls":
            kwargs.update(tls_context=self._context, require_starttls=True)
        if self.username:
            if self.tls == "ssl":  # aiosmtpd cannot tell that an implicit-TLS session is encrypted and warns
                warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS",
                                        category=UserWarning, module="aiosmtpd.smtp")
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=self.tls == "starttls")  # implicit TLS: the whole session is TLS
        controller = Controller(_Handler(self), **kwargs)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        self.release()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # --- SMTP behaviour --------------------------------------------------------------------------------

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login.decode() == self.username \
            and data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)

    def _over_rate(self) -> float | None:
        if self.rate_limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            self._hits = [t for t in self._hits if now - t < 1.0]
            if len(self._hits) >= self.rate_limit:
                return 1.0
            self._hits.append(now)
        return None

    def _queue(self, envelope: Any) -> str:
        raw = (envelope.original_content or envelope.content).replace(b"\r\n", b"\n")  # as a mailbox stores it
        parsed = message_from_bytes(raw, policy=policy.default)
        with self._lock:
            self._queue_id += 1
            queue_id = f"4F{self._queue_id:06X}"
            self.messages.append(parsed)  # type: ignore[arg-type]
        self.record_effect(queue_id)
        return f"250 2.0.0 Ok: queued as {queue_id}"

    def _make_certificates(self) -> ssl.SSLContext:
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake SMTP test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
        folder = Path(tempfile.mkdtemp(prefix="fake-smtp-"))
        (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        for name in ("cert.pem", "key.pem"):
            (folder / name).unlink()
        folder.rmdir()
        return context


class _Handler:
    def __init__(self, fake: FakeSmtp) -> None:
        self.fake = fake

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.rpartition("@")[2].lower() in self.fake.refused_domains:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        fake = self.fake
        fault = fake._take("DATA", "/")
        fake._record(RecordedRequest(
            method="DATA", path="/", query="", body=envelope.original_content or envelope.content,
            headers={"mail-from": envelope.mail_from, "rcpt-to": ",".join(envelope.rcpt_tos)},
            at=dt.datetime.now(dt.UTC), fault=fault.label if fault else None))
        if fault is None:
            if fake._over_rate() is not None:
                return "451 4.7.1 Rate limit exceeded, try again in 1 seconds"
            return fake._queue(envelope)
        if fault.kind == "hang":
            reply = fake._queue(envelope) if fault.after else "451 4.4.2 Timeout while processing the message"
            await fake._wait(fault.seconds)
            return reply
        if fault.status == 429:
            headers = {k.decode(): v.decode() for k, v in fault.headers}
            return f"451 4.7.1 Too many messages, try again in {headers.get('retry-after', '60')} seconds"
        if fault.status >= 500:
            return f"451 4.3.0 Temporary server error (injected {fault.status})"
        return f"554 5.7.1 Message refused (injected {fault.status})"


