"""Cloud e-signature for Praxis: real-name verified doctors sign batches after an SMS or face intent check."""

__version__ = "1.0.0"
