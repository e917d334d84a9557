"""Table models and their API schemas, one module per domain. Importing this package
registers every table on the shared metadata (Alembic and the tests rely on it)."""

from app.models import agency, api_client, audit, refresh_token, user  # noqa: F401
