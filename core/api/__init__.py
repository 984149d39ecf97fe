"""The JSON REST API (FastAPI); OpenAPI at /docs."""
