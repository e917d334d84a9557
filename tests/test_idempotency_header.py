"""The create routes read their Idempotency-Key header themselves (app.openapi.idempotency_key),
not as a FastAPI parameter: they document and bound it exactly as FastAPI did."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Header
from fastapi.testclient import TestClient

from tests.builders import Principals
from tests.conferencing import problem


def _as_fastapi_declares_it() -> dict[str, Any]:
    """The parameter FastAPI documents for the header as the routes used to declare it."""
    probe = FastAPI()

    @probe.post("/probe")
    async def declared(
        key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                min_length=1,
                max_length=200,
                description="Retries with the same key and body return the first response",
            ),
        ] = None,
    ) -> None:
        return None

    parameters = probe.openapi()["paths"]["/probe"]["post"]["parameters"]
    assert len(parameters) == 1
    parameter: dict[str, Any] = parameters[0]
    return parameter


IDEMPOTENT_CREATES = {
    "/api/v1/agencies",
    "/api/v1/users",
    "/api/v1/panels",
    "/api/v1/referrals",
    "/api/v1/cases/{case_id}/consents",
    "/api/v1/cases/{case_id}/exclusions",
    "/api/v1/cases/{case_id}/actions",
    "/api/v1/conferences",
    "/api/v1/conferences/{conference_id}/listings",
    "/api/v1/conferences/{conference_id}/attendance",
    "/api/v1/conferences/{conference_id}/minutes/{listing_id}/amendments",
}


def test_every_create_documents_the_header_as_fastapi_would(app: FastAPI) -> None:
    expected = _as_fastapi_declares_it()
    documenting = set()
    for path, operations in app.openapi()["paths"].items():
        for operation in operations.values():
            found = [p for p in operation.get("parameters", []) if p["name"] == "Idempotency-Key"]
            if found:
                assert found == [expected], path
                documenting.add(path)
    assert documenting == IDEMPOTENT_CREATES


@pytest.mark.parametrize(
    ("value", "error"), [("", "string_too_short"), ("k" * 201, "string_too_long")]
)
def test_a_key_out_of_bounds_is_fastapis_own_422(
    client: TestClient, principals: Principals, value: str, error: str
) -> None:
    r = client.post(
        "/api/v1/agencies",
        json={"name": "Bounded", "kind": "fire"},
        headers={**principals.admin.headers, "Idempotency-Key": value},
    )
    body = problem(r, 422)
    assert [e["field"] for e in body["errors"]] == ["header.Idempotency-Key"]
    assert "k" * 100 not in r.text  # the value is never echoed


def test_a_key_at_its_bounds_is_taken(client: TestClient, principals: Principals) -> None:
    for n, key in enumerate(["k", "k" * 200]):
        headers = {**principals.admin.headers, "idempotency-key": key}
        body = {"name": f"Bounded {n}", "kind": "fire"}
        first = client.post("/api/v1/agencies", json=body, headers=headers)
        again = client.post("/api/v1/agencies", json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
