"""Certificate signing for Praxis: a doctor's own X.509 certificate, CMS signatures and RFC 3161 time-stamps."""

__version__ = "1.0.0"
