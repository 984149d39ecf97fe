"""Logging in: cookie sessions, CSRF, timeouts, lockout, login history, password changes."""

from __future__ import annotations

from sqlmodel import Session, select

from core.auth import sessions
from core.db import transaction
from core.models.audit import AuditEntry
from core.models.auth import LoginAttempt, LoginSession, User
from tests.auth_helpers import anonymous_client, client_for, create_user

PASSWORD = "correct horse battery"


def _login(client, login="anna", password=PASSWORD, **headers):
    return client.post("/api/auth/login", json={"login": login, "password": password}, headers=headers)


def test_login_sets_a_hardened_cookie_and_returns_the_csrf_token(world):
    uid = create_user(world.praxis, [world.budapest], role="doctor", login="Anna", password=PASSWORD)
    client = anonymous_client(world.praxis)
    response = _login(client, login="  ANNA ")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["id"] == uid and body["method"] == "session"
    assert body["clinics"] == [{"clinic_id": world.budapest, "name": "Budapest", "role": "doctor",
                                "permissions": body["clinics"][0]["permissions"]}]
    assert "patients.view" in body["clinics"][0]["permissions"]
    assert "users.manage" not in body["clinics"][0]["permissions"]
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{sessions.COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie and "Path=/" in cookie
    raw = client.cookies[sessions.COOKIE_NAME]
    assert body["csrf_token"] == sessions.csrf_token(world.praxis.keyring, raw)
    with Session(world.praxis.engine) as s:
        row = s.exec(select(LoginSession)).one()
    assert row.token_hash == sessions.sha256(raw) and raw not in row.token_hash  # only the hash is stored
    me = client.get("/api/auth/me").json()
    assert me["user"]["login"] == "anna" and me["csrf_token"] == body["csrf_token"]
    assert "password" not in response.text.lower().replace("must_change_password", "")


def test_secure_cookie_when_configured(make_praxis):
    from tests.conftest import add_clinic

    praxis = make_praxis(secure_cookies=True)
    clinic = add_clinic(praxis)
    create_user(praxis, [clinic], login="anna", password=PASSWORD)
    response = _login(anonymous_client(praxis))
    assert "Secure" in response.headers["set-cookie"]


def test_wrong_password_and_unknown_login_look_the_same_and_are_recorded(world):
    uid = create_user(world.praxis, [world.budapest], login="anna", password=PASSWORD)
    client = anonymous_client(world.praxis)
    wrong = _login(client, password="not the password")
    unknown = _login(client, login="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "wrong_credentials", "message": "wrong login or password"}
    assert sessions.COOKIE_NAME not in client.cookies
    assert _login(client).status_code == 200
    with Session(world.praxis.engine) as s:
        attempts = s.exec(select(LoginAttempt).order_by(LoginAttempt.id)).all()
    assert [(a.login, a.user_id, a.success, a.reason) for a in attempts] == [
        ("anna", uid, False, "bad_password"), ("nobody", None, False, "unknown_user"), ("anna", uid, True, "ok")]
    admin = client_for(world.praxis, uid)
    history = admin.get("/api/auth/logins").json()
    assert history["total"] == 2  # the unknown login belongs to nobody the admin manages
    assert [i["reason"] for i in history["items"]] == ["ok", "bad_password"]
    assert admin.get("/api/auth/logins", params={"success": False}).json()["total"] == 1


def test_csrf_is_required_for_unsafe_cookie_requests(world):
    create_user(world.praxis, [world.budapest], login="anna", password=PASSWORD)
    client = anonymous_client(world.praxis)
    token = _login(client).json()["csrf_token"]
    patch = {"address": "Fő utca 1"}
    url = f"/api/clinics/{world.budapest}"
    missing = client.patch(url, json=patch)
    assert missing.status_code == 403 and missing.json()["error"] == "csrf_failed"
    assert client.patch(url, json=patch, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    assert client.get(url).status_code == 200  # safe methods need no token
    ok = client.patch(url, json=patch, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200 and ok.json()["address"] == "Fő utca 1"
    cross = client.patch(url, json=patch, headers={"X-CSRF-Token": token, "Origin": "https://evil.example"})
    assert cross.status_code == 403 and cross.json()["error"] == "cross_site"
    same = client.patch(url, json=patch, headers={"X-CSRF-Token": token, "Origin": "http://testserver"})
    assert same.status_code == 200
    fetch = client.patch(url, json=patch, headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"})
    assert fetch.status_code == 403
    # An HTML form sends the token as a field.
    form = client.post("/api/auth/logout", data={"csrf_token": token})
    assert form.status_code == 204
    assert client.get("/api/auth/me").status_code == 401


def test_csrf_token_of_one_session_does_not_work_for_another(world):
    create_user(world.praxis, [world.budapest], login="anna", password=PASSWORD)
    first, second = anonymous_client(world.praxis), anonymous_client(world.praxis)
    token_one = _login(first).json()["csrf_token"]
    _login(second)
    response = second.patch(f"/api/clinics/{world.budapest}", json={"address": "x"},
                            headers={"X-CSRF-Token": token_one})
    assert response.status_code == 403


def test_login_from_another_site_is_refused(world):
    create_user(world.praxis, [world.budapest], login="anna", password=PASSWORD)
    response = _login(anonymous_client(world.praxis), Origin="https://evil.example")
    assert response.status_code == 403 and response.json()["error"] == "cross_site"


def test_logout_ends_the_session_for_good(world):
    create_user(world.praxis, [world.budapest], login="anna", password=PASSWORD)
    client = anonymous_client(world.praxis)
    token = _login(client).json()["csrf_token"]
    raw = client.cookies[sessions.COOKIE_NAME]
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": token}).status_code == 204
    replay = anonymous_client(world.praxis)
    replay.cookies.set(sessions.COOKIE_NAME, raw)
    assert replay.get("/api/auth/me").status_code == 401
    with Session(world.praxis.engine) as s:
        actions = [e.action for e in s.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()]
    assert "auth.login" in actions and "auth.logout" in actions


def test_idle_and_absolute_timeouts(world, clock):
    create_user(world.praxis, [world.budapest], login="anna", password=PASSWORD)
    client = anonymous_client(world.praxis)
    _login(client)
    clock.advance(hours=1, minutes=59)
    assert client.get("/api/auth/me").status_code == 200  # activity moves the idle deadline
    clock.advance(hours=1, minutes=59)
    assert client.get("/api/auth/me").status_code == 200
    clock.advance(hours=2, minutes=1)
    response = client.get("/api/auth/me")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"

    _login(client)
    for _ in range(12):
        clock.advance(hours=1)
        status = client.get("/api/auth/me").status_code
    assert status == 401  # 12 hours after login, however active


def test_lockout_after_five_failures_for_fifteen_minutes(world, clock):
    create_user(world.praxis, [world.budapest], login="anna", password=PASSWORD)
    client = anonymous_client(world.praxis)
    for _ in range(5):
        assert _login(client, password="wrong password!").status_code == 401
    locked = _login(client)  # even the right password is refused now
    assert locked.status_code == 429 and locked.json()["error"] == "locked"
    assert 800 <= int(locked.headers["retry-after"]) <= 901
    clock.advance(minutes=14)
    assert _login(client).status_code == 429
    clock.advance(minutes=1, seconds=1)
    assert _login(client).status_code == 200
    # A success starts the count afresh.
    for _ in range(4):
        _login(client, password="wrong password!")
    assert _login(client).status_code == 200
    with Session(world.praxis.engine) as s:
        locks = s.exec(select(AuditEntry).where(AuditEntry.action == "auth.locked")).all()
        reasons = [a.reason for a in s.exec(select(LoginAttempt)).all()]
    assert len(locks) == 1 and reasons.count("locked") == 2


def test_lockout_holds_across_processes(world, make_praxis):
    """The counters live in the database: a second app instance sees the lock."""
    create_user(world.praxis, [world.budapest], login="anna", password=PASSWORD)
    one = anonymous_client(world.praxis)
    for _ in range(5):
        _login(one, password="wrong password!")
    other = make_praxis([])  # same settings, same database: another process in production
    assert _login(anonymous_client(other)).status_code == 429


def test_an_address_guessing_many_logins_is_blocked(world, clock):
    for i in range(5):
        create_user(world.praxis, [world.budapest], login=f"user{i}x", password=PASSWORD)
    client = anonymous_client(world.praxis)
    for i in range(20):
        _login(client, login=f"user{i % 5}x" if i % 2 else f"ghost{i}", password="wrong password!")
    create_user(world.praxis, [world.budapest], login="fresh", password=PASSWORD)
    blocked = _login(client, login="fresh")
    assert blocked.status_code == 429 and "address" in blocked.json()["message"]


def test_admin_can_unlock(world):
    admin = create_user(world.praxis, [world.budapest])
    anna = create_user(world.praxis, [world.budapest], role="doctor", login="anna", password=PASSWORD)
    client = anonymous_client(world.praxis)
    for _ in range(5):
        _login(client, password="wrong password!")
    assert _login(client).status_code == 429
    assert client_for(world.praxis, admin).post(f"/api/users/{anna}/unlock").status_code == 204
    assert _login(client).status_code == 200


def test_deactivated_account_cannot_log_in(world):
    uid = create_user(world.praxis, [world.budapest], login="anna", password=PASSWORD)
    with transaction(world.praxis.engine) as s:
        user = s.get(User, uid)
        user.active = False
        s.add(user)
    response = _login(anonymous_client(world.praxis))
    assert response.status_code == 403 and response.json()["error"] == "deactivated"
    assert _login(anonymous_client(world.praxis), password="wrong password!").status_code == 401


def test_must_change_password_blocks_everything_else_until_changed(world):
    create_user(world.praxis, [world.budapest], login="anna", password=PASSWORD, must_change_password=True)
    client = anonymous_client(world.praxis)
    body = _login(client).json()
    assert body["user"]["must_change_password"] is True
    csrf = {"X-CSRF-Token": body["csrf_token"]}
    blocked = client.get(f"/api/clinics/{world.budapest}")
    assert blocked.status_code == 403 and blocked.json()["error"] == "password_change_required"
    bad = client.post("/api/auth/password", headers=csrf,
                      json={"current_password": PASSWORD, "new_password": PASSWORD})
    assert bad.status_code == 422 and bad.json()["fields"][0]["code"] == "reused"
    ok = client.post("/api/auth/password", headers=csrf,
                     json={"current_password": PASSWORD, "new_password": "a brand new secret"})
    assert ok.status_code == 204
    assert client.get(f"/api/clinics/{world.budapest}").status_code == 200


def test_changing_the_password_ends_other_sessions_and_checks_the_current_one(world):
    create_user(world.praxis, [world.budapest], login="anna", password=PASSWORD)
    here, elsewhere = anonymous_client(world.praxis), anonymous_client(world.praxis)
    csrf = {"X-CSRF-Token": _login(here).json()["csrf_token"]}
    _login(elsewhere)
    wrong = here.post("/api/auth/password", headers=csrf,
                      json={"current_password": "not it at all", "new_password": "a brand new secret"})
    assert wrong.status_code == 422 and wrong.json()["fields"][0]["field"] == "current_password"
    short = here.post("/api/auth/password", headers=csrf, json={"current_password": PASSWORD, "new_password": "short"})
    assert short.status_code == 422 and short.json()["fields"][0] == {
        "field": "new_password", "message": "must be at least 10 characters long", "code": "too_short"}
    ok = here.post("/api/auth/password", headers=csrf,
                   json={"current_password": PASSWORD, "new_password": "a brand new secret"})
    assert ok.status_code == 204
    assert here.get("/api/auth/me").status_code == 200
    assert elsewhere.get("/api/auth/me").status_code == 401
    assert _login(anonymous_client(world.praxis)).status_code == 401
    assert _login(anonymous_client(world.praxis), password="a brand new secret").status_code == 200
    with Session(world.praxis.engine) as s:
        entries = s.exec(select(AuditEntry)).all()
    dumped = " ".join(str(e.data) for e in entries)
    assert PASSWORD not in dumped and "a brand new secret" not in dumped
