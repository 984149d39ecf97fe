"""The UI's pages through TestClient: login, permissions, language choice, the admin plugins screen."""

from __future__ import annotations

import re

import pytest

from core.audit import Actor
from core.auth import sessions
from core.db import transaction
from core.models.auth import LoginSession
from tests.auth_helpers import create_user
from tests.conftest import add_clinic, fixture_plugin
from tests.ui.conftest import ui_plugin
from tests.ui.helpers import csrf_of, log_in, web_client

PASSWORD = "correct horse battery"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def site(make_praxis):
    praxis = make_praxis([ui_plugin(), fixture_plugin("greeter"), fixture_plugin("needs_greeter"),
                          fixture_plugin("flaky")])
    clinic = add_clinic(praxis, "Seoul Dental", country="KR", timezone="Asia/Seoul", locale="en")
    admin = create_user(praxis, [clinic], role="admin", login="anna", password=PASSWORD, name="Anna Admin")
    return praxis, clinic, admin


def logged_in(praxis, login="anna", **headers):  # type: ignore[no-untyped-def]
    client = web_client(praxis, **headers)
    response = log_in(client, login, PASSWORD)
    assert response.status_code == 303, response.text
    return client


def plugins_url(clinic: int, tail: str = "") -> str:
    return f"/clinics/{clinic}/admin/plugins{tail}"


def menu_of(html: str) -> str:
    match = re.search(r'<nav id="main-menu".*?</nav>', html, re.S)
    assert match, "no main menu in the page"
    return match.group(0)


# --- login and logout ----------------------------------------------------------------------------------


def test_anonymous_pages_redirect_to_login_with_the_way_back(site):
    praxis, clinic, _ = site
    client = web_client(praxis)
    response = client.get(plugins_url(clinic), follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/clinics/{clinic}/admin/plugins"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    htmx = client.get(plugins_url(clinic), headers=HTMX, follow_redirects=False)
    assert htmx.headers["HX-Redirect"].startswith("/login")


def test_login_wrong_password_shows_the_error_next_to_the_field_then_logs_in(site):
    praxis, clinic, _ = site
    client = web_client(praxis)
    wrong = log_in(client, "anna", "not the password")
    assert wrong.status_code == 422
    assert re.search(r'id="password-error">Wrong login name or password\.</p>', wrong.text)
    assert 'value="anna"' in wrong.text  # the login is kept, the password is not
    empty = log_in(client, "", "")
    assert 'id="login-error">Enter your login name.</p>' in empty.text
    ok = log_in(client, "anna", PASSWORD, next_url=plugins_url(clinic))
    assert ok.status_code == 303 and ok.headers["location"] == plugins_url(clinic)
    assert sessions.COOKIE_NAME in client.cookies
    page = client.get(plugins_url(clinic))
    assert page.status_code == 200 and "<h1>Plugins</h1>" in page.text


def test_login_errors_are_in_the_browsers_language_and_the_lockout_is_explained(site):
    praxis, _, _ = site
    client = web_client(praxis, **{"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    wrong = log_in(client, "anna", "nope")
    assert "Неверный логин или пароль." in wrong.text and '<html lang="ru">' in wrong.text
    for _ in range(5):
        last = log_in(client, "anna", "nope")
    assert last.status_code == 429
    assert re.search(r"Слишком много неудачных попыток\. Повторите через \d+ минут", last.text)


def test_login_needs_the_forms_csrf_token_and_refuses_open_redirects(site):
    praxis, _, _ = site
    client = web_client(praxis)
    client.get("/login")
    refused = client.post("/login", data={"login": "anna", "password": PASSWORD, "csrf_token": "0" * 64})
    assert refused.status_code == 403 and sessions.COOKIE_NAME not in client.cookies
    cross = web_client(praxis, Origin="https://evil.example")
    token = csrf_of(cross.get("/login").text)
    assert cross.post("/login", data={"login": "anna", "password": PASSWORD, "csrf_token": token}).status_code == 403
    response = log_in(client, "anna", PASSWORD, next_url="//evil.example/x")
    assert response.headers["location"] == "/"


def test_logout_ends_the_server_side_session(site):
    praxis, clinic, _ = site
    client = logged_in(praxis)
    page = client.get(f"/clinics/{clinic}/")
    response = client.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    with transaction(praxis.engine) as session:
        rows = session.query(LoginSession).all()
    assert rows and all(r.revoked_at is not None for r in rows)
    assert client.get(f"/clinics/{clinic}/", follow_redirects=False).status_code == 303
    assert "You are logged out." in client.get("/login").text


def test_a_user_who_must_change_the_password_is_sent_to_the_password_page(site):
    praxis, clinic, _ = site
    create_user(praxis, [clinic], role="doctor", login="new", password=PASSWORD, must_change_password=True)
    client = web_client(praxis)
    assert log_in(client, "new", PASSWORD).headers["location"] == "/account/password"
    assert client.get(f"/clinics/{clinic}/", follow_redirects=False).headers["location"] == "/account/password"
    form = client.get("/account/password")
    token = csrf_of(form.text)
    short = client.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                   "new_password": "short", "repeat_password": "short"})
    assert short.status_code == 422 and "Use at least 10 characters." in short.text
    done = client.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                  "new_password": "a much longer secret", "repeat_password":
                                                  "a much longer secret"}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get(f"/clinics/{clinic}/").status_code == 200


