"""Table models and their API schemas, one module per domain. Importing this package
registers every table on the shared metadata (Alembic and the tests rely on it)."""

from app.models import (  # noqa: F401
    action,
    agency,
    api_client,
    audit,
    case,
    conference,
    idempotency,
    minutes,
    panel,
    person,
    referral,
    refresh_token,
    user,
)
