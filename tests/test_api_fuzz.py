"""A bounded schemathesis run over the whole OpenAPI document, as an admin and as an auditor.

No response may be a 5xx, and every response must match its declared status codes, content
type and schema; invalid input must be refused. The operations are read from the app's own
OpenAPI document, so routes added later are fuzzed here with no change to this file.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Environment, Settings
from app.main import create_app
from tests.builders import Principals

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
METHODS = {"get", "post", "put", "patch", "delete"}
FUZZ = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _operations() -> list[tuple[str, str]]:
    document = create_app(Settings(env=Environment.TEST, database_url="sqlite://")).openapi()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    ]


OPERATIONS = _operations()


def test_the_document_lists_the_api() -> None:
    assert ("GET", "/api/v1/agencies/{agency_id}") in OPERATIONS
    assert ("POST", "/api/v1/auth/token") in OPERATIONS
    assert len(OPERATIONS) >= 20


@pytest.mark.parametrize("role", ["admin", "auditor"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_never_misbehaves(
    app: FastAPI, principals: Principals, role: str, method: str, path: str
) -> None:
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]
    headers = getattr(principals, role).headers

    @FUZZ
    @given(case=operation.as_strategy())
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()
