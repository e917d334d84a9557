"""audit_subject: no index by event

The index found an event's rows for the chain's verification, which now reads them by the
epoch the event id gives (app.services.audit_chain). Every row the sealer wrote paid for it:
a second B-tree to write, a third of what indexing a list read's fifty cases cost on SQLite.

Revision ID: 9a4c7e1b2d36
Revises: 3e8d1f6a2c57
Create Date: 2026-12-03 08:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9a4c7e1b2d36"
down_revision: str | None = "3e8d1f6a2c57"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_audit_subject_event_id", table_name="audit_subject")


def downgrade() -> None:
    op.create_index("ix_audit_subject_event_id", "audit_subject", ["event_id"], unique=False)
