"""Unit tests: MLLP framing, control ids, and the ORU checks the listener relies on."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from praxis_lab_hl7.messages import Hl7Reject, control_id, parse_results
from praxis_lab_hl7.mllp import END, START, FrameReader, frame

ORU = ("MSH|^~\\&|LIS|LAB|PRAXIS|CLINIC|20250314120000||ORU^R01^ORU_R01|LAB00077|P|2.5\r"
       "PID|1||PAT123^^^CLINIC01^MR||Teszt^Elek||19800101|M\r"
       "ORC|RE|ORD0001^PRAXIS|LABACC77^LIS||CM\r"
       "OBR|1|ORD0001^PRAXIS|LABACC77^LIS|2345-7^Glucose^LN|||20250314092500\r"
       "OBX|1|NM|2345-7^Glucose [Mass/volume] in Serum or Plasma^LN||182|mg/dL^mg/dL^UCUM|70-99|H|||F|||"
       "20250314115900\r"
       "NTE|1||Éhgyomri minta · 공복 · натощак\r"
       "OBX|2|CE|8247-9^Urine color^LN||YEL^Yellow^L|||N|||P\r")


def test_frames_split_across_reads_and_several_in_one_read_are_reassembled():
    reader = FrameReader()
    data = b"noise" + frame("A|1") + frame("B|2é") + frame("C|3")
    chunks = [data[i:i + 3] for i in range(0, len(data), 3)]
    got = [f for chunk in chunks for f in reader.feed(chunk)]
    assert got == [b"A|1", "B|2é".encode(), b"C|3"]
    assert frame("X") == START + b"X" + END


def test_control_ids_fit_hl7_v25_and_follow_the_idempotency_key():
    first = control_id("4b0c6c3e-6a3f-4b8e-9d7f-1c2e3a4b5c6d")
    assert len(first) == 20 and first.isalnum()
    assert first == control_id("4b0c6c3e-6a3f-4b8e-9d7f-1c2e3a4b5c6d") != control_id("another key")


def test_an_oru_parses_into_results_with_notes_units_and_utc_times():
    parsed = parse_results(ORU, ZoneInfo("Europe/Budapest"))
    (group,) = parsed.groups
    assert (group.placer_order_number, group.filler_order_number) == ("ORD0001", "LABACC77")
    glucose, color = group.results
    assert (glucose["value"], glucose["units"], glucose["reference_range"], glucose["abnormal_flag"]) == (
        "182", "mg/dL", "70-99", "H")
    assert glucose["status"] == "final" and glucose["observed_at"] == "2025-03-14T10:59:00+00:00"  # CET read in zone
    assert glucose["notes"] == "Éhgyomri minta · 공복 · натощак"
    assert (color["value"], color["status"], color["value_type"]) == ("Yellow", "preliminary", "CE")


@pytest.mark.parametrize(("raw", "code"), [
    (ORU.replace("OBR|1|", "OBX|0|ST|x^y^LN||v||||||F\rOBR|1|"), "100"),  # OBX before its OBR
    (ORU.replace("PID|1|", "PV1|1|O\rPID|1|"), "100"),  # PV1 before its PID
    (ORU.replace("|ORD0001^PRAXIS|LABACC77^LIS|", "|||"), "101"),  # neither placer nor filler
    (ORU.replace("|2345-7^Glucose [Mass", "|^Glucose [Mass"), "101"),  # OBX-3 missing
    ("PID|1||X", "100"),
])
def test_broken_messages_are_refused_with_the_hl7_error_code(raw: str, code: str):
    with pytest.raises(Hl7Reject) as refused:
        parse_results(raw, ZoneInfo("UTC"))
    assert refused.value.error_code == code and refused.value.reason
