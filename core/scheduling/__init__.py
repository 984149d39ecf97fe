"""The appointment book and clinic schedules: set-up (rooms, hours, days off, doctors' schedules), bookings
with conflict prevention, free-slot search, waitlist, pinboard and recurring series."""
