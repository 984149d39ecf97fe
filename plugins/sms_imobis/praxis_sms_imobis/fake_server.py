"""A fake Imobis API v3 on 127.0.0.1 (see ``client.py`` for what is confirmed and what is assumed).

Models: the ``Authorization: Token`` header (401), approved sender names ("Invalid sender"), phone digits
("Invalid phone"), the balance ("Low balance"), a per-second request limit (HTTP 429 + ``Retry-After``), the status
query by ``custom_id`` and delivery moved on by the test (``set_status``). Every accepted message is one entry in
``effects``.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from plugin_sdk.testing import FakeServer

PHONE = re.compile(r"^[1-9]\d{10,14}$")


class FakeImobis(FakeServer):
    def __init__(self, *, token: str = "0b6e8a7c-1d2e-4f50-9a8b-7c6d5e4f3a21", senders: tuple[str, ...] = ("Praxis",),
                 balance: float = 100.0, price: float = 2.2, rate_limit: int | None = None) -> None:
        self.token = token
        self.senders = set(senders)
        self.balance, self.price = balance, price
        self.rate_limit = rate_limit
        self.messages: dict[str, dict[str, Any]] = {}
        self._hits: list[float] = []
        self._state = threading.Lock()
        super().__init__()

    def plugin_settings(self, **overrides: Any) -> dict[str, Any]:
        return {"endpoint": f"{self.base_url}/v3", "token": self.token, "sender": "Praxis", "timeout_seconds": 0.5,
                **overrides}

    def set_status(self, message_id: str, status: str, error: str | None = None) -> None:
        with self._state:
            self.messages[message_id].update(status=status, error=error)

    def build_app(self) -> FastAPI:
        app = FastAPI(title="Fake Imobis API v3")

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Any:
            if request.headers.get("authorization") != f"Token {self.token}":
                return JSONResponse({"result": "error", "desc": "Invalid token"}, 401)
            if self.rate_limit is not None:
                with self._state:
                    now = time.monotonic()
                    self._hits = [t for t in self._hits if now - t < 1.0]
                    if len(self._hits) >= self.rate_limit:
                        return JSONResponse({"result": "error", "desc": "Too many requests"}, 429,
                                            headers={"Retry-After": "1"})
                    self._hits.append(now)
            return await call_next(request)

        @app.post("/v3/message/sendSMS")
        async def send(request: Request) -> JSONResponse:
            p = await request.json()
            with self._state:
                if not isinstance(p, dict) or not str(p.get("text") or "").strip():
                    return JSONResponse({"result": "error", "desc": "The text of the message is empty"}, 400)
                if p.get("sender") not in self.senders:
                    return JSONResponse({"result": "error", "desc": "Invalid sender"}, 400)
                if not PHONE.match(str(p.get("phone") or "")):
                    return JSONResponse({"result": "error", "desc": f"Invalid phone number {p.get('phone')}"}, 400)
                if self.balance < self.price:
                    return JSONResponse({"result": "error", "desc": "Low balance"}, 400)
                self.balance -= self.price
                message_id = str(uuid.uuid4())
                self.messages[message_id] = {"id": message_id, "custom_id": p.get("custom_id"), "phone": p["phone"],
                                             "text": p["text"], "sender": p["sender"], "ttl": p.get("ttl"),
                                             "daydelivery": p.get("daydelivery"), "status": "accepted", "error": None}
                self.record_effect(message_id)
                return JSONResponse({"result": "success", "id": message_id, "status": "accepted",
                                     "price": self.price, "parts": 1})

        @app.post("/v3/message/status")
        async def status(request: Request) -> JSONResponse:
            p = await request.json()
            with self._state:
                rows = [{k: m[k] for k in ("id", "custom_id", "status", "error")} for m in self.messages.values()
                        if m["custom_id"] == p.get("custom_id") or m["id"] == p.get("id")]
            return JSONResponse({"result": "success", "data": rows})

        @app.post("/v3/balance")
        def balance() -> JSONResponse:
            return JSONResponse({"result": "success", "balance": round(self.balance, 2), "currency": "RUB"})

        return app
