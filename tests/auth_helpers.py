"""Helpers for tests that need users: create one, and get an HTTP client acting as them.

    from tests.auth_helpers import anonymous_client, client_for, create_user

    user_id = create_user(praxis, [clinic_id], role="receptionist")
    client = client_for(praxis, user_id)          # authenticated by an API token: no CSRF needed
    client.get(f"/api/clinics/{clinic_id}")

``create_user(..., permissions=[...])`` gives the user a fresh custom role with exactly those
permissions (``permissions=[]``: a role with none).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable

from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from core.api.app import create_app
from core.app_context import Praxis
from core.audit import Actor
from core.auth import passwords, sessions
from core.auth.permissions import catalog
from core.auth.users import MembershipSpec
from core.auth.users import create_role as _create_role
from core.auth.users import create_user as _create_user
from core.db import transaction

# Real argon2id with small parameters: the default (64 MiB, t=3) costs ~0.1 s a hash, which would make
# every test that creates a user slow on a 2-core machine. Hashes keep their parameters, so they verify.
passwords.configure_hasher(PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),)))

TEST_ACTOR = Actor(None, "test")
_counter = itertools.count(1)


def create_user(praxis: Praxis, clinic_ids: Iterable[int] = (), role: str = "admin", login: str | None = None,
                password: str | None = None, *, name: str | None = None,
                permissions: Iterable[str] | None = None, grant: Iterable[str] = (), deny: Iterable[str] = (),
                must_change_password: bool = False) -> int:
    """Create an active user working in ``clinic_ids`` with ``role`` there; returns the user id."""
    n = next(_counter)
    login = login or f"user{n}_{secrets.token_hex(3)}"
    with transaction(praxis.engine) as session:
        cat = catalog(praxis.runtime)
        if permissions is not None:
            role = f"test_role_{n}_{secrets.token_hex(3)}"
            _create_role(session, cat, TEST_ACTOR, code=role, title=role, permissions=list(permissions))
        user = _create_user(
            session, cat, TEST_ACTOR, login=login, name=name or f"Test User {n}",
            password=password if password is not None else secrets.token_urlsafe(16),
            memberships=[MembershipSpec(c, role, list(grant), list(deny)) for c in clinic_ids],
            must_change_password=must_change_password,
        ) if clinic_ids else _create_user_without_clinic(session, login, name or f"Test User {n}", password)
        assert user.id is not None
        return user.id


def _create_user_without_clinic(session, login: str, name: str, password: str | None):  # type: ignore[no-untyped-def]
    from core.models.auth import User

    user = User(login=passwords.normalize_login(login), name=name)
    session.add(user)
    session.flush()
    passwords.set_password(session, user, password or secrets.token_urlsafe(16))
    return user


def api_token(praxis: Praxis, user_id: int, scopes: list[str] | None = None) -> str:
    with transaction(praxis.engine) as session:
        return sessions.create_token(session, user_id, "test", scopes=scopes).secret


def app_for(praxis: Praxis):  # type: ignore[no-untyped-def]
    return create_app(praxis, start_worker=False)


def client_for(praxis: Praxis, user_id: int, *, scopes: list[str] | None = None) -> TestClient:
    """A client authenticated as the user through a fresh API token."""
    client = TestClient(app_for(praxis))
    client.headers["Authorization"] = f"Bearer {api_token(praxis, user_id, scopes)}"
    return client


def anonymous_client(praxis: Praxis) -> TestClient:
    return TestClient(app_for(praxis))