# --- permissions ---------------------------------------------------------------------------------------


def test_pages_answer_403_without_permission_and_404_outside_the_users_clinics(site):
    praxis, clinic, _ = site
    other = add_clinic(praxis, "Budapest", country="HU", timezone="Europe/Budapest", locale="hu")
    create_user(praxis, [clinic], login="nobody", password=PASSWORD, permissions=[])
    create_user(praxis, [clinic], login="doc", password=PASSWORD, role="doctor")
    create_user(praxis, [other], login="outsider", password=PASSWORD, role="admin")
    nobody = logged_in(praxis, "nobody")
    assert nobody.get("/").status_code == 403
    assert nobody.get(f"/clinics/{clinic}/").status_code == 403
    doc = logged_in(praxis, "doc")
    denied = doc.get(plugins_url(clinic))
    assert denied.status_code == 403 and "You do not have permission to see this page." in denied.text
    assert f'href="/clinics/{clinic}/admin/plugins"' not in menu_of(doc.get(f"/clinics/{clinic}/").text)
    outsider = logged_in(praxis, "outsider")
    assert outsider.get(plugins_url(clinic)).status_code == 404
    assert outsider.get(f"/clinics/{clinic}/").status_code == 404
    hungarian = outsider.get(plugins_url(other))
    assert hungarian.status_code == 200 and "<h1>Bővítmények</h1>" in hungarian.text  # the clinic's language


