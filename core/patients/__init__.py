"""Patients: registration, search, identifiers, trash, merge. ``PatientService`` is the entry point."""

from core.patients.errors import DuplicateWarning, PatientConflict, PatientNotFound
from core.patients.service import PatientService

__all__ = ["DuplicateWarning", "PatientConflict", "PatientNotFound", "PatientService"]
