"""Every route is still reached through the routers' one-regex shortcut (app.routing)."""

from __future__ import annotations

import re
import uuid

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Match, compile_path

from app.routing import IndexedRouter

_PARAM = re.compile(r"\{[^}]+\}")


def _operations(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]


def test_every_documented_operation_is_routed(app: FastAPI, client: TestClient) -> None:
    # Without a token a protected route answers 401, a public one answers on its own terms;
    # neither can answer 404 or 405, which is what a request that finds no route gets.
    operations = _operations(app)
    assert len(operations) > 60
    for method, template in operations:
        path = _PARAM.sub(lambda _: str(uuid.uuid4()), template)
        r = client.request(method, path)
        assert r.status_code not in (404, 405), (method, template, r.status_code, r.text)


def test_paths_no_route_has_still_answer_404_405_and_the_slash_redirect(
    client: TestClient,
) -> None:
    assert client.get("/api/v1/nowhere").status_code == 404
    assert client.get(f"/api/v1/cases/{uuid.uuid4()}/nowhere").status_code == 404
    assert client.delete("/api/v1/cases").status_code == 405
    moved = client.get("/api/v1/cases/", follow_redirects=False)
    assert moved.status_code == 307
    assert moved.headers["location"].endswith("/api/v1/cases")


def _scope(path: str) -> dict[str, object]:
    return {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}


def test_the_index_follows_routes_added_after_the_first_match() -> None:
    router = IndexedRouter(prefix="/things")

    @router.get("/{thing_id}")
    def one(thing_id: str) -> str:
        return thing_id

    index = router.path_index()
    assert index is not None
    assert index.match("/things/7")
    assert not index.match("/things")
    assert not index.match("/things/7/parts")

    @router.get("/{thing_id}/parts")
    def parts(thing_id: str) -> str:
        return thing_id

    index = router.path_index()
    assert index is not None
    assert index.match("/things/7/parts")
    assert router.matches(_scope("/elsewhere")) == (Match.NONE, {})


@pytest.mark.parametrize("root_path", ["", "/behind-a-proxy"])
def test_routes_are_found_below_a_root_path(root_path: str) -> None:
    router = IndexedRouter(prefix="/things")

    @router.get("/{thing_id}")
    def one(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    app = FastAPI()
    app.include_router(router)
    client = TestClient(app, root_path=root_path)
    assert client.get(f"{root_path}/things/7").json() == {"id": "7"}
    assert client.get(f"{root_path}/others/7").status_code == 404


def test_no_request_is_claimed_by_two_routes(app: FastAPI) -> None:
    # The app includes its routers busiest first (app.main) and FastAPI takes the first
    # route that matches: that order is free only if no request that one route answers
    # is also another's (a literal segment of one where another has a parameter included).
    routes = [
        (compile_path(context.path_format)[0], context.original_route.methods)
        for context in fastapi.routing.iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]
    operations = _operations(app)
    assert len(operations) > 60
    for method, template in operations:
        path = _PARAM.sub(lambda _: str(uuid.uuid4()), template)
        claimed = [
            regex.pattern for regex, methods in routes if method in methods and regex.match(path)
        ]
        assert len(claimed) == 1, (method, template, claimed)


def test_the_docs_list_the_sections_in_reading_order(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    tags = [t["name"] for t in spec["tags"]]
    assert tags[:3] == ["auth", "me", "agencies"]
    used = {t for ops in spec["paths"].values() for op in ops.values() for t in op["tags"]}
    assert used <= set(tags)
