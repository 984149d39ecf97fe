"""PDF export of a record version with its signature details, rendered with fpdf2 (pure Python).

Fonts: the PDF must show Hangul, Han, Cyrillic and Hungarian accents. The first of these that exists is used:

1. Noto Sans CJK (Debian ``fonts-noto-cjk``, ``/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc``), with the
   face matching the clinic's language (SC for Chinese, KR for Korean, JP for Japanese, TC/HK for Traditional
   Chinese; KR otherwise), since Han characters are drawn differently per region;
2. DejaVu Sans (Debian ``fonts-dejavu-core``): Latin, Greek and Cyrillic, but no CJK;
3. fpdf2's built-in Helvetica, which knows only Latin-1.

With 2 or 3, characters the font lacks are printed as ``?`` and the PDF says so on its first page, naming the
package to install; the export never fails for want of a font. ``PRAXIS_PDF_FONT`` (a .ttf/.otf/.ttc path)
overrides the search.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF

from core.records.schemas import RecordOut, VerificationOut

NOTO_CJK = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# Faces in NotoSansCJK-Regular.ttc: 0 JP, 1 KR, 2 SC, 3 TC, 4 HK.
CJK_FACES = {"ja": 0, "ko": 1, "zh": 2, "zh_hans": 2, "zh_cn": 2, "zh_hant": 3, "zh_tw": 3, "zh_hk": 4}
FONT = "praxis"


@dataclass(frozen=True)
class FontChoice:
    path: Path | None
    face: int
    covers_cjk: bool
    note: str | None  # printed on the PDF when characters may be missing


def choose_font(locale: str) -> FontChoice:
    override = os.environ.get("PRAXIS_PDF_FONT")
    if override and Path(override).is_file():
        return FontChoice(Path(override), CJK_FACES.get(locale.lower().replace("-", "_"), 1)
                          if override.endswith(".ttc") else 0, True, None)
    if NOTO_CJK.is_file():
        key = locale.lower().replace("-", "_")
        face = CJK_FACES.get(key, CJK_FACES.get(key.split("_")[0], 1))
        return FontChoice(NOTO_CJK, face, True, None)
    if DEJAVU.is_file():
        return FontChoice(DEJAVU, 0, False, "Font note: Noto Sans CJK is not installed (Debian package "
                                            "fonts-noto-cjk); Chinese, Japanese and Korean characters are shown as ?.")
    return FontChoice(None, 0, False, "Font note: no Unicode font is installed (Debian packages fonts-noto-cjk or "
                                      "fonts-dejavu-core); characters outside Latin-1 are shown as ?.")


class _Pdf(FPDF):
    def __init__(self, font: FontChoice, footer_text: str) -> None:
        super().__init__(format="A4")
        self.font_choice = font
        self.footer_text = footer_text
        self.set_auto_page_break(auto=True, margin=18)
        if font.path is not None:
            kwargs: dict[str, Any] = {"collection_font_number": font.face} if font.path.suffix == ".ttc" else {}
            self.add_font(FONT, "", str(font.path), **kwargs)
            self.base_family = FONT
        else:
            self.base_family = "helvetica"

    def safe(self, text: str) -> str:
        if self.font_choice.path is None:
            return text.encode("latin-1", "replace").decode("latin-1")
        if self.font_choice.covers_cjk:
            return text
        font = self.fonts.get(FONT)
        cmap = getattr(font, "cmap", None) if font is not None else None
        if not cmap:
            return text
        return "".join(ch if ord(ch) in cmap or ch in "\n\t" else "?" for ch in text)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.base_family, size=7)
        self.cell(0, 5, self.safe(f"{self.footer_text}  ·  {self.page_no()}/{{nb}}"), align="C")


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return "-"
    return f"{value.astimezone(zone):%Y-%m-%d %H:%M:%S %Z} ({value.astimezone(ZoneInfo('UTC')):%H:%M:%S} UTC)"


def render(record: RecordOut, *, clinic_name: str, timezone: str, locale: str, patient_name: str,
           verification: VerificationOut | None, exported_at: datetime) -> bytes:
    zone = ZoneInfo(timezone)
    font = choose_font(locale)
    pdf = _Pdf(font, f"{clinic_name} · record {record.id} v{record.version}")
    pdf.alias_nb_pages()
    pdf.add_page()
    width = pdf.epw

    def line(text: str, size: float = 10, gap: float = 5.5) -> None:
        pdf.set_font(pdf.base_family, size=size)
        pdf.multi_cell(width, gap, pdf.safe(text), new_x="LMARGIN", new_y="NEXT")

    def heading(text: str) -> None:
        pdf.ln(2)
        line(text, size=12, gap=7)
        pdf.set_draw_color(160, 160, 160)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
        pdf.ln(1.5)

    line(clinic_name, size=15, gap=8)
    line(record.title or record.kind, size=13, gap=7)
    if font.note:
        pdf.set_text_color(150, 0, 0)
        line(font.note, size=8, gap=4)
        pdf.set_text_color(0, 0, 0)
    heading("Record")
    status = record.status + (" (locked)" if record.locked else "")
    for label, value in [
        ("Patient", patient_name),
        ("Kind", record.kind),
        ("Author", f"{record.author_name} (user {record.author_id})"),
        ("Version", f"{record.version}" + (f", amends {record.previous_version_id}" if record.previous_version_id
                                           else "")),
        ("Amendment reason", record.amendment_reason or ""),
        ("Status", status + (", superseded by " + str(record.superseded_by_id) if record.superseded_by_id else "")),
        ("Appointment", str(record.appointment_id) if record.appointment_id else ""),
        ("Written", _local(record.created_at, zone)),
        ("Finalised", _local(record.finalised_at, zone)),
        ("Record id", str(record.id)),
    ]:
        if value:
            line(f"{label}: {value}")
    if record.content:
        heading("Findings")
        for key, value in record.content.items():
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
            line(f"{key}: {shown}")
    heading("Notes")
    line(record.text or "-")
    heading("Signatures")
    if not record.signatures:
        line("Not signed.")
    for sig in record.signatures:
        kind = "Countersignature" if sig.kind == "countersign" else "Signature"
        line(f"{kind} by {sig.signer_name}", size=10.5)
        for label, value in [
            ("Signed at", _local(sig.signed_at, zone)),
            ("Time-stamp", _local(sig.timestamped_at, zone) if sig.timestamped_at else ""),
            ("Certificate", sig.certificate_subject or ""),
            ("Certificate serial", sig.certificate_serial or ""),
            ("Certificate expires", _local(sig.expires_at, zone) if sig.expires_at else ""),
            ("Provider", sig.provider),
            ("Signed content", f"{sig.canonical_format}, SHA-256 {sig.document_sha256}"),
        ]:
            if value:
                line(f"    {label}: {value}", size=9, gap=4.8)
    if verification is not None:
        heading("Verification at export")
        line(verification.summary, size=9.5, gap=5)
        for report in verification.signatures:
            for check in report.checks:
                line(f"    [{'ok' if check.passed else 'FAILED'}] {report.kind} / {check.name}: {check.message}",
                     size=8, gap=4.2)
        for check in verification.checks:
            line(f"    [{'ok' if check.passed else 'FAILED'}] {check.name}: {check.message}", size=8, gap=4.2)
    pdf.ln(3)
    line(f"Exported {_local(exported_at, zone)}", size=8, gap=4)
    return bytes(pdf.output())
