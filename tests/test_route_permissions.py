"""Every route of the app checks who is calling, found by enumeration so new routes are covered too.

For each APIRoute of ``create_app`` (core routes, the UI's, and those of every installed plugin, enabled
in the clinics used here) and each of its methods:

* anonymous -> 401 (pages outside /api may instead redirect to the login page);
* a member of the clinic whose role has no permissions -> 403;
* for routes with ``{clinic_id}``: an administrator of *another* clinic -> 404.

Path parameters are filled with plausible values (the target clinic's id; 1 for other ids; a random
UUID where the route wants one) and routes that take a body get ``{}``: the permission check must come
before any lookup or validation, or the route leaks what exists. Deliberate exceptions are listed below
with the reason; an entry that no longer matches a route fails the test, so the lists stay honest.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from core.api.app import create_app
from core.audit import Actor
from tests.auth.conftest import PERM_PLUGIN
from tests.auth_helpers import anonymous_client, client_for, create_user
from tests.conftest import add_clinic

# Reachable without logging in, on purpose.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/health"): "liveness and per-plugin health for monitoring; no patient or clinic data",
    ("POST", "/api/auth/login"): "logging in; throttled, same-origin only",
    ("POST", "/api/messaging/callbacks/{plugin}/{clinic_id}"): "vendors' delivery reports and replies; the provider "
    "plugin checks each callback's signature or secret (403 if forged), 404 unless enabled in the clinic",
}
# Paths of pages that must work without a session (the login page itself and its assets).
PUBLIC_PREFIXES: dict[str, str] = {
    "/login": "the UI's login page",
    "/static": "stylesheets, scripts and images",
    "/language": "choosing the UI language works before logging in",
}
# Need a login but no permission: each acts only on the caller's own account.
SELF_SERVICE: dict[tuple[str, str], str] = {
    ("GET", "/api/auth/me"): "who am I, my clinics and permissions",
    ("POST", "/api/auth/logout"): "end my own session",
    ("POST", "/api/auth/password"): "change my own password",
    ("GET", "/api/auth/tokens"): "list my own API tokens",
    ("POST", "/api/auth/tokens"): "create an API token for myself (with at most my own permissions)",
    ("DELETE", "/api/auth/tokens/{token_id}"): "revoke one of my own API tokens",
    ("POST", "/logout"): "end my own UI session",
    ("GET", "/account/password"): "the form to change my own password",
    ("POST", "/account/password"): "change my own password from the UI",
}
SKIP_PATHS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
METHODS_SKIPPED = {"HEAD", "OPTIONS"}


def _is_public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC or any(path == p or path.startswith(p + "/") for p in PUBLIC_PREFIXES)


def _value_for(route: Any, name: str, clinic_id: int) -> str:
    if name == "clinic_id":
        return str(clinic_id)
    for param in route.dependant.path_params:
        if param.name == name:
            annotation = param.field_info.annotation
            if annotation is uuid.UUID or "UUID" in str(annotation):
                return str(uuid.uuid4())
    convertor = route.param_convertors.get(name)
    if convertor is not None and type(convertor).__name__ == "PathConvertor":
        return "x/y"
    return "1"


def _url(route: Any, clinic_id: int) -> str:
    path = route.path
    for name in route.param_convertors:
        path = path.replace("{" + name + ":path}", _value_for(route, name, clinic_id))
        path = path.replace("{" + name + "}", _value_for(route, name, clinic_id))
    return path


def _call(client: Any, method: str, url: str, route: Any) -> Any:
    kwargs: dict[str, Any] = {"follow_redirects": False}
    if route.body_field is not None:
        kwargs["json"] = {}
    return client.request(method, url, **kwargs)


@pytest.fixture
def setup(make_praxis):
    # Every installed plugin, plus a fixture plugin so plugin-contributed routes are always exercised.
    praxis = make_praxis(_installed_plus(PERM_PLUGIN))
    target = add_clinic(praxis, "Budapest")
    other = add_clinic(praxis, "Seoul", country="KR", timezone="Asia/Seoul", locale="ko")
    for clinic in (target, other):
        for name in praxis.runtime.available():
            praxis.plugins.enable(clinic, name, Actor.system("test"), with_dependencies=True)
    return praxis, target, other


def _installed_plus(extra: Any) -> list[Any]:
    from importlib.metadata import entry_points

    return [*entry_points(group="praxis.plugins"), extra]


def _routes(praxis: Any) -> list[tuple[str, Any]]:
    """(method, route) for every APIRoute, with the path and dependencies it has once included in the app.

    FastAPI 0.16x keeps included routers as lazy entries in ``app.routes``; ``iter_route_contexts`` (what
    the OpenAPI generator uses) flattens them.
    """
    app = create_app(praxis, start_worker=False)
    found = []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or route.path in SKIP_PATHS:
            continue
        for method in sorted(set(route.methods or ()) - METHODS_SKIPPED):
            found.append((method, route))
    return found


def test_every_route_requires_login_permission_and_membership(setup):
    praxis, target, other = setup
    routes = _routes(praxis)
    paths = {(m, r.path) for m, r in routes}
    # The enumeration sees the core's, the auth layer's and the plugins' routes.
    assert {("GET", "/api/users"), ("GET", "/api/clinics/{clinic_id}"),
            ("GET", "/api/clinics/{clinic_id}/x/permplug/secret")} <= paths
    stale = [k for k in [*PUBLIC, *SELF_SERVICE] if k not in paths]
    assert not stale, f"allow-list entries without a route: {stale}"

    anonymous = anonymous_client(praxis)
    powerless = client_for(praxis, create_user(praxis, [target], permissions=[]))
    outsider = client_for(praxis, create_user(praxis, [other], role="admin"))

    problems: list[str] = []
    # Self-service routes last: "DELETE /api/auth/tokens/1" may well revoke the caller's own token.
    routes.sort(key=lambda mr: (mr[0], mr[1].path) in SELF_SERVICE)
    for method, route in routes:
        url = _url(route, target)
        label = f"{method} {route.path}"
        if _is_public(method, route.path):
            continue
        response = _call(anonymous, method, url, route)
        redirect_to_login = (not route.path.startswith("/api") and response.status_code in (302, 303, 307)
                             and "login" in response.headers.get("location", ""))
        if response.status_code != 401 and not redirect_to_login:
            problems.append(f"{label}: anonymous got {response.status_code}, expected 401")
        response = _call(powerless, method, url, route)
        if (method, route.path) in SELF_SERVICE:
            if response.status_code in (401, 403, 404):
                problems.append(f"{label}: self-service route refused a logged-in user ({response.status_code})")
        elif response.status_code != 403:
            problems.append(f"{label}: a user without permissions got {response.status_code}, expected 403")
        if "{clinic_id}" in route.path:
            response = _call(outsider, method, url, route)
            if response.status_code != 404:
                problems.append(f"{label}: an admin of another clinic got {response.status_code}, expected 404")
    assert not problems, "\n".join(problems)


def test_the_route_checks_are_not_vacuous(setup):
    """The same requests succeed for an administrator of the clinic, so the 401/403/404 above mean something."""
    praxis, target, _ = setup
    admin = client_for(praxis, create_user(praxis, [target], role="admin"))
    assert admin.get(f"/api/clinics/{target}").status_code == 200
    assert admin.get("/api/users").status_code == 200
    assert admin.get(f"/api/clinics/{target}/x/permplug/secret").status_code == 200
    assert admin.get(f"/api/clinics/{target}/plugins").status_code == 200

