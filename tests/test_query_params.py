"""The list routes that read their query string into one model (app.query_params) answer
and document it as FastAPI's own parameters did: lax values, bounds, 422 problem+json naming
the parameter, unknown parameters ignored, a repeated one's last value, each documented."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.builders import Principals
from tests.conferencing import problem

ROUTES = {
    "/api/v1/cases": ["panel_id", "status", "risk_level", "limit", "cursor"],
    "/api/v1/actions": ["agency_id", "panel_id", "status", "overdue", "limit", "cursor"],
}

BAD: list[tuple[str, dict[str, str], str]] = [
    (route, params, field)
    for route in ROUTES
    for params, field in [
        ({"limit": "0"}, "query.limit"),
        ({"limit": "201"}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"panel_id": "nope"}, "query.panel_id"),
        ({"status": "bogus"}, "query.status"),
        ({"cursor": "x" * 513}, "query.cursor"),
    ]
] + [
    ("/api/v1/actions", {"overdue": "maybe"}, "query.overdue"),
    ("/api/v1/actions", {"agency_id": "12"}, "query.agency_id"),
    ("/api/v1/cases", {"risk_level": "extreme"}, "query.risk_level"),
]


def _fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["errors"]}


@pytest.mark.parametrize(("route", "params", "field"), BAD)
def test_a_bad_value_is_422_naming_the_parameter(
    client: TestClient, principals: Principals, route: str, params: dict[str, str], field: str
) -> None:
    r = client.get(route, params=params, headers=principals.member.headers)
    body = problem(r, 422)
    assert _fields(body) == {field}
    assert "x" * 100 not in r.text  # the value is never echoed


@pytest.mark.parametrize("route", ROUTES)
def test_lax_values_unknown_parameters_and_the_last_of_a_repeated_one(
    client: TestClient, principals: Principals, route: str
) -> None:
    headers = principals.member.headers
    ok = client.get(f"{route}?limit=5&status=open&whatever=1", headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["items"] == []  # this principal sits on no panel
    assert client.get(f"{route}?limit=0&limit=5", headers=headers).status_code == 200
    problem(client.get(f"{route}?limit=5&limit=0", headers=headers), 422)


@pytest.mark.parametrize("route", ROUTES)
def test_no_token_is_401_before_the_query_is_read(client: TestClient, route: str) -> None:
    problem(client.get(route, params={"limit": "0"}), 401)


@pytest.mark.parametrize(("route", "names"), ROUTES.items())
def test_each_parameter_is_documented(app: FastAPI, route: str, names: list[str]) -> None:
    parameters = app.openapi()["paths"][route]["get"]["parameters"]
    assert [p["name"] for p in parameters] == names
    assert {p["in"] for p in parameters} == {"query"}
    assert not any(p["required"] for p in parameters)
    limit = next(p for p in parameters if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 200)
    assert limit["schema"]["default"] == 50
    status = next(p for p in parameters if p["name"] == "status")
    assert "open" in status["schema"]["anyOf"][0]["enum"]
