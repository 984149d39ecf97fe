"""HL7 v2.5 lab connector for Praxis: orders over MLLP, results through an MLLP listener. Entry point:
``praxis_lab_hl7.plugin``."""

__version__ = "0.1.0"
