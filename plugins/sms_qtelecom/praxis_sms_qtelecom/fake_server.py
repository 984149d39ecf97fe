"""A fake QuickTelecom HTTP protocol server on 127.0.0.1 (see ``client.py`` for what is confirmed and what is
assumed). Models: ``user``/``pass`` on every request, registered sender names, the 480-character limit, phone
format, the balance, a per-second request limit (HTTP 429 + ``Retry-After``: an assumption), status by date window,
and delivery moved on by the test (``finish``). Answers are gzip-encoded unless ``gzip=none``, as documented.
Every accepted message is one entry in ``effects``.
"""

from __future__ import annotations

import gzip
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import Response

from plugin_sdk.testing import FakeServer
from praxis_sms_qtelecom.client import MAX_TEXT

MSK = ZoneInfo("Europe/Moscow")
PHONE = re.compile(r"^\+?[1-9]\d{10,14}$")
STAMP = "%d.%m.%Y %H:%M:%S"


class FakeQtelecom(FakeServer):
    def __init__(self, *, user: str = "clinic", password: str = "s3cret", senders: tuple[str, ...] = ("Praxis",),
                 balance: float = 100.0, price: float = 2.0, rate_limit: int | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.user, self.password = user, password
        self.senders = set(senders)
        self.balance, self.price = balance, price
        self.rate_limit = rate_limit
        self.clock = clock or (lambda: datetime.now(UTC))
        self.messages: dict[str, dict[str, Any]] = {}
        self._hits: list[float] = []
        self._ids = 99990
        self._state = threading.Lock()
        super().__init__()

    def plugin_settings(self, **overrides: Any) -> dict[str, Any]:
        return {"endpoint": f"{self.base_url}/public/http/", "user": self.user, "password": self.password,
                "sender": "Praxis", "timeout_seconds": 0.5, **overrides}

    def finish(self, sms_id: str, *, delivered: bool = True) -> None:
        with self._state:
            self.messages[sms_id].update(code="delivered" if delivered else "not_delivered", closed=1,
                                         sent=1 if delivered else 0,
                                         status="Доставлено" if delivered else "Не доставлено")

    def build_app(self) -> FastAPI:
        app = FastAPI(title="Fake QuickTelecom HTTP")

        @app.post("/public/http/")
        async def endpoint(request: Request) -> Response:
            form = {k: str(v) for k, v in (await request.form()).items()}
            if self.rate_limit is not None:
                with self._state:
                    now = time.monotonic()
                    self._hits = [t for t in self._hits if now - t < 1.0]
                    if len(self._hits) >= self.rate_limit:
                        return Response("<output><errors><error>Слишком много запросов</error></errors></output>",
                                        429, {"Retry-After": "1"}, media_type="text/xml")
                    self._hits.append(now)
            xml = self._handle(form)
            body = ("<?xml version='1.0' encoding='UTF-8'?>" + xml).encode()
            if form.get("gzip") == "none":
                return Response(body, media_type="text/xml; charset=UTF-8")
            return Response(gzip.compress(body), media_type="text/xml; charset=UTF-8",
                            headers={"Content-Encoding": "gzip"})

        return app

    def _handle(self, f: dict[str, str]) -> str:
        if f.get("user") != self.user or f.get("pass") != self.password:
            return _errors("Неверный логин или пароль")
        action = f.get("action")
        with self._state:
            if action == "post_sms":
                return self._post(f)
            if action == "status":
                return self._status(f)
            if action == "balance":
                return (f"<output><balance><AGT_BALANCE>{self.balance:.2f}</AGT_BALANCE>"
                        f"<OVERDRAFT>0</OVERDRAFT></balance></output>")
        return _errors(f"Неизвестное действие: {action}")

    def _post(self, f: dict[str, str]) -> str:
        text = f.get("message", "")
        targets = [t.strip() for t in f.get("target", "").split(",") if t.strip()]
        if not text or not targets:
            return _errors("Не указан текст сообщения или получатель")
        if len(text) > MAX_TEXT:
            return _errors(f"Превышена длина сообщения: {len(text)} > {MAX_TEXT}")
        if f.get("sender") and f["sender"] not in self.senders:
            return _errors(f"Имя отправителя не зарегистрировано: {f['sender']}")
        if self.balance < self.price * len(targets):
            return _errors("Недостаточно средств на балансе")
        accepted, refused = [], []
        for target in targets:
            if not PHONE.match(target):
                refused.append(f"Неправильный номер телефона: {target}")
                continue
            self._ids += 1
            sms_id = str(self._ids)
            self.balance -= self.price
            self.messages[sms_id] = {"id": sms_id, "target": target, "text": text, "sender": f.get("sender"),
                                     "created": self.clock().astimezone(MSK).replace(tzinfo=None), "code": "wait",
                                     "status": "Сообщение в процессе доставки", "closed": 0, "sent": 0}
            self.record_effect(sms_id)
            accepted.append(f'<sms id="{sms_id}" smstype="SENDSMS" phone={quoteattr(target)}>'
                            f"<![CDATA[{text}]]></sms>")
        result = f'<result sms_group_id="{self._ids}">{"".join(accepted)}</result>' if accepted else ""
        errors = "".join(f"<error>{escape(e)}</error>" for e in refused)
        return f"<output>{result}{f'<errors>{errors}</errors>' if errors else ''}</output>"

    def _status(self, f: dict[str, str]) -> str:
        try:
            start = datetime.strptime(f["date_from"], STAMP) if f.get("date_from") else None  # noqa: DTZ007 (MSK)
            end = datetime.strptime(f["date_to"], STAMP) if f.get("date_to") else None  # noqa: DTZ007 (MSK)
        except ValueError:
            return _errors("Неверный формат даты")
        rows = [m for m in self.messages.values()
                if (not f.get("sms_id") or m["id"] == f["sms_id"])
                and (start is None or m["created"] >= start) and (end is None or m["created"] <= end)]
        out = "".join(
            f'<MESSAGE SMS_ID="{m["id"]}" SMSTYPE="SENDSMS"><CREATED>{m["created"].strftime(STAMP)}</CREATED>'
            f"<SMS_SENDER>{escape(m['sender'] or '')}</SMS_SENDER><SMS_TARGET>{escape(m['target'])}</SMS_TARGET>"
            f"<SMS_TEXT><![CDATA[ {m['text']} ]]></SMS_TEXT><SMSSTC_CODE>{m['code']}</SMSSTC_CODE>"
            f"<SMS_STATUS>{escape(m['status'])}</SMS_STATUS><SMS_CLOSED>{m['closed']}</SMS_CLOSED>"
            f"<SMS_SENT>{m['sent']}</SMS_SENT></MESSAGE>" for m in rows)
        return f"<output><MESSAGES>{out}</MESSAGES></output>"


def _errors(text: str) -> str:
    return f"<output><errors><error>{escape(text)}</error></errors></output>"
