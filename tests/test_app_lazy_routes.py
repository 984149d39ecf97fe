"""The app builds its route groups on first need (core.api.lazy_routes) and still serves every route the
same way: the first request to a group works, concurrent first requests work, the OpenAPI document lists
every route, and each group's declared paths cover all of its routes."""

from __future__ import annotations

import threading
from importlib.metadata import entry_points

from fastapi.testclient import TestClient

from core.api.app import create_app
from core.api.lazy_routes import check_coverage
from tests.auth.conftest import PERM_PLUGIN
from tests.auth_helpers import client_for, create_user
from tests.conftest import add_clinic


def _groups(app):  # type: ignore[no-untyped-def]
    return {g.group: g for g in app.lazy_groups}


def test_nothing_is_built_at_start_and_health_builds_nothing(make_praxis):
    app = create_app(make_praxis(), start_worker=False)
    assert app.lazy_groups and not any(g.built for g in app.lazy_groups)
    assert TestClient(app).get("/health").status_code == 200
    assert not any(g.built for g in app.lazy_groups)


def test_first_request_builds_only_the_groups_its_path_may_reach(make_praxis):
    praxis = make_praxis()
    clinic = add_clinic(praxis)
    client = client_for(praxis, create_user(praxis, [clinic]))
    answer = client.get(f"/api/clinics/{clinic}/records")
    assert answer.status_code == 200, answer.text
    built = {name for name, group in _groups(client.app).items() if group.built}
    assert built == {"records"}
    assert client.get(f"/api/clinics/{clinic}/rooms").status_code == 200
    assert _groups(client.app)["scheduling"].built and not _groups(client.app)["ui"].built


def test_unknown_paths_answer_404_without_building(make_praxis):
    client = TestClient(create_app(make_praxis(), start_worker=False))
    assert client.get("/favicon.ico").status_code == 404
    assert client.get("/api/nothing-here").status_code == 404
    assert not any(g.built for g in client.app.lazy_groups)


def test_openapi_lists_every_route_and_groups_cover_their_routes(make_praxis):
    praxis = make_praxis([*entry_points(group="praxis.plugins"), PERM_PLUGIN])
    app = create_app(praxis, start_worker=False)
    paths = TestClient(app).get("/openapi.json").json()["paths"]
    assert all(g.built for g in app.lazy_groups)
    for path in ("/health", "/api/auth/login", "/api/clinics/{clinic_id}/records", "/api/messaging/callbacks/"
                 "{plugin}/{clinic_id}", f"/api/clinics/{{clinic_id}}/x/{PERM_PLUGIN.name}/secret"):
        assert any(p.startswith(path) for p in paths), path
    check_coverage(app)
    first = app.openapi_schema
    assert first is not None and app.openapi() is first  # not built again because building changed the routes


def test_the_ui_state_is_there_before_any_page_was_asked_for(make_praxis):
    app = create_app(make_praxis(), start_worker=False)
    assert app.state.ui.env is not None
    assert _groups(app)["ui"].built
    page = TestClient(app).get("/login")
    assert page.status_code == 200 and "<form" in page.text
    assert TestClient(app).get("/static/app.css").status_code == 200


def test_concurrent_first_requests_build_each_group_once_and_all_answer(make_praxis):
    praxis = make_praxis()
    clinic = add_clinic(praxis)
    user = create_user(praxis, [clinic])
    client = client_for(praxis, user)  # a fresh app, shared by every thread below
    app = client.app
    urls = [f"/api/clinics/{clinic}/patients", f"/api/clinics/{clinic}/records", f"/api/clinics/{clinic}/rooms",
            f"/api/clinics/{clinic}/labs/providers", f"/api/clinics/{clinic}/messaging/rules", "/api/auth/me",
            f"/api/clinics/{clinic}", f"/api/clinics/{clinic}/appointments?day=2030-01-07"] * 3
    statuses: dict[str, set[int]] = {}
    builds = []
    for group in app.lazy_groups:
        original = group._build

        def counting(target, _original=original, _name=group.group):  # type: ignore[no-untyped-def]
            builds.append(_name)
            _original(target)

        group._build = counting
    barrier = threading.Barrier(len(urls))

    def ask(url: str) -> None:
        barrier.wait()
        statuses.setdefault(url, set()).add(client.get(url).status_code)

    threads = [threading.Thread(target=ask, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(codes == {200} for codes in statuses.values()), statuses
    assert len(builds) == len(set(builds))
