from tests.conftest import *  # noqa: F401,F403  (the core's fixtures: make_praxis, add_clinic, ...)
