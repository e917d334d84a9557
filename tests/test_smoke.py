import gc

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.builders import Principals


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ok"


def test_admin_reads_an_agency(client: TestClient, principals: Principals) -> None:
    r = client.get(f"/api/v1/agencies/{principals.home.id}", headers=principals.admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Home Agency"
    assert r.headers["etag"] == '"1"'


def test_start_up_keeps_what_it_built_out_of_later_garbage_collections(
    shared_app: FastAPI,
) -> None:
    # A full collection over the routes, models and metadata stopped every request in
    # flight for ~80 ms (app.main._freeze_startup_objects).
    gc.unfreeze()
    try:
        with TestClient(shared_app):
            assert gc.get_freeze_count() > 50_000
    finally:
        gc.unfreeze()
