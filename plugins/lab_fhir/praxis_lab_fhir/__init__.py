"""FHIR R4 lab connector for Praxis. Entry point: ``praxis_lab_fhir.plugin``."""

__version__ = "0.1.0"
