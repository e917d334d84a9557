"""A hot list route's query parameters, read into one pydantic model at pydantic's cost.

FastAPI (0.165) inspects every declared query parameter on every request: whether its
annotation is a sequence or a model, its aliases, then validates it alone. Reading the
overdue-actions list's six optional parameters this way instead took its CPU a request from
3.14 to 2.91 ms on SQLite (docs/performance.md, tenth round). A hot route declares a model
and reads it in its body, after its caller's dependency:

    async def list_actions(caller: Reader, request: Request) -> Response:
        q = query(ActionListQuery, request)

(not as a dependency of its own: FastAPI works out every dependency's cache key on every
request, a percent or two of the overdue list's CPU; eighteenth round) with
``openapi_extra=documented(ActionListQuery)``, which documents each field as FastAPI
would have. The query string is validated in one call, as FastAPI validates a parameter (lax:
``"50"`` is 50, ``"true"`` is true; a repeated parameter's last value; unknown parameters
ignored), and a bad value is FastAPI's own ``RequestValidationError`` (``loc`` ``["query",
name]``), answered 422 problem+json as before.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def query(model: type[M], request: Request) -> M:
    """``model`` read from the request's query string."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("query", *err["loc"])} for err in exc.errors(include_url=False)]
        ) from None


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route reading ``model``: one query parameter per field, its
    schema as pydantic writes it (enums inlined), as FastAPI documents a parameter."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    parameters = []
    for name, field_schema in schema["properties"].items():
        description = field_schema.pop("description", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": _inlined(field_schema, definitions),
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return {"parameters": parameters}


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inlined(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    return schema
