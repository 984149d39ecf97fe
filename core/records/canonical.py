"""The canonical byte form of a record version: exactly what a signature covers. **Frozen**: changing it
makes every stored signature fail to verify, so a new form gets a new ``FORMAT`` name and the old one stays.

``praxis-record/1`` is the UTF-8 encoding of this JSON object, serialised with keys sorted at every level,
no insignificant whitespace (``","`` and ``":"`` separators), non-ASCII characters written as themselves
(not ``\\u`` escapes) and no NaN or infinities::

    {"format": "praxis-record/1",
     "id": "<record version uuid>", "chain_id": "<uuid of the first version>", "version": 1,
     "previous_version_id": null | "<uuid>", "previous_sha256": null | "<hex SHA-256 of the previous
     version's canonical bytes>",
     "clinic_id": 1, "patient_id": "<uuid>", "author_id": 7, "appointment_id": null | 42,
     "kind": "visit_note", "title": "...", "content": {...}, "text": "...", "amendment_reason": null | "..."}

Every string, keys included, is in Unicode NFC, and line breaks in ``text`` are ``\\n`` (CR LF and CR are
converted). The same normalisation is applied when a record is saved, so what is stored is what is signed.
Status, timestamps and signatures are not part of it: they describe the record, they are not its content.
``previous_sha256`` (stored on the amendment when it is written) chains an amendment to the exact bytes of
the version it corrects; verifying the amendment also recomputes it from that version.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from typing import Any

from core.models.records import ClinicalRecord

FORMAT = "praxis-record/1"
MAX_DEPTH = 20


class NotCanonical(ValueError):
    """The content holds something the canonical form cannot represent; the message names where."""


def nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def normalise_text(value: str) -> str:
    return nfc(value.replace("\r\n", "\n").replace("\r", "\n"))


def normalise_content(value: Any, path: str = "content", depth: int = 0) -> Any:
    """JSON-native content with every string in NFC; raises ``NotCanonical`` naming the offending path."""
    if depth > MAX_DEPTH:
        raise NotCanonical(f"{path}: nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotCanonical(f"{path}: NaN and infinity cannot be signed")
        return value
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, list | tuple):
        return [normalise_content(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"{path}: keys must be strings, not {type(key).__name__}")
            norm = nfc(key)
            if norm in out:
                raise NotCanonical(f"{path}.{key}: two keys are the same once normalised to NFC")
            out[norm] = normalise_content(item, f"{path}.{key}", depth + 1)
        return out
    raise NotCanonical(f"{path}: {type(value).__name__} is not a JSON value")


def document(record: ClinicalRecord) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "id": str(record.id),
        "chain_id": str(record.chain_id),
        "version": record.version,
        "previous_version_id": str(record.previous_version_id) if record.previous_version_id else None,
        "previous_sha256": record.previous_sha256,
        "clinic_id": record.clinic_id,
        "patient_id": str(record.patient_id),
        "author_id": record.author_id,
        "appointment_id": record.appointment_id,
        "kind": nfc(record.kind),
        "title": nfc(record.title),
        "content": normalise_content(record.content or {}),
        "text": normalise_text(record.text or ""),
        "amendment_reason": nfc(record.amendment_reason) if record.amendment_reason is not None else None,
    }


def to_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def canonical_bytes(record: ClinicalRecord) -> bytes:
    """The bytes a signature of ``record`` covers."""
    return to_bytes(document(record))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
