"""HL7 v2.5 messages: ORM^O01 orders, ACK/ORR answers, ORU^R01 results, and the QRY^R02/ORF^R04 result query.

Parsing uses python-hl7 (``hl7.parse``), which does not check the message grammar; ``parse_results`` walks the
segments itself and refuses a message whose segments are out of order (an OBX before its OBR, a PV1 after an OBR)
or that lacks what the clinic needs (OBR, the placer or filler order number, OBX-3, a usable OBX-11).

Choices the standard leaves to the sites (modelled as the common practice; recheck with each lab):

* one ``ORC``/``OBR`` pair per ordered test, all with the order's placer number in ORC-2/OBR-2 and ORC-4 (placer
  group), the specimen's accession number in OBR-18 and its type in OBR-15;
* MSH-10 is derived from the outbox idempotency key: SHA-256 folded to 20 base-62 characters (v2.5 allows 20),
  so a resend carries the same control id and the lab can drop it as a duplicate;
* times without a UTC offset are read in the clinic's time zone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import hl7

from plugin_sdk.providers import LabOrder, LabResult

VERSION = "2.5"
ENCODING = "UNICODE UTF-8"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SEX = {"female": "F", "male": "M", "other": "O", "unknown": "U"}
RESULT_STATUS = {"P": "preliminary", "F": "final", "C": "corrected"}
#: HL7 table 0357 codes that mean "not now" rather than "never" (record locked, internal error).
TRANSIENT_ERRORS = {"206", "207"}
#: Segments an ORU^R01 may carry besides the ones checked explicitly (ignored).
IGNORED = {"PD1", "NK1", "PV2", "TQ1", "TQ2", "CTD", "FT1", "CTI", "SPM", "SFT", "DSC", "QAK", "QPD"}


class Hl7Reject(Exception):
    """A message the clinic will not take: answered with ``ack`` (AE or AR), an HL7 table 0357 ``error_code``
    and a readable reason; ``location`` is the segment and field at fault (ERR-2), if known."""

    def __init__(self, ack: str, error_code: str, reason: str, location: str = "") -> None:
        super().__init__(reason)
        self.ack = ack
        self.error_code = error_code
        self.reason = reason
        self.location = location


# --- small helpers ---------------------------------------------------------------------------------------------


def control_id(key: str) -> str:
    """A message control id of at most 20 characters derived from an idempotency key (119 bits of SHA-256)."""
    number = int.from_bytes(hashlib.sha256(key.encode()).digest(), "big") >> (256 - 119)
    out = ""
    while number:
        number, digit = divmod(number, 62)
        out = BASE62[digit] + out
    return out.rjust(20, "0")[-20:]


def ts(value: datetime) -> str:
    """An HL7 DTM in UTC with its offset, e.g. 20250314093000+0000."""
    return value.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def parse_ts(value: str, zone: ZoneInfo) -> datetime | None:
    """An HL7 DTM as aware UTC; without an offset it is read in ``zone``. Empty or unreadable: None."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = hl7.parse_datetime(value)
    except (ValueError, TypeError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def escape(text: Any) -> str:
    """Field content with the HL7 delimiters escaped (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\), line breaks as spaces."""
    value = "" if text is None else str(text)
    value = value.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
    return value.replace("~", "\\R\\").replace("\r", " ").replace("\n", " ")


def _join(fields: list[str]) -> str:
    while fields and fields[-1] == "":
        fields.pop()
    return "|".join(fields)


def _raw(segment: Any, index: int) -> str:
    """Field ``index`` (1-based, HL7 numbering, MSH counted as HL7 does) as it was written, '' when absent."""
    if segment is None:
        return ""
    try:
        return str(segment(index))
    except (IndexError, KeyError):
        return ""


def _get(segment: Any, index: int, component: int = 1, repetition: int = 0) -> str:
    """One component of one repetition of a field, still escaped; '' when absent."""
    reps = _raw(segment, index).split("~")
    if repetition >= len(reps):
        return ""
    parts = reps[repetition].split("^")
    return parts[component - 1].split("&")[0] if len(parts) >= component else ""


def _repetitions(segment: Any, index: int) -> list[str]:
    return [r for r in _raw(segment, index).split("~") if r]


def msh_header(sending: tuple[str, str], receiving: tuple[str, str], message_type: str, control: str, at: datetime,
               processing_id: str = "P") -> str:
    return _join(["MSH", "^~\\&", sending[0], sending[1], receiving[0], receiving[1], ts(at), "", message_type,
                  control, processing_id, VERSION, "", "", "", "", "", ENCODING])


# --- orders ------------------------------------------------------------------------------------------------------


def _hl7_date(value: Any) -> str:
    if not value:
        return ""
    try:
        return date.fromisoformat(str(value)).strftime("%Y%m%d")
    except ValueError:
        return ""


def build_order(order: LabOrder, *, sending: tuple[str, str], receiving: tuple[str, str], control: str,
                at: datetime, processing_id: str = "P") -> str:
    """ORM^O01 for a new order (ORC-1 NW) or a cancel (ORC-1 CA)."""
    patient = order.patient
    doctor = order.ordering_provider or {}
    doctor_xcn = f"{escape(doctor.get('id', ''))}^{escape(doctor.get('name', ''))}" if doctor else ""
    chart = patient.get("chart_number") or patient.get("id") or ""
    segments = [
        msh_header(sending, receiving, "ORM^O01^ORM_O01", control, at, processing_id),
        _join(["PID", "1", "", f"{escape(chart)}^^^{escape(sending[1])}^MR", "",
               f"{escape(patient.get('family_name', ''))}^{escape(patient.get('given_name', ''))}", "",
               _hl7_date(patient.get("birth_date")), SEX.get(str(patient.get("sex") or "unknown"), "U")]),
        _join(["PV1", "1", "O", "", "", "", "", doctor_xcn, "", "", "", "", "", "", "", "", "", "", "",
               escape(order.visit_number or "")]),
    ]
    control_code = "NW" if order.action == "new" else "CA"
    specimen = order.specimens[0] if order.specimens else {}
    collected = specimen.get("collected_at")
    collected_ts = ts(datetime.fromisoformat(collected)) if collected else ""
    placer = f"{escape(order.placer_order_number)}^{escape(sending[0])}"
    for i, test in enumerate(order.tests, start=1):
        segments.append(_join(["ORC", control_code, placer, "", placer, "", "", f"^^^{ts(order.ordered_at)}^^R", "",
                               ts(order.ordered_at), "", "", doctor_xcn]))
        segments.append(_join([
            "OBR", str(i), placer, "",
            f"{escape(test['code'])}^{escape(test.get('name', ''))}^{escape(test.get('coding_system', 'LN'))}",
            "", "", collected_ts, "", "", "", "", "", "", "",
            escape(specimen.get("type", "SER")) if specimen else "", doctor_xcn, "",
            escape(specimen.get("accession_number", "")) if specimen else ""]))  # OBR-15, -16, -18
    return "\r".join(segments) + "\r"


@dataclass(frozen=True)
class Answer:
    """The lab's answer to an order or a query: MSA-1 code, MSA-2 control id, and what explains it."""

    code: str
    control_id: str
    text: str
    error_code: str
    filler_order_number: str | None
    message_type: str
    raw: str


def parse_answer(raw: str) -> Answer:
    """An ACK, ORR^O02 or ORF^R04's MSA (and ERR, ORC-3). Raises ValueError if it is no HL7 answer."""
    try:
        message = hl7.parse(raw.replace("\n", "\r"))
        msh = message.segment("MSH")
        msa = message.segment("MSA")
    except (KeyError, IndexError, hl7.ParseException) as exc:
        raise ValueError(f"not an HL7 answer: {str(exc)[:200]}") from exc
    error_code, error_text = "", ""
    try:
        err = message.segment("ERR")
        error_code, error_text = _get(err, 3, 1), _get(err, 3, 2) or _get(err, 8)
    except KeyError:
        pass
    filler = None
    try:
        filler = _get(message.segment("ORC"), 3) or None
    except KeyError:
        pass
    text = message.unescape(_get(msa, 3)) or message.unescape(error_text)
    return Answer(code=_get(msa, 1).upper(), control_id=_get(msa, 2), text=text, error_code=error_code,
                  filler_order_number=message.unescape(filler) if filler else None,
                  message_type=str(msh(9)), raw=raw)


def build_ack(incoming: Any, code: str, *, sending: tuple[str, str], control: str, at: datetime,
              reject: Hl7Reject | None = None, text: str = "") -> str:
    """An original-mode ACK to ``incoming`` (an ``hl7.Message`` or None when unreadable): MSA-1 ``code``, the
    incoming MSH-10 in MSA-2, and an ERR segment saying why for AE/AR."""
    their_control, their_app, their_fac, trigger = "", "", "", ""
    if incoming is not None:
        try:
            msh = incoming.segment("MSH")
            their_control, their_app, their_fac = _get(msh, 10), _get(msh, 3), _get(msh, 4)
            trigger = _get(msh, 9, 2)
        except KeyError:
            pass
    kind = f"ACK^{trigger}^ACK" if trigger else "ACK"
    segments = [msh_header(sending, (their_app, their_fac), kind, control, at),
                _join(["MSA", code, their_control, escape(reject.reason if reject else text)])]
    if reject is not None:
        name = escape(_ERROR_NAMES.get(reject.error_code, "Error"))
        segments.append(_join(["ERR", "", reject.location, f"{reject.error_code}^{name}^HL70357", "E", "", "", "",
                               escape(reject.reason)]))
    return "\r".join(segments) + "\r"


_ERROR_NAMES = {"0": "Message accepted", "100": "Segment sequence error", "101": "Required field missing",
                "102": "Data type error", "103": "Table value not found", "200": "Unsupported message type",
                "201": "Unsupported event code", "202": "Unsupported processing id", "203": "Unsupported version id",
                "204": "Unknown key identifier", "205": "Duplicate key identifier", "206": "Application record locked",
                "207": "Application internal error"}


# --- the result query -----------------------------------------------------------------------------------------------


def build_query(*, sending: tuple[str, str], receiving: tuple[str, str], control: str, at: datetime,
                processing_id: str = "P", limit: int = 100) -> str:
    """QRY^R02: "results for this facility not delivered yet" (original-mode query, kept in v2.5)."""
    return "\r".join([
        msh_header(sending, receiving, "QRY^R02^QRY_R02", control, at, processing_id),
        _join(["QRD", ts(at), "R", "I", control, "", "", f"{limit}^RD", escape(sending[1]), "RES"]),
        _join(["QRF", escape(receiving[1]), "", ts(at)]),
    ]) + "\r"


# --- results ---------------------------------------------------------------------------------------------------------


@dataclass
class ResultGroup:
    """One ORC/OBR group: the order it answers and its observations (``LabResult`` fields without the receipt)."""

    placer_order_number: str
    filler_order_number: str | None
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ParsedResults:
    control_id: str
    message_type: str
    sending: tuple[str, str]
    receiving: tuple[str, str]
    groups: list[ResultGroup]
    message: Any


def parse_results(raw: str, zone: ZoneInfo, *, expect: tuple[str, ...] = ("ORU^R01",)) -> ParsedResults:
    """Parse and check an ORU^R01 (or an ORF^R04 query answer). Raises ``Hl7Reject`` saying what is wrong."""
    text = raw.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    if not text.startswith("MSH"):
        raise Hl7Reject("AR", "100", "the message does not start with an MSH segment", "MSH")
    try:
        message = hl7.parse(text)
        msh = message.segment("MSH")
    except (hl7.ParseException, KeyError, IndexError, ValueError) as exc:
        raise Hl7Reject("AR", "102", f"the message cannot be parsed: {str(exc)[:200]}", "MSH") from exc
    control = _get(msh, 10)
    if not control:
        raise Hl7Reject("AR", "101", "MSH-10 (message control id) is missing", "MSH^10")
    kind = f"{_get(msh, 9, 1)}^{_get(msh, 9, 2)}"
    if kind not in expect:
        raise Hl7Reject("AR", "200", f"this listener takes {', '.join(expect)}, not {kind}", "MSH^9")
    version = _get(msh, 12)
    if not version.startswith("2."):
        raise Hl7Reject("AR", "203", f"unsupported HL7 version {version!r}; 2.x is expected", "MSH^12")
    groups: list[ResultGroup] = []
    patient_open = False  # inside a PID group, before its first ORC/OBR
    pending_orc: Any = None
    current: ResultGroup | None = None
    current_obr: Any = None
    last: dict[str, Any] | None = None  # the last OBX, for its NTEs
    segments = list(message)[1:]
    if kind == "ORF^R04":
        while segments and str(segments[0][0]) in {"MSA", "ERR", "QRD", "QRF", "QAK"}:
            segments.pop(0)
    for position, segment in enumerate(segments, start=2):
        name = str(segment[0])
        where = f"{name} (segment {position})"
        if name == "PID":
            patient_open, pending_orc, current, current_obr, last = True, None, None, None, None
        elif name in ("PV1",):
            if not patient_open:
                raise Hl7Reject("AE", "100", f"{where} must follow its PID, before the order segments", name)
        elif name == "ORC":
            patient_open, pending_orc, current_obr, last = False, segment, None, None
        elif name == "OBR":
            patient_open, last = False, None
            placer = message.unescape((_get(pending_orc, 2) if pending_orc is not None else "") or _get(segment, 2))
            filler = message.unescape((_get(pending_orc, 3) if pending_orc is not None else "") or _get(segment, 3))
            if not placer and not filler:
                raise Hl7Reject("AE", "101", f"{where}: neither a placer (ORC-2/OBR-2) nor a filler order number "
                                             f"(ORC-3/OBR-3)", "OBR^2")
            current = ResultGroup(placer, filler or None)
            current_obr = segment
            groups.append(current)
            pending_orc = None
        elif name == "OBX":
            if current is None or current_obr is None:
                raise Hl7Reject("AE", "100", f"{where} comes before any OBR: observations belong to an OBR", "OBX")
            last = _observation(message, segment, current_obr, zone, where)
            current.results.append(last)
        elif name == "NTE":
            if last is not None:
                note = message.unescape(_get(segment, 3))
                last["notes"] = f"{last['notes']}\n{note}" if last.get("notes") else note
        elif name in IGNORED or name.startswith("Z"):
            continue
        else:
            raise Hl7Reject("AE", "100", f"{where}: unexpected segment in {kind}", name)
        if pending_orc is not None and name not in ("ORC", "NTE", "TQ1", "TQ2", "CTD"):
            raise Hl7Reject("AE", "100", f"{where}: an ORC must be followed by its OBR", "ORC")
    if pending_orc is not None:
        raise Hl7Reject("AE", "100", "the last ORC has no OBR", "ORC")
    if not groups and kind == "ORU^R01":
        raise Hl7Reject("AE", "101", "the message has no OBR segment, so no result can be placed", "OBR")
    return ParsedResults(control, kind, (_get(msh, 3), _get(msh, 4)), (_get(msh, 5), _get(msh, 6)), groups, message)


def _observation(message: Any, obx: Any, obr: Any, zone: ZoneInfo, where: str) -> dict[str, Any]:
    code = message.unescape(_get(obx, 3, 1))
    if not code:
        raise Hl7Reject("AE", "101", f"{where}: OBX-3 (what was observed) is missing", "OBX^3")
    flag = _get(obx, 11) or _get(obr, 25)
    status = RESULT_STATUS.get(flag.upper())
    if status is None:
        raise Hl7Reject("AE", "103", f"{where}: result status {flag!r} (OBX-11) is not P, F or C", "OBX^11")
    value_type = _get(obx, 2).upper() or None
    values = []
    for rep in _repetitions(obx, 5):
        parts = rep.split("^")
        coded = value_type in ("CE", "CWE") and len(parts) > 1 and parts[1]
        values.append(message.unescape(parts[1] if coded else rep if value_type in ("ST", "TX", "FT") else parts[0]))
    if value_type == "NM" and values and not _is_number(values[0]):
        raise Hl7Reject("AE", "102", f"{where}: OBX-5 {values[0]!r} is not a number though OBX-2 says NM", "OBX^5")
    flags = [f for f in _repetitions(obx, 8) if f]
    observed = parse_ts(_get(obx, 14), zone) or parse_ts(_get(obr, 7), zone)
    return {"test_code": code, "test_name": message.unescape(_get(obx, 3, 2)) or None,
            "value": "\n".join(values), "value_type": value_type,
            "units": message.unescape(_get(obx, 6, 1)) or None,
            "reference_range": message.unescape(_get(obx, 7)) or None,
            "abnormal_flag": "~".join(flags) or None, "status": status,
            "observed_at": observed.isoformat() if observed else None, "notes": None}


def _is_number(text: str) -> bool:
    try:
        float(text.lstrip("<>=").strip())
    except ValueError:
        return False
    return True


def to_lab_results(placer: str, filler: str | None, items: list[dict[str, Any]], receipt: str) -> list[LabResult]:
    return [LabResult(placer_order_number=placer, filler_order_number=filler, test_code=i["test_code"],
                      value=i["value"], units=i.get("units"), reference_range=i.get("reference_range"),
                      abnormal_flag=i.get("abnormal_flag"), status=i["status"],
                      observed_at=datetime.fromisoformat(i["observed_at"]) if i.get("observed_at") else None,
                      test_name=i.get("test_name"), receipt=receipt, value_type=i.get("value_type"),
                      notes=i.get("notes")) for i in items]
