"""The appointment book and clinic schedules: set-up (rooms, hours, days off, doctors' schedules), bookings
with conflict prevention, free-slot search, waitlist, pinboard and recurring series."""

from core.scheduling import setup as _setup  # noqa: E402,F401  (its flush hook keeps every process's set-up cache current)
