"""Table models and their API schemas, one module per domain. Importing this package
registers every table on the shared metadata (Alembic and the tests rely on it)."""

from app.models import (  # noqa: F401
    agency,
    api_client,
    audit,
    case,
    idempotency,
    panel,
    person,
    referral,
    refresh_token,
    user,
)
