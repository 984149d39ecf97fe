"""Specimen labels: ZPL for a label printer reached over raw TCP (usually port 9100), or a PDF to print by hand
when the lab has no printer set.

The label carries a Code 128 barcode of the accession number (with its human-readable line), the patient's name
and birth date, and the test codes. Field data is UTF-8 (``^CI28``) and written with ``^FH`` so that ``^`` and
``~`` in a name cannot end the field or start a command. The PDF draws the same Code 128 symbol as vector bars
(python-barcode computes the modules; fpdf2 draws them), with a Unicode font so Hangul, Cyrillic and Chinese names
print.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from core import audit
from core.clock import now
from core.db import transaction
from core.labs.errors import NotFound, PrinterUnavailable
from core.models.labs import LabOrder, LabOrderLine, LabProvider, Specimen
from core.models.patient import Patient

if TYPE_CHECKING:
    from core.plugins.runtime import PluginRuntime

PRINTER_TIMEOUT = 5.0
#: Label 2 x 1 inch at 203 dpi.
LABEL_WIDTH_MM, LABEL_HEIGHT_MM = 50.8, 25.4
FONT_CANDIDATES = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 0),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", None),
)


@dataclass(frozen=True)
class LabelData:
    accession_number: str
    barcode_value: str
    patient_name: str
    birth_date: date | None
    tests: tuple[str, ...]
    specimen_type: str
    collected_at: datetime | None


def _escape(text: str) -> str:
    """Field data for ``^FH\\``: the characters that would end the field or start a command become hex."""
    return text.replace("\\", "\\5C").replace("^", "\\5E").replace("~", "\\7E")


def zpl(label: LabelData) -> str:
    birth = label.birth_date.isoformat() if label.birth_date else ""
    collected = label.collected_at.strftime("%Y-%m-%d %H:%M") if label.collected_at else ""
    tests = " ".join(label.tests)
    if len(tests) > 40:
        tests = tests[:39] + "…"
    lines = [
        "^XA",
        "^CI28",
        f"^FO30,20^A0N,28,28^FH\\^FD{_escape(label.patient_name[:32])}  {birth}^FS",
        f"^FO30,55^BY2,3,70^BCN,70,Y,N,N^FH\\^FD{_escape(label.barcode_value)}^FS",
        f"^FO30,160^A0N,22,22^FH\\^FD{_escape(label.specimen_type)}  {collected}^FS",
        f"^FO30,185^A0N,22,22^FH\\^FD{_escape(tests)}^FS",
        "^XZ",
    ]
    return "\n".join(lines) + "\n"


def send_to_printer(host: str, port: int, data: str, timeout: float = PRINTER_TIMEOUT) -> None:
    """Write the label to a raw-TCP label printer; raise ``PrinterUnavailable`` naming the address."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(data.encode("utf-8"))
            conn.shutdown(socket.SHUT_WR)
    except OSError as exc:
        raise PrinterUnavailable(f"the label printer at {host}:{port} did not take the label: {exc}",
                                 host=host, port=port) from exc


def pdf(label: LabelData) -> bytes:
    """The label as a one-page PDF of the label's size."""
    from barcode import Code128
    from fpdf import FPDF

    doc = FPDF(orientation="L", unit="mm", format=(LABEL_HEIGHT_MM, LABEL_WIDTH_MM))
    doc.set_margin(0)
    doc.set_auto_page_break(False)
    doc.add_page()
    family = "Helvetica"
    for path, number in FONT_CANDIDATES:
        if Path(path).exists():
            kwargs: dict[str, Any] = {"collection_font_number": number} if number is not None else {}
            doc.add_font("label", fname=path, **kwargs)
            family = "label"
            break
    doc.set_font(family, size=7)

    def text(y: float, value: str) -> None:
        if family == "Helvetica":  # core fonts are Latin-1 only
            value = value.encode("latin-1", "replace").decode("latin-1")
        doc.set_xy(2, y)
        doc.cell(LABEL_WIDTH_MM - 4, 3, value)

    birth = label.birth_date.isoformat() if label.birth_date else ""
    text(1.5, f"{label.patient_name[:40]}  {birth}")
    modules = Code128(label.barcode_value).build()[0]
    module = (LABEL_WIDTH_MM - 6) / max(len(modules), 1)
    x0, y0, height = 3.0, 5.5, 9.0
    run_start = None
    for i, bit in enumerate(modules + "0"):
        if bit == "1" and run_start is None:
            run_start = i
        elif bit != "1" and run_start is not None:
            doc.rect(x0 + run_start * module, y0, (i - run_start) * module, height, style="F")
            run_start = None
    text(15.0, label.barcode_value)
    collected = label.collected_at.strftime("%Y-%m-%d %H:%M") if label.collected_at else ""
    text(18.3, f"{label.specimen_type}  {collected}")
    text(21.5, " ".join(label.tests)[:60])
    return bytes(doc.output())


