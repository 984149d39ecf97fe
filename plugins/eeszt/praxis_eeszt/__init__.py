"""Praxis plugin for the Hungarian EESZT (Elektronikus Egészségügyi Szolgáltatási Tér)."""

__version__ = "0.1.0"
