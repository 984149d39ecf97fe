"""A fake SMSC.ru for tests: send.php, status.php and balance.php with fmt=3 JSON, run on 127.0.0.1.

It models what a connector must cope with: login/password or API key (error 2), registered sender names
(error 6), phone format (error 7), numbers that cannot be reached (error 8), the account balance (error 3),
an identical send request within a minute refused as a duplicate (error 9), and the IP block after frequent
errors (error 4, for a minute). Every accepted message is one entry in ``effects``. It can also build the
signed delivery callback SMSC would post to the handler URL (``callback``). Reusable by the reminder engine's
tests: ``with FakeSmsc() as fake: settings = fake.plugin_settings()``.
"""

from __future__ import annotations

import math
import re
import threading
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from plugin_sdk.testing import FakeServer
from praxis_sms_smsc.client import SEND_ERRORS
from praxis_sms_smsc.provider import hash_callback
from praxis_sms_smsc.settings import DEFAULT_HASH_RECIPE

PHONE = re.compile(r"^\+?[1-9][0-9]{10,14}$")
MAX_TEXT = 1000


class FakeSmsc(FakeServer):
    def __init__(self, *, login: str = "clinic", password: str = "s3cret", api_key: str = "api-key-123",
                 senders: tuple[str, ...] = ("Praxis",), balance: float = 100.0, price: float = 2.5,
                 undeliverable: tuple[str, ...] = (), block_after_errors: int = 20,
                 callback_hash: str = "md5", callback_recipe: str = DEFAULT_HASH_RECIPE) -> None:
        self.login, self.password, self.api_key = login, password, api_key
        self.senders = set(senders)
        self.balance = balance
        self.price = price
        self.undeliverable = {_digits(p) for p in undeliverable}
        self.block_after_errors = block_after_errors
        self.callback_hash = callback_hash
        self.callback_recipe = callback_recipe
        self.messages: dict[tuple[str, int], dict[str, Any]] = {}
        self._recent: list[tuple[float, tuple[tuple[str, str], ...]]] = []
        self._errors: list[float] = []
        self._blocked_until = 0.0
        self._offset = 0.0
        self._next_id = 1000
        self._state = threading.Lock()
        super().__init__()

    # --- for tests -----------------------------------------------------------------------------------

    def plugin_settings(self, **overrides: Any) -> dict[str, Any]:
        return {"endpoint": f"{self.base_url}/sys/", "login": self.login, "password": self.password,
                "sender": "Praxis", "timeout_seconds": 0.5, **overrides}

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (duplicate window, IP block) forward."""
        with self._state:
            self._offset += seconds

    def set_status(self, phone: str, message_id: int, status: int, err: int = 0) -> None:
        with self._state:
            message = self.messages[(_digits(phone), message_id)]
            message.update(status=status, err=err, last=int(self._now()))

    def callback(self, message_id: int, phone: str, status: int, *, err: int = 0, secret: str | None = None,
                 at: int | None = None) -> tuple[dict[str, str], bytes]:
        """The form post SMSC makes to the handler URL for a status change, signed as configured."""
        fields = {"id": str(message_id), "phone": _digits(phone), "status": str(status),
                  "time": str(at if at is not None else int(self._now())), "err": str(err)}
        fields[self.callback_hash] = hash_callback(fields, self.callback_hash, self.callback_recipe,
                                                   secret if secret is not None else self.password)
        return {"content-type": "application/x-www-form-urlencoded"}, urlencode(fields).encode()

    def incoming(self, phone: str, text: str, *, to: str = "79000000000", secret: str | None = None,
                 message_id: int = 1) -> tuple[dict[str, str], bytes]:
        """The post SMSC makes to the handler URL for an incoming SMS (a patient's reply)."""
        fields = {"id": str(message_id), "phone": _digits(phone), "mes": text, "to": to,
                  "time": str(int(self._now()))}
        fields[self.callback_hash] = hash_callback(fields, self.callback_hash, self.callback_recipe,
                                                   secret if secret is not None else self.password)
        return {"content-type": "application/x-www-form-urlencoded"}, urlencode(fields).encode()

    # --- the API -------------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.time() + self._offset

    def build_app(self) -> FastAPI:
        app = FastAPI(title="Fake SMSC.ru")

        async def params(request: Request) -> dict[str, str]:
            values = dict(request.query_params)
            if request.method == "POST":
                values.update({k: str(v) for k, v in (await request.form()).items()})
            return values

        @app.api_route("/sys/send.php", methods=["GET", "POST"])
        async def send(request: Request) -> JSONResponse:
            return JSONResponse(self._send(await params(request)))

        @app.api_route("/sys/status.php", methods=["GET", "POST"])
        async def status(request: Request) -> JSONResponse:
            return JSONResponse(self._status(await params(request)))

        @app.api_route("/sys/balance.php", methods=["GET", "POST"])
        async def balance(request: Request) -> JSONResponse:
            with self._state:
                refused = self._guard(await params(request))
                if refused:
                    return JSONResponse(refused)
                return JSONResponse({"balance": f"{self.balance:.2f}", "currency": "RUR"})

        return app

    def _error(self, code: int, **extra: Any) -> dict[str, Any]:
        if code != 4:
            now = self._now()
            self._errors = [t for t in self._errors if now - t < 60] + [now]
            if len(self._errors) >= self.block_after_errors:
                self._blocked_until = now + 60
        return {"error": SEND_ERRORS[code], "error_code": code, **extra}

    def _guard(self, p: dict[str, str]) -> dict[str, Any] | None:
        if self._now() < self._blocked_until:
            return self._error(4)
        login, psw = p.get("login", ""), p.get("psw", "")
        if not ((login == self.login and psw == self.password) or (not login and psw == self.api_key)):
            return self._error(2)
        return None

    def _send(self, p: dict[str, str]) -> dict[str, Any]:
        with self._state:
            refused = self._guard(p)
            if refused:
                return refused
            now = self._now()
            signature = tuple(sorted(p.items()))
            self._recent = [(t, s) for t, s in self._recent if now - t < 60]
            if any(s == signature for _, s in self._recent):
                return self._error(9)
            self._recent.append((now, signature))
            text, phones = p.get("mes", ""), [x for x in re.split(r"[,;]", p.get("phones", "")) if x.strip()]
            if not text or not phones or len(text) > MAX_TEXT:
                return self._error(1)
            if p.get("sender") and p["sender"] not in self.senders:
                return self._error(6)
            for phone in phones:
                if not PHONE.match(phone.strip()):
                    return self._error(7)
                if _digits(phone) in self.undeliverable:
                    return self._error(8)
            try:
                message_id = int(p["id"]) if p.get("id") else self._take_id()
            except ValueError:
                return self._error(1)
            if not 1 <= message_id <= 2_147_483_647:
                return self._error(1)
            parts = 1 if len(text) <= 70 else math.ceil(len(text) / 67)
            cost = parts * len(phones) * self.price
            if cost > self.balance:
                return self._error(3, id=message_id)
            self.balance -= cost
            for phone in phones:
                key = (_digits(phone), message_id)
                self.messages[key] = {"id": message_id, "phone": _digits(phone), "text": text,
                                      "sender": p.get("sender"), "status": -1, "err": 0, "last": int(now)}
                self.record_effect(key)
            return {"id": message_id, "cnt": parts * len(phones)}

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _status(self, p: dict[str, str]) -> dict[str, Any]:
        with self._state:
            refused = self._guard(p)
            if refused:
                return refused
            try:
                phone = _digits(p.get("phone", "").strip(","))
                message_id = int(p.get("id", "").strip(","))
            except ValueError:
                return self._error(1)
            message = self.messages.get((phone, message_id))
            if message is None:
                return {"status": -3, "last_date": "", "last_timestamp": 0, "err": 0}
            return {"status": message["status"], "last_timestamp": message["last"], "err": message["err"],
                    "last_date": time.strftime("%d.%m.%Y %H:%M:%S", time.gmtime(message["last"] + 3 * 3600))}


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())
