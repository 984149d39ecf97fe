"""A fake laboratory information system (LIS) for tests: a real MLLP server on 127.0.0.1 with the fault controls of
``plugin_sdk.testing.FakeServer``.

What it does, as a LIS would (integrations.md 5.1):

* ORM^O01 ``NW``: checks MSH-5/6 (AR 103 when addressed elsewhere), the test codes (AE 103 for codes it does not
  run; LOINC-shaped codes by default), stores the order once per MSH-10 (a resend gets the same answer) and answers
  ORR^O02 with its filler order number in ORC-3. A second order with a used placer number is AE 205.
* ORM^O01 ``CA``: cancels a known order (ORR^O02 with ORC-1 CR), AE 204 for an unknown one.
* ``report(...)``: the lab's results for an order as an ORU^R01, pushed to the clinic's listener (``push_to``);
  when the listener cannot be reached they wait for the clinic's QRY^R02, answered with an ORF^R04.
* ``push(raw)``: sends any message (e.g. a malformed one) to the listener and returns its parsed answer.

Faults (``fail_next``, ``rate_limit_next``, ``hang_next``) apply to the next message received: a 5xx is answered
AR with ERR 207 (internal error), a 429 AR with 206 (record locked), another 4xx AE 207; a hang withholds the answer
(with ``after=True`` the order is stored first). Every order stored is one entry in ``effects``.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

import hl7

from plugin_sdk.testing import FakeServer, RecordedRequest
from praxis_lab_hl7.messages import Answer, Hl7Reject, build_ack, escape, msh_header, parse_answer, ts
from praxis_lab_hl7.mllp import MllpError, MllpServer, exchange

LOINC = re.compile(r"^\d{1,7}-\d$")
STATUS = {"preliminary": "P", "final": "F", "corrected": "C"}


async def _not_http(scope: Any, receive: Any, send: Any) -> None:  # FakeServer wants an app; MLLP needs none
    raise RuntimeError("FakeLis speaks MLLP, not HTTP")


def _field(segment: Any, index: int, component: int = 1) -> str:
    try:
        value = segment(index)
    except (IndexError, KeyError):
        return ""
    if isinstance(value, str):
        return value if component == 1 else ""
    text = str(value).split("~")[0].split("^")
    return text[component - 1] if len(text) >= component else ""


class FakeLis(FakeServer):
    def __init__(self, *, application: str = "LIS", facility: str = "LAB", known_tests: set[str] | None = None,
                 push_to: tuple[str, int] | None = None) -> None:
        super().__init__(app=_not_http)
        self.application, self.facility = application, facility
        self.known_tests = known_tests
        self.push_to = push_to
        self.orders: dict[str, dict[str, Any]] = {}  # by placer order number
        self.answers: dict[str, str] = {}  # answer per MSH-10 already handled
        self.received: list[str] = []
        self.pending: list[str] = []  # ORU messages the listener did not take yet
        self.acks: list[Answer] = []  # the listener's answers to what was pushed
        self._server: MllpServer | None = None  # type: ignore[assignment]
        self._state = threading.RLock()
        self._seq = 0

    # --- settings for the plugin ---------------------------------------------------------------------------

    def plugin_settings(self, **overrides: Any) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "receiving_application": self.application,
                "receiving_facility": self.facility, "timeout_seconds": 0.5, **overrides}

    # --- running -------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"mllp://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeLis:
        if self._server is not None:
            return self
        if self._port is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self._port = probe.getsockname()[1]
        self._server = MllpServer("127.0.0.1", self._port, self._handle).start()
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        super().reset()
        with self._state:
            self.orders.clear()
            self.answers.clear()
            self.received.clear()
            self.pending.clear()
            self.acks.clear()

    # --- the lab's side --------------------------------------------------------------------------------------

    def _next(self, prefix: str) -> str:
        with self._state:
            self._seq += 1
            return f"{prefix}{self._seq:06d}"

    def _wait(self, seconds: float | None) -> None:  # type: ignore[override]
        generation = self._release_generation
        deadline = None if seconds is None else time.monotonic() + seconds
        while self._release_generation == generation and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.01)

    def _handle(self, raw: str) -> str | None:
        try:
            message = hl7.parse(raw.replace("\n", "\r").strip("\r"))
            msh = message.segment("MSH")
            kind = f"{_field(msh, 9, 1)}^{_field(msh, 9, 2)}"
        except Exception:  # noqa: BLE001 - a LIS answers garbage with AR
            return build_ack(None, "AR", sending=(self.application, self.facility), control=self._next("ACK"),
                             at=datetime.now(UTC), reject=Hl7Reject("AR", "100", "unreadable message"))
        fault = self._take("MLLP", "/" + kind)
        self._record(RecordedRequest(method="MLLP", path="/" + kind, query="", headers={"msh-10": _field(msh, 10)},
                                     body=raw.encode(), at=datetime.now(UTC), fault=fault.label if fault else None))
        with self._state:
            self.received.append(raw)
        if fault is None:
            return self._process(message, kind)
        if fault.kind == "hang":
            answer = self._process(message, kind) if fault.after else None
            self._wait(fault.seconds)
            return answer
        code, error = ("AR", "206") if fault.status == 429 else ("AR", "207") if fault.status >= 500 else ("AE", "207")
        reject = Hl7Reject(code, error, f"injected fault {fault.status}")
        return build_ack(message, code, sending=(self.application, self.facility), control=self._next("ACK"),
                         at=datetime.now(UTC), reject=reject)

    def _process(self, message: Any, kind: str) -> str:
        ours = (self.application, self.facility)
        msh = message.segment("MSH")
        try:
            if (_field(msh, 5), _field(msh, 6)) != ours:
                raise Hl7Reject("AR", "103", f"this is {ours[0]}/{ours[1]}, not {_field(msh, 5)}/{_field(msh, 6)}",
                                "MSH^5")
            if kind == "ORM^O01":
                return self._order(message)
            if kind == "QRY^R02":
                return self._query(message)
            raise Hl7Reject("AR", "200", f"unsupported message type {kind}", "MSH^9")
        except Hl7Reject as reject:
            return build_ack(message, reject.ack, sending=ours, control=self._next("ACK"), at=datetime.now(UTC),
                             reject=reject)

    def _order(self, message: Any) -> str:
        msh = message.segment("MSH")
        control = _field(msh, 10)
        with self._state:
            if control in self.answers:
                return self.answers[control]
            orcs, obrs = message.segments("ORC"), message.segments("OBR")
            if not orcs or len(orcs) != len(obrs):
                raise Hl7Reject("AE", "100", "every ORC needs its OBR", "ORC")
            action = _field(orcs[0], 1)
            placer = message.unescape(_field(orcs[0], 2))
            tests = [message.unescape(_field(obr, 4)) for obr in obrs]
            if action == "NW":
                unknown = [t for t in tests if (t not in self.known_tests if self.known_tests is not None
                                                else not LOINC.match(t))]
                if unknown:
                    raise Hl7Reject("AE", "103", f"test code {unknown[0]!r} is not run by this lab", "OBR^4")
                if placer in self.orders:
                    raise Hl7Reject("AE", "205", f"placer order number {placer} is already used", "ORC^2")
                pid = message.segment("PID")
                order = {"placer": placer, "filler": self._next("LAB"), "control": control, "tests": tests,
                         "patient": message.unescape(str(pid(5))), "birth_date": _field(pid, 7),
                         "accession": message.unescape(_field(obrs[0], 18)), "specimen_type": _field(obrs[0], 15),
                         "clinic": (_field(msh, 3), _field(msh, 4)), "cancelled": False, "raw": str(message)}
                self.orders[placer] = order
                self.record_effect(placer)
                status = "OK"
            elif action == "CA":
                order = self.orders.get(placer)
                if order is None:
                    raise Hl7Reject("AE", "204", f"unknown order {placer}", "ORC^2")
                order["cancelled"] = True
                status = "CR"
            else:
                raise Hl7Reject("AE", "103", f"order control {action!r} is not supported", "ORC^1")
            answer = "\r".join([
                msh_header((self.application, self.facility), order["clinic"], "ORR^O02^ORR_O02",
                           self._next("ORR"), datetime.now(UTC)),
                f"MSA|AA|{control}",
                f"ORC|{status}|{escape(placer)}^{escape(order['clinic'][0])}|{order['filler']}^{self.application}",
            ]) + "\r"
            self.answers[control] = answer
            return answer

    def _query(self, message: Any) -> str:
        control = _field(message.segment("MSH"), 10)
        clinic = (_field(message.segment("MSH"), 3), _field(message.segment("MSH"), 4))
        with self._state:
            waiting, self.pending = self.pending, []
        if not waiting:
            return build_ack(message, "AA", sending=(self.application, self.facility), control=self._next("ACK"),
                             at=datetime.now(UTC), text="no results waiting")
        body = [segment for raw in waiting for segment in raw.strip("\r").split("\r")[1:]]
        return "\r".join([msh_header((self.application, self.facility), clinic, "ORF^R04^ORF_R04", self._next("ORF"),
                                     datetime.now(UTC)), f"MSA|AA|{control}", *body]) + "\r"

    # --- results ----------------------------------------------------------------------------------------------

    def oru(self, placer: str, results: list[dict[str, Any]], *, control: str | None = None,
            filler: str | None = None) -> str:
        """An ORU^R01 for a stored order. Each result: ``code``, ``value`` and optionally ``name``, ``units``,
        ``range``, ``flag``, ``status`` (preliminary/final/corrected), ``value_type`` (NM by default), ``note``."""
        with self._state:
            order = self.orders[placer]
        at = datetime.now(UTC)
        statuses = {r.get("status", "final") for r in results}
        obr_status = "C" if "corrected" in statuses else "F" if statuses == {"final"} else "P"
        segments = [
            msh_header((self.application, self.facility), order["clinic"], "ORU^R01^ORU_R01",
                       control or self._next("LAB"), at),
            f"PID|1||{escape(placer)}||{order['patient']}||{order['birth_date']}",
            f"ORC|RE|{escape(placer)}^{order['clinic'][0]}|{filler or order['filler']}^{self.application}||CM",
            f"OBR|1|{escape(placer)}^{order['clinic'][0]}|{filler or order['filler']}^{self.application}|"
            f"{order['tests'][0]}|||{ts(at)}|||||||||||||||{ts(at)}|||{obr_status}",
        ]
        for i, result in enumerate(results, start=1):
            segments.append("|".join([
                "OBX", str(i), result.get("value_type", "NM"),
                f"{escape(result['code'])}^{escape(result.get('name', ''))}^LN", "", escape(result["value"]),
                f"{escape(result.get('units', ''))}^^UCUM" if result.get("units") else "",
                escape(result.get("range", "")), result.get("flag", ""), "", "",
                STATUS[result.get("status", "final")], "", "", ts(at)]))
            if result.get("note"):
                segments.append(f"NTE|1||{escape(result['note'])}")
        return "\r".join(segments) + "\r"

    def report(self, placer: str, results: list[dict[str, Any]], **kwargs: Any) -> Answer | None:
        """The lab reports results: pushed to the listener, or kept for the clinic's query if it is unreachable.
        Returns the listener's answer (None when kept)."""
        raw = self.oru(placer, results, **kwargs)
        if self.push_to is not None:
            try:
                return self.push(raw)
            except MllpError:
                pass
        with self._state:
            self.pending.append(raw)
        return None

    def push(self, raw: str, timeout: float = 5.0) -> Answer:
        if self.push_to is None:
            raise MllpError("no listener to push to (push_to is not set)", "no_listener")
        answer = parse_answer(exchange(self.push_to[0], self.push_to[1], raw, timeout))
        with self._state:
            self.acks.append(answer)
        return answer