def label_for(engine: Engine, clinic_id: int, specimen_id: int) -> tuple[LabelData, LabProvider, Specimen]:
    with transaction(engine) as session:
        specimen = session.get(Specimen, specimen_id)
        if specimen is None or specimen.clinic_id != clinic_id:
            raise NotFound(f"specimen {specimen_id} not found in this clinic")
        order = session.get(LabOrder, specimen.order_id)
        assert order is not None
        provider = session.get(LabProvider, order.provider_id)
        patient = session.get(Patient, order.patient_id)
        assert provider is not None and patient is not None
        tests = tuple(session.exec(select(LabOrderLine.test_code).where(LabOrderLine.order_id == order.id)).all())
        name = " ".join(p for p in (patient.family_name, patient.given_name) if p)
        return (LabelData(specimen.accession_number, specimen.barcode_value, name, patient.birth_date, tests,
                          specimen.specimen_type, specimen.collected_at), provider, specimen)


def printer_of(runtime: PluginRuntime, clinic_id: int, provider: LabProvider) -> tuple[str, int] | None:
    """The lab's printer; else the one in its connector plugin's settings (``printer_host``/``printer_port``)."""
    if provider.printer_host and provider.printer_port:
        return provider.printer_host, provider.printer_port
    if provider.connector_plugin and runtime.is_enabled(clinic_id, provider.connector_plugin):
        settings = runtime.context(provider.connector_plugin, clinic_id).settings
        host, port = getattr(settings, "printer_host", None), getattr(settings, "printer_port", None)
        if host and port:
            return str(host), int(port)
    return None


def print_label(engine: Engine, runtime: PluginRuntime, clinic_id: int, specimen_id: int,
                actor: audit.Actor) -> dict[str, Any]:
    """Send the label to the lab's printer, or return a PDF when none is set.
    Returns ``{"printed": True, "printer": "host:port"}`` or ``{"printed": False, "pdf": bytes}``."""
    label, provider, specimen = label_for(engine, clinic_id, specimen_id)
    printer = printer_of(runtime, clinic_id, provider)
    if printer is None:
        return {"printed": False, "pdf": pdf(label)}
    send_to_printer(printer[0], printer[1], zpl(label))
    with transaction(engine) as session:
        row = session.get(Specimen, specimen.id)
        assert row is not None
        row.label_printed_at = now()
        session.add(row)
        audit.record(session, actor, "labs.label_printed", clinic_id=clinic_id, target=f"lab_specimen:{specimen.id}",
                     data={"printer": f"{printer[0]}:{printer[1]}", "accession_number": specimen.accession_number})
    return {"printed": True, "printer": f"{printer[0]}:{printer[1]}"}


def collect_specimen(engine: Engine, clinic_id: int, specimen_id: int, collected_at: datetime,
                     actor: audit.Actor) -> Specimen:
    from core.labs.errors import invalid

    if collected_at.tzinfo is None:
        raise invalid("collected_at", "give a time with its UTC offset")
    with transaction(engine) as session:
        specimen = session.get(Specimen, specimen_id)
        if specimen is None or specimen.clinic_id != clinic_id:
            raise NotFound(f"specimen {specimen_id} not found in this clinic")
        specimen.collected_at = collected_at.astimezone(UTC)
        session.add(specimen)
        audit.record(session, actor, "labs.specimen_collected", clinic_id=clinic_id,
                     target=f"lab_specimen:{specimen_id}", data={"collected_at": collected_at.isoformat()})
        return specimen
