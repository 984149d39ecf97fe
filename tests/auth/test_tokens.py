"""API tokens: shown once, stored hashed, revocable, expiring, optionally limited to scopes."""

from __future__ import annotations

from sqlmodel import Session, select

from core.auth import sessions
from core.models.auth import ApiToken
from tests.auth_helpers import anonymous_client, client_for, create_user


def test_token_is_shown_once_stored_hashed_and_needs_no_csrf(world):
    uid = create_user(world.praxis, [world.budapest])
    owner = client_for(world.praxis, uid)
    created = owner.post("/api/auth/tokens", json={"name": "lab bridge"})
    assert created.status_code == 201, created.text
    body = created.json()
    token = body["token"]
    assert token.startswith(body["prefix"] + "_") and body["prefix"].startswith("prx_")
    listed = owner.get("/api/auth/tokens").json()
    assert token not in str(listed) and {t["name"] for t in listed} >= {"lab bridge"}
    with Session(world.praxis.engine) as s:
        row = s.get(ApiToken, body["id"])
    assert row.secret_hash == sessions.sha256(token.split("_", 2)[2]) and token not in row.secret_hash

    bearer = anonymous_client(world.praxis)
    bearer.headers["Authorization"] = f"Bearer {token}"
    me = bearer.get("/api/auth/me").json()
    assert me["method"] == "token" and me["csrf_token"] is None
    patched = bearer.patch(f"/api/clinics/{world.budapest}", json={"phone": "+36 1 234 5678"})
    assert patched.status_code == 200  # no CSRF token for bearer requests
    with Session(world.praxis.engine) as s:
        assert s.get(ApiToken, body["id"]).last_used_at is not None

    assert owner.delete(f"/api/auth/tokens/{body['id']}").status_code == 204
    revoked = bearer.get("/api/auth/me")
    assert revoked.status_code == 401 and revoked.json()["error"] == "unauthenticated"


def test_bad_tokens_are_401(world):
    uid = create_user(world.praxis, [world.budapest])
    good = client_for(world.praxis, uid).post("/api/auth/tokens", json={"name": "x"}).json()["token"]
    prefix, public, secret = good.split("_", 2)
    for header in [f"Bearer {prefix}_{public}_{'A' * len(secret)}", "Bearer prx_nope_nope", "Bearer garbage",
                   f"Basic {good}", "Bearer "]:
        client = anonymous_client(world.praxis)
        client.headers["Authorization"] = header
        assert client.get("/api/auth/me").status_code == 401, header


def test_expired_token_stops_working(world, clock):
    uid = create_user(world.praxis, [world.budapest])
    token = client_for(world.praxis, uid).post("/api/auth/tokens", json={"name": "x", "expires_in_days": 1}).json()
    client = anonymous_client(world.praxis)
    client.headers["Authorization"] = f"Bearer {token['token']}"
    assert client.get("/api/auth/me").status_code == 200
    clock.advance(days=1, seconds=1)
    assert client.get("/api/auth/me").status_code == 401


def test_scoped_token_has_only_its_scopes(world):
    uid = create_user(world.praxis, [world.budapest])
    owner = client_for(world.praxis, uid)
    bad = owner.post("/api/auth/tokens", json={"name": "x", "scopes": ["clinics.view", "no.such"]})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "scopes"
    scoped = client_for(world.praxis, uid, scopes=["clinics.view"])
    assert scoped.get(f"/api/clinics/{world.budapest}").status_code == 200
    assert scoped.patch(f"/api/clinics/{world.budapest}", json={"phone": "1"}).status_code == 403
    assert scoped.get("/api/users").status_code == 403
    assert scoped.get("/api/auth/me").json()["clinics"][0]["permissions"] == ["clinics.view"]
    refused = scoped.post("/api/auth/tokens", json={"name": "escalate"})
    assert refused.status_code == 403 and refused.json()["error"] == "scoped_token"


def test_cannot_revoke_someone_elses_token(world):
    anna = create_user(world.praxis, [world.budapest])
    bela = create_user(world.praxis, [world.budapest])
    token = client_for(world.praxis, anna).post("/api/auth/tokens", json={"name": "x"}).json()
    assert client_for(world.praxis, bela).delete(f"/api/auth/tokens/{token['id']}").status_code == 404


def test_deactivating_a_user_revokes_their_tokens_and_sessions(world):
    admin = create_user(world.praxis, [world.budapest])
    anna = create_user(world.praxis, [world.budapest], role="doctor", login="anna", password="correct horse battery")
    token_client = client_for(world.praxis, anna)
    browser = anonymous_client(world.praxis)
    browser.post("/api/auth/login", json={"login": "anna", "password": "correct horse battery"})
    assert token_client.get("/api/auth/me").status_code == browser.get("/api/auth/me").status_code == 200
    assert client_for(world.praxis, admin).delete(f"/api/users/{anna}").status_code == 204
    assert token_client.get("/api/auth/me").status_code == 401
    assert browser.get("/api/auth/me").status_code == 401
    with Session(world.praxis.engine) as s:
        assert all(t.revoked_at is not None for t in s.exec(select(ApiToken).where(ApiToken.user_id == anna)))
