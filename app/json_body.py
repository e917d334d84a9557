"""Bodies written to JSON once, for the busiest list reads: the case list, the action list
and the agenda.

Those reads answer with up to a hundred rows read through the driver (``app.rawsql``).
Validating each row into a pydantic model and then having FastAPI serialise the models took
a fifth to a third of such a request's CPU on the benchmark machine (docs/performance.md);
here the rows become plain dicts of JSON-ready values, written by orjson in one call. The
route still declares its pydantic model: it documents the response (OpenAPI) and the tests
hold every such body to it, key for key and value for value as pydantic would write them
(tests/test_json_bodies.py), as the schemathesis run holds it to the schema.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse

# UTC written as "Z", as pydantic writes it.
_OPTIONS = orjson.OPT_UTC_Z


class JSONBody(JSONResponse):
    """A response of dicts, lists and JSON-ready scalars (``uuid.UUID``, aware ``datetime``,
    ``date`` and ``str`` enums included, written as pydantic writes them). Also what a
    creation answers (``app.openapi.created``): a referral's body costs 3.3 µs to write this
    way, 13.4 µs through the standard library's encoder, which ``JSONResponse`` uses."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def dumps(content: Any) -> bytes:
    """``content`` as ``JSONBody`` writes it (for a body written once and sent again)."""
    return orjson.dumps(content, option=_OPTIONS)


def page(items: list[dict[str, Any]], next_cursor: str | None) -> JSONBody:
    """A ``Page`` (``app.pagination``) of rows."""
    return JSONBody({"items": items, "next_cursor": next_cursor})
