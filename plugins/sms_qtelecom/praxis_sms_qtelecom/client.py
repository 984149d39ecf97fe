"""The QuickTelecom HTTP protocol: a form POST (UTF-8) per call, an XML answer.

Confirmed (quicktel.ru/protokol-http): the address, ``user``/``pass`` on every request, ``gzip=none`` for a plain
answer, ``action=post_sms``, a 480-character limit. The parameter names beyond ``action`` and the answer shapes
were cut from the stored page; they are taken from client libraries of the same platform (QTSMS and the
Beeline A2P clone of it) and are an assumption:

``action=post_sms, message, target, sender`` ->
    ``<output><result sms_group_id="996"><sms id="99991" smstype="SENDSMS" phone="+79..."/></result></output>``
``action=status, date_from, date_to (dd.mm.yyyy hh:mm:ss, Moscow time), smstype=SENDSMS`` (or ``sms_id``) ->
    ``<output><MESSAGES><MESSAGE SMS_ID=".."><SMS_TARGET/><SMS_TEXT/><SMSSTC_CODE/><SMS_STATUS/><SMS_CLOSED/>
    <SMS_SENT/></MESSAGE></MESSAGES></output>``; ``SMS_CLOSED`` 1 = final, ``SMS_SENT`` 1 = delivered.
``action=balance`` -> ``<output><balance><AGT_BALANCE/><OVERDRAFT/></balance></output>``.
Refusals are ``<errors><error>text</error></errors>`` without a documented code, so they are classified by
their wording (``classify``) and the vendor's text is kept as the reason.

QuickTelecom has no idempotency key and no client reference in the status answer: a message whose answer was
lost is looked up by recipient and exact text among the last days' messages.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from plugin_sdk import http
from plugin_sdk.errors import PermanentError, RetryableError

VENDOR = "QuickTelecom"
USER_AGENT = "praxis-sms-qtelecom/1.0"
MAX_TEXT = 480
#: (words in the vendor's refusal, our code, retryable?) — first match wins.
CLASSES: list[tuple[tuple[str, ...], str, bool]] = [
    (("номер", "phone", "target"), "invalid_recipient", False),
    (("логин", "парол", "login", "password", "авториз"), "unauthorized", False),
    (("баланс", "средств", "balance"), "insufficient_funds", False),
    (("отправител", "sender"), "invalid_sender", False),
    (("длин", "length"), "too_long", False),
    (("перегруз", "повторите", "later", "временно"), "temporarily_unavailable", True),
]


def classify(text: str) -> tuple[str, bool]:
    lowered = text.lower()
    for words, code, retryable in CLASSES:
        if any(word in lowered for word in words):
            return code, retryable
    return "rejected", False


def refuse(text: str) -> None:
    code, retryable = classify(text)
    if retryable:
        raise RetryableError(f"QuickTelecom: {text}", code=code)
    raise PermanentError(f"QuickTelecom refused the message: {text}", code=code)


@dataclass(frozen=True)
class Message:
    id: str
    target: str
    text: str
    state: str | None
    description: str | None
    closed: bool
    sent: bool


class QtelecomClient:
    def __init__(self, endpoint: str, user: str, password: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._auth = {"user": user, "pass": password, "gzip": "none"}
        self._url = endpoint
        self._http = httpx.Client(timeout=http.timeout(timeout), transport=transport,
                                  headers={"User-Agent": USER_AGENT})

    def __enter__(self) -> QtelecomClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def post_sms(self, *, target: str, message: str, sender: str | None) -> str:
        form = {"action": "post_sms", "message": message, "target": target}
        if sender:
            form["sender"] = sender
        root = self._call(form, sends=True)
        sms = root.find("./result/sms")
        if sms is None or not sms.get("id"):
            raise RetryableError("QuickTelecom answered post_sms without an sms id", code="bad_response")
        return str(sms.get("id"))

    def messages(self, *, date_from: datetime, date_to: datetime) -> list[Message]:
        root = self._call({"action": "status", "date_from": date_from.strftime("%d.%m.%Y %H:%M:%S"),
                           "date_to": date_to.strftime("%d.%m.%Y %H:%M:%S"), "smstype": "SENDSMS"}, sends=False)
        return [_message(node) for node in root.iterfind("./MESSAGES/MESSAGE")]

    def balance(self) -> dict[str, Any]:
        root = self._call({"action": "balance"}, sends=False)
        node = root.find("./balance")
        if node is None:
            raise RetryableError("QuickTelecom answered the balance request without a balance", code="bad_response")
        return {"balance": node.findtext("AGT_BALANCE"), "overdraft": node.findtext("OVERDRAFT")}

    def _call(self, form: dict[str, str], *, sends: bool) -> ET.Element:
        response = http.request(self._http, VENDOR, "POST", self._url, sends=sends, data={**self._auth, **form})
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise RetryableError(f"QuickTelecom answered HTTP {response.status_code} without XML",
                                 code="bad_response") from exc
        errors = [e.text or "" for e in root.iterfind("./errors/error")]
        if errors and root.find("./result/sms") is None:
            refuse("; ".join(errors))
        if response.status_code >= 400:
            raise PermanentError(f"QuickTelecom refused the request with HTTP {response.status_code}",
                                 code=f"http_{response.status_code}")
        return root


def _message(node: ET.Element) -> Message:
    return Message(id=str(node.get("SMS_ID") or ""), target=(node.findtext("SMS_TARGET") or "").strip(),
                   text=(node.findtext("SMS_TEXT") or "").strip(), state=node.findtext("SMSSTC_CODE"),
                   description=node.findtext("SMS_STATUS"), closed=(node.findtext("SMS_CLOSED") or "0") == "1",
                   sent=(node.findtext("SMS_SENT") or "0") == "1")
