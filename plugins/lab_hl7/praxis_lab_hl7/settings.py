"""Per-clinic settings of the HL7 lab connector."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from plugin_sdk import N_

CODE = r"^[A-Za-z0-9_.\-]{1,20}$"  # HD namespace ids: no HL7 delimiters


class Hl7Settings(BaseModel):
    host: str = Field("lis.example", min_length=1, max_length=200, title=N_("Lab's MLLP host"),
                      description=N_("Where the lab's interface engine accepts orders (MLLP over TCP)."))
    port: int = Field(2575, ge=1, le=65535, title=N_("Lab's MLLP port"))
    sending_application: str = Field("PRAXIS", pattern=CODE, title=N_("Sending application (MSH-3)"))
    sending_facility: str = Field("CLINIC", pattern=CODE, title=N_("Sending facility (MSH-4)"),
                                  description=N_("How the lab knows this clinic."))
    receiving_application: str = Field("LIS", pattern=CODE, title=N_("Receiving application (MSH-5)"))
    receiving_facility: str = Field("LAB", pattern=CODE, title=N_("Receiving facility (MSH-6)"))
    processing_id: Literal["P", "T", "D"] = Field("P", title=N_("Processing id (MSH-11)"),
                                                  description=N_("P production, T training, D debugging."))
    listener_host: str = Field("0.0.0.0", min_length=1, max_length=200,  # noqa: S104 - the lab connects from outside
                               title=N_("Result listener address"),
                               description=N_("Interface the MLLP listener for results binds to."))
    listener_port: int | None = Field(None, ge=1, le=65535, title=N_("Result listener port"),
                                      description=N_("The lab sends ORU^R01 results here. Empty: no listener "
                                                     "(results only by asking the lab)."))
    results_query: bool = Field(True, title=N_("Ask the lab for results"),
                                description=N_("Also ask the lab (QRY^R02) for results it could not push to the "
                                               "listener."))
    timeout_seconds: float = Field(10.0, gt=0, le=120, title=N_("Timeout (seconds)"))
    printer_host: str | None = Field(None, max_length=200, title=N_("Label printer host"),
                                     description=N_("ZPL label printer (raw TCP), if the lab's record names none."))
    printer_port: int | None = Field(None, ge=1, le=65535, title=N_("Label printer port"))