def test_viewing_plugins_without_manage_permission_shows_disabled_switches_and_refuses_changes(site):
    praxis, clinic, _ = site
    create_user(praxis, [clinic], login="viewer", password=PASSWORD, permissions=["plugins.view"])
    client = logged_in(praxis, "viewer")
    page = client.get(plugins_url(clinic))
    assert page.status_code == 200
    assert re.search(r'aria-label="Reminders" disabled', page.text)
    response = client.post(plugins_url(clinic, "/reminders/enable"), data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 403
    assert not praxis.runtime.is_enabled(clinic, "reminders")
    detail = client.get(plugins_url(clinic, "/reminders"))
    assert "<fieldset disabled>" in detail.text and "Save settings" not in detail.text


def test_changes_need_the_sessions_csrf_token(site):
    praxis, clinic, _ = site
    client = logged_in(praxis)
    response = client.post(plugins_url(clinic, "/reminders/enable"), data={})
    assert response.status_code == 403 and "The form had expired" in response.text
    assert not praxis.runtime.is_enabled(clinic, "reminders")


# --- the plugins screen --------------------------------------------------------------------------------


def test_plugins_are_grouped_by_category_with_country_badges_version_and_state(site):
    praxis, clinic, _ = site
    page = logged_in(praxis).get(plugins_url(clinic)).text
    messaging = page.index('<h2 id="group-messaging">Messaging</h2>')
    other = page.index('<h2 id="group-other">Other</h2>')
    assert messaging < page.index('id="plugin-reminders"') < other < page.index('id="plugin-flaky"')
    row = re.search(r'<li class="plugin-row state-disabled" id="plugin-reminders".*?</li>', page, re.S).group(0)
    assert '<abbr title="South Korea">KR</abbr>' in row and '<abbr title="Hungary">HU</abbr>' in row
    assert "2.1.0" in row and "Sends appointment reminders by text message." in row
    assert 'aria-checked="false"' in row


def test_switching_a_plugin_on_adds_its_menu_item_at_once_and_off_removes_it(site):
    praxis, clinic, _ = site
    client = logged_in(praxis)
    page = client.get(plugins_url(clinic))
    token = csrf_of(page.text)
    assert "/x/reminders" not in menu_of(page.text)
    on = client.post(plugins_url(clinic, "/reminders/enable"), data={"csrf_token": token}, headers=HTMX)
    assert on.status_code == 200 and praxis.runtime.is_enabled(clinic, "reminders")
    # the list is swapped in place, and the menu and the message out of band
    assert on.text.startswith('<div id="plugin-list">')
    oob_menu = re.search(r'<nav id="main-menu"[^>]*hx-swap-oob="true".*?</nav>', on.text, re.S).group(0)
    assert f'href="/clinics/{clinic}/x/reminders"' in oob_menu and ">Reminders</a>" in oob_menu
    assert "Enabled: Reminders." in on.text
    assert "/x/reminders" in menu_of(client.get(f"/clinics/{clinic}/").text)
    off = client.post(plugins_url(clinic, "/reminders/disable"), data={"csrf_token": token}, headers=HTMX)
    assert "/x/reminders" not in re.search(r'<nav id="main-menu".*?</nav>', off.text, re.S).group(0)
    assert "/x/reminders" not in menu_of(client.get(f"/clinics/{clinic}/").text)


def test_without_javascript_a_toggle_redirects_back_with_a_message(site):
    praxis, clinic, _ = site
    client = logged_in(praxis)
    token = csrf_of(client.get(plugins_url(clinic)).text)
    response = client.post(plugins_url(clinic, "/greeter/enable"), data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == plugins_url(clinic)
    page = client.get(plugins_url(clinic))
    assert "Enabled: Greeter." in page.text
    assert "Enabled: Greeter." not in client.get(plugins_url(clinic)).text  # shown once


def test_enabling_a_plugin_with_dependencies_asks_and_disabling_a_needed_one_says_who_needs_it(site):
    praxis, clinic, _ = site
    client = logged_in(praxis)
    token = csrf_of(client.get(plugins_url(clinic)).text)
    asked = client.post(plugins_url(clinic, "/needs_greeter/enable"), data={"csrf_token": token}, headers=HTMX)
    assert "Needs greeter needs Greeter. Enable them too?" in asked.text
    assert 'name="with_dependencies" value="1"' in asked.text
    assert not praxis.runtime.is_enabled(clinic, "needs_greeter")
    both = client.post(plugins_url(clinic, "/needs_greeter/enable"),
                       data={"csrf_token": token, "with_dependencies": "1"}, headers=HTMX)
    assert "Enabled: Greeter, Needs greeter." in both.text
    assert praxis.runtime.is_enabled(clinic, "greeter") and praxis.runtime.is_enabled(clinic, "needs_greeter")
    refused = client.post(plugins_url(clinic, "/greeter/disable"), data={"csrf_token": token}, headers=HTMX)
    assert "Needs greeter need Greeter. Disable them first." in refused.text
    assert praxis.runtime.is_enabled(clinic, "greeter")


def test_an_unhealthy_plugin_shows_its_last_error_and_can_be_reset(site):
    praxis, clinic, _ = site
    praxis.plugins.enable(clinic, "flaky", Actor.system("test"))
    for _ in range(3):  # circuit_threshold is 3 in the test settings
        praxis.runtime.health.record_failure(clinic, "flaky", "praxis_on_event: RuntimeError: vendor exploded")
    praxis.runtime.state.invalidate()
    client = logged_in(praxis)
    page = client.get(plugins_url(clinic))
    row = re.search(r'<li class="plugin-row state-unhealthy" id="plugin-flaky".*?</li>', page.text, re.S).group(0)
    assert "3 failures in a row." in row and "vendor exploded" in row and "Reset and try again" in row
    reset = client.post(plugins_url(clinic, "/flaky/reset"), data={"csrf_token": csrf_of(page.text)}, headers=HTMX)
    assert 'class="plugin-row state-enabled" id="plugin-flaky"' in reset.text


def test_quarantined_plugins_show_the_reason_and_cannot_be_switched(make_praxis):
    praxis = make_praxis([ui_plugin(), fixture_plugin("broken_import")])
    clinic = add_clinic(praxis, locale="en")
    create_user(praxis, [clinic], login="anna", password=PASSWORD)
    page = logged_in(praxis).get(plugins_url(clinic)).text
    row = re.search(r'<li class="plugin-row state-quarantined" id="plugin-broken_import".*?</li>', page, re.S)
    assert row and "Reason:" in row.group(0) and re.search(r'aria-label="broken_import" disabled', row.group(0))


# --- settings ------------------------------------------------------------------------------------------


def test_the_settings_form_is_generated_from_the_schema(site):
    praxis, clinic, _ = site
    page = logged_in(praxis).get(plugins_url(clinic, "/reminders")).text
    assert '<label for="setting-sender_name">Sender name' in page
    assert re.search(r'<input type="text" id="setting-sender_name" name="sender_name" value="Clinic"', page)
    assert re.search(r'<input type="number" id="setting-daily_limit" name="daily_limit" value="100"\s+step="1" '
                     r'min="1" max="500"', page)
    assert '<option value="sms" selected>sms</option>' in page and '<option value="email">email</option>' in page
    assert re.search(r'<input type="password" id="setting-api_token" name="api_token" value=""', page)
    assert 'id="setting-api_token-state">not set</span>' in page
    assert "Test connection" in page  # the plugin implements praxis_test_connection
    greeter = logged_in(praxis).get(plugins_url(clinic, "/flaky")).text
    assert "This plugin has no settings." in greeter


def test_settings_errors_are_shown_next_to_each_field_in_the_users_language(site):
    praxis, clinic, _ = site
    client = logged_in(praxis)
    client.cookies.set("praxis_lang", "ko")
    token = csrf_of(client.get(plugins_url(clinic, "/reminders")).text)
    data = {"csrf_token": token, "sender_name": "X", "daily_limit": "9999", "channel": "sms", "api_token": ""}
    response = client.post(plugins_url(clinic, "/reminders/settings"), data=data, headers=HTMX)
    assert response.status_code == 422
    assert re.search(r'id="setting-sender_name-error" hx-swap-oob="true">2자 이상 입력하세요\.</p>', response.text)
    assert re.search(r'id="setting-daily_limit-error" hx-swap-oob="true">500 이하의 숫자를 입력하세요\.</p>',
                     response.text)
    assert re.search(r'id="setting-channel-error" hx-swap-oob="true"></p>', response.text)
    # Without htmx the whole page comes back, with the typed values and aria-invalid on the bad fields.
    page = client.post(plugins_url(clinic, "/reminders/settings"), data={**data, "daily_limit": "many"})
    assert page.status_code == 422
    assert re.search(r'name="daily_limit" value="many"[^>]*aria-invalid="true"', page.text.replace("\n", " "))
    assert "정수를 입력하세요." in page.text
    assert praxis.plugins.statuses(clinic)[-1].settings.get("sender_name") in (None, "Clinic")


def test_saving_settings_keeps_secrets_write_only(site):
    praxis, clinic, _ = site
    client = logged_in(praxis)
    token = csrf_of(client.get(plugins_url(clinic, "/reminders")).text)
    data = {"csrf_token": token, "sender_name": "Seoul", "daily_limit": "250", "channel": "email",
            "api_token": "s3cret-token"}
    saved = client.post(plugins_url(clinic, "/reminders/settings"), data=data, headers=HTMX)
    assert saved.status_code == 200 and "Settings saved." in saved.text
    assert 'id="setting-api_token-state" hx-swap-oob="true">set</span>' in saved.text
    status = next(s for s in praxis.plugins.statuses(clinic) if s.name == "reminders")
    assert status.settings == {"sender_name": "Seoul", "daily_limit": 250, "channel": "email",
                               "api_token": {"set": True}}
    page = client.get(plugins_url(clinic, "/reminders")).text
    assert "s3cret-token" not in page and 'id="setting-api_token-state">set</span>' in page
    # A blank secret keeps the stored one.
    client.post(plugins_url(clinic, "/reminders/settings"), data={**data, "api_token": "", "daily_limit": "7"},
                headers=HTMX)
    status = next(s for s in praxis.plugins.statuses(clinic) if s.name == "reminders")
    assert status.settings["daily_limit"] == 7 and status.settings["api_token"] == {"set": True}


def test_the_connection_test_uses_the_typed_settings(site):
    praxis, clinic, _ = site
    client = logged_in(praxis)
    token = csrf_of(client.get(plugins_url(clinic, "/reminders")).text)
    data = {"csrf_token": token, "sender_name": "Seoul", "daily_limit": "5", "channel": "sms"}
    good = client.post(plugins_url(clinic, "/reminders/test-connection"), data={**data, "api_token": "good-token"},
                       headers=HTMX)
    assert "The connection works." in good.text and "authenticated as Seoul" in good.text
    bad = client.post(plugins_url(clinic, "/reminders/test-connection"), data={**data, "api_token": "nope"},
                      headers=HTMX)
    assert "The connection failed." in bad.text and "refused the API token" in bad.text
    assert next(s for s in praxis.plugins.statuses(clinic) if s.name == "reminders").settings["api_token"] == {
        "set": False}  # testing saves nothing


# --- language, layout, static files ---------------------------------------------------------------------


def test_the_language_switcher_overrides_the_clinic_and_the_browser(site):
    praxis, clinic, _ = site
    client = logged_in(praxis, **{"Accept-Language": "hu"})
    page = client.get(plugins_url(clinic))
    assert '<html lang="en">' in page.text  # the clinic's language beats the browser's
    response = client.post("/language", data={"csrf_token": csrf_of(page.text), "lang": "zh_Hans",
                                              "next": plugins_url(clinic)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == plugins_url(clinic)
    chinese = client.get(plugins_url(clinic)).text
    assert '<html lang="zh-Hans">' in chinese and "<h1>插件</h1>" in chinese
    anonymous = web_client(praxis, **{"Accept-Language": "zh-CN,zh;q=0.9"})
    login = anonymous.get("/login").text
    assert '<html lang="zh-Hans">' in login and "登录名" in login
    switched = anonymous.post("/language", data={"csrf_token": csrf_of(login), "lang": "hu", "next": "/login"})
    assert "Felhasználónév" in switched.text


def test_the_layout_has_the_clinic_switcher_user_menu_and_accessible_basics(site):
    praxis, clinic, _ = site
    second = add_clinic(praxis, "Busan Branch", country="KR", timezone="Asia/Seoul", locale="ko")
    with transaction(praxis.engine) as session:
        from core.auth.permissions import catalog
        from core.auth.users import MembershipSpec, set_membership
        from core.models.auth import User

        set_membership(session, catalog(praxis.runtime), Actor.system("test"), session.get(User, site[2]),
                       MembershipSpec(second, "admin", [], []))
    page = logged_in(praxis).get(f"/clinics/{clinic}/").text
    assert f'<a href="/clinics/{second}/">Busan Branch</a>' in page
    assert f'<a href="/clinics/{clinic}/" aria-current="true">Seoul Dental</a>' in page
    assert "<summary>Anna Admin</summary>" in page and 'action="/logout"' in page
    assert '<a class="skip-link" href="#main">' in page and '<main id="main"' in page
    assert "https://" not in page.split("<body", 1)[0]  # nothing from a CDN
    for input_id in re.findall(r'<input[^>]*\bid="([^"]+)"', page):
        assert f'for="{input_id}"' in page, f"input #{input_id} has no label"
    # dates in the clinic's zone and language: Korean day periods read 오전/오후
    korean = logged_in(praxis)
    korean.cookies.set("praxis_lang", "ko")
    assert re.search(r"<dd>\d{4}\. \d{1,2}\. \d{1,2}\. (오전|오후) \d{1,2}:\d{2}</dd>",
                     korean.get(f"/clinics/{clinic}/").text)


def test_static_files_and_security_headers(site):
    praxis, _, _ = site
    client = web_client(praxis)
    login = client.get("/login")
    assert "default-src 'self'" in login.headers["content-security-policy"]
    assert login.headers["x-content-type-options"] == "nosniff"
    htmx = client.get("/static/vendor/htmx-2.0.11.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/vendor/htmx-2.0.11.LICENSE").status_code == 200
