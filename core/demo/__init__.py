"""Demo data: two living clinics (Budapest and Seoul) for the README's serve command."""
