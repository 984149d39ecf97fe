"""The ``praxis`` command line."""
