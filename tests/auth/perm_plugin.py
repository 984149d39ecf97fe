"""A test plugin that adds permissions (manifest and hook) and one guarded route."""

from fastapi import APIRouter, Depends

from core.auth.deps import Principal, clinic_permission
from plugin_sdk import Category, PermissionSpec, PluginManifest, hookimpl

manifest = PluginManifest(
    name="permplug", version="1.0.0", title="Permission plugin", description="Adds permissions.",
    category=Category.other, api=">=1.0,<2",
    permissions=(PermissionSpec(code="permplug.break_glass", title="Open any record in an emergency"),),
)

router = APIRouter()


@router.get("/secret")
def secret(clinic_id: int, who: Principal = Depends(clinic_permission("permplug.break_glass"))) -> dict:
    return {"clinic_id": clinic_id, "user": who.user_id}


@hookimpl
def praxis_permissions():
    return [
        PermissionSpec(code="permplug.export", title="Export everything"),
        PermissionSpec(code="other.stolen", title="Outside the plugin's prefix: ignored"),
    ]


@hookimpl
def praxis_routes():
    return router
