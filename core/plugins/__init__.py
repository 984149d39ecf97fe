"""The plugin runtime: discovery, per-clinic state, isolated hook calls, settings and secrets."""
