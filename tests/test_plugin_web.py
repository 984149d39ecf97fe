"""plugin_sdk.web: plugin routes check who calls through the core (401/404/403 like core routes), get a Caller
with the plugin's context in the URL's clinic, audit as the user, save their own settings and answer errors
in the core's JSON shape. The fixture plugin is this module itself (it imports only plugin_sdk)."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, SecretStr
from sqlmodel import Session, select

from plugin_sdk import Category, FieldError, PermissionSpec, PluginManifest, ValidationFailed, hookimpl
from plugin_sdk.web import Caller, RouteError, require


class WebSettings(BaseModel):
    greeting: str = Field("hello", max_length=20)
    api_key: SecretStr | None = None


manifest = PluginManifest(
    name="webplug", version="1.0.0", title="Web plugin", description="Routes guarded through plugin_sdk.web.",
    category=Category.other, api=">=1.0,<2", settings=WebSettings,
    permissions=(PermissionSpec(code="webplug.use", title="Use the web plugin"),),
)

router = APIRouter()


@router.get("/whoami")
def whoami(caller: Caller = Depends(require("webplug.use"))) -> dict[str, Any]:
    return {"user_id": caller.user_id, "name": caller.name, "clinic_id": caller.clinic_id,
            "ctx_clinic": caller.ctx.clinic.id, "plugin": caller.ctx.plugin, "has_use": caller.has("webplug.use"),
            "greeting": caller.ctx.settings.greeting}


@router.post("/act")
def act(body: dict[str, Any], caller: Caller = Depends(require("webplug.use"))) -> dict[str, Any]:
    if body.get("fail") == "route":
        raise RouteError(409, "already_done", "this was done before", hint="reload")
    if body.get("fail") == "field":
        raise ValidationFailed([FieldError("reason", "give a reason", "required")])
    caller.audit("acted", target="thing:1", data={"n": body.get("n")})
    return {"ok": True}


@router.put("/settings")
def settings(body: dict[str, Any], caller: Caller = Depends(require("webplug.use"))) -> dict[str, Any]:
    return caller.save_settings(body)


@hookimpl
def praxis_routes() -> APIRouter:
    return router


ENTRY = EntryPoint(name="webplug", value="tests.test_plugin_web", group="praxis.plugins")


@pytest.fixture
def world(make_praxis: Any) -> Any:
    from core.audit import Actor
    from tests.conftest import add_clinic

    praxis = make_praxis([ENTRY])
    target = add_clinic(praxis, "Budapest")
    other = add_clinic(praxis, "Szeged")
    for clinic in (target, other):
        praxis.plugins.enable(clinic, "webplug", Actor.system("test"))
    return praxis, target, other


def test_require_answers_401_404_403_and_gives_the_caller(world: Any) -> None:
    from tests.auth_helpers import anonymous_client, client_for, create_user

    praxis, target, other = world
    url = f"/api/clinics/{target}/x/webplug/whoami"
    assert anonymous_client(praxis).get(url).status_code == 401
    outsider = client_for(praxis, create_user(praxis, [other], role="admin"))
    assert outsider.get(url).status_code == 404
    powerless = client_for(praxis, create_user(praxis, [target], permissions=["patients.view"]))
    refused = powerless.get(url)
    assert refused.status_code == 403 and "webplug.use" in refused.json()["message"]
    user = create_user(praxis, [target], permissions=["webplug.use"], name="Dr. Web")
    answer = client_for(praxis, user).get(url)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"user_id": user, "name": "Dr. Web", "clinic_id": target, "ctx_clinic": target,
                             "plugin": "webplug", "has_use": True, "greeting": "hello"}


def test_disabled_plugin_answers_404_before_anything(world: Any) -> None:
    from core.audit import Actor
    from tests.auth_helpers import anonymous_client, client_for, create_user

    praxis, target, _ = world
    admin = client_for(praxis, create_user(praxis, [target], role="admin"))
    praxis.plugins.disable(target, "webplug", Actor.system("test"))
    assert admin.get(f"/api/clinics/{target}/x/webplug/whoami").status_code == 404
    assert anonymous_client(praxis).get(f"/api/clinics/{target}/x/webplug/whoami").status_code == 404


def test_audit_is_made_as_the_user_and_errors_have_the_core_shape(world: Any) -> None:
    from core.models.audit import AuditEntry
    from tests.auth_helpers import client_for, create_user

    praxis, target, _ = world
    user = create_user(praxis, [target], role="admin", name="Dr. Audit")
    client = client_for(praxis, user)
    base = f"/api/clinics/{target}/x/webplug"
    assert client.post(f"{base}/act", json={"n": 3}).json() == {"ok": True}
    with Session(praxis.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "webplug.acted")).one()
    assert (entry.actor_id, entry.actor_name, entry.clinic_id, entry.target, entry.data) == (
        user, "Dr. Audit", target, "thing:1", {"n": 3})

    conflict = client.post(f"{base}/act", json={"fail": "route"})
    assert conflict.status_code == 409
    assert conflict.json() == {"error": "already_done", "message": "this was done before", "hint": "reload"}
    invalid = client.post(f"{base}/act", json={"fail": "field"})
    assert invalid.status_code == 422
    assert invalid.json()["fields"] == [{"field": "reason", "message": "give a reason", "code": "required"}]


def test_save_settings_keeps_other_fields_encrypts_secrets_and_validates(world: Any) -> None:
    from core.models.audit import AuditEntry
    from tests.auth_helpers import client_for, create_user

    praxis, target, _ = world
    user = create_user(praxis, [target], role="admin")
    client = client_for(praxis, user)
    base = f"/api/clinics/{target}/x/webplug"
    saved = client.put(f"{base}/settings", json={"api_key": "s3cret"})
    assert saved.status_code == 200, saved.text
    assert saved.json()["api_key"] == {"set": True}
    saved = client.put(f"{base}/settings", json={"greeting": "szia"})
    assert saved.json()["greeting"] == "szia" and saved.json()["api_key"] == {"set": True}
    ctx = praxis.runtime.context("webplug", target)
    assert ctx.settings.api_key.get_secret_value() == "s3cret"
    assert client.get(f"{base}/whoami").json()["greeting"] == "szia"
    too_long = client.put(f"{base}/settings", json={"greeting": "x" * 50})
    assert too_long.status_code == 422 and too_long.json()["fields"][0]["field"] == "greeting"
    with Session(praxis.engine) as session:
        actors = session.exec(select(AuditEntry.actor_id).where(AuditEntry.action == "plugin.settings_changed")).all()
    assert actors == [user, user]


def test_cookie_sessions_need_the_csrf_token_on_writes(world: Any) -> None:
    from tests.auth_helpers import anonymous_client, create_user

    praxis, target, _ = world
    create_user(praxis, [target], role="admin", login="webadmin", password="correct horse battery")
    client = anonymous_client(praxis)
    login = client.post("/api/auth/login", json={"login": "webadmin", "password": "correct horse battery"})
    assert login.status_code == 200, login.text
    url = f"/api/clinics/{target}/x/webplug/act"
    assert client.get(f"/api/clinics/{target}/x/webplug/whoami").status_code == 200
    assert client.post(url, json={"n": 1}).status_code == 403
    csrf = login.json().get("csrf_token") or client.get("/api/auth/me").json()["csrf_token"]
    assert client.post(url, json={"n": 1}, headers={"X-CSRF-Token": csrf}).status_code == 200
