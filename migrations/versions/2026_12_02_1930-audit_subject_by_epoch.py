"""audit_subject: keyed by the event's epoch (event id // 512) first, then case and event

Keyed by case first, each row the sealer wrote went to a random place in the whole index,
and a row cost more the larger the index grew; an epoch's rows are written together.
The table is rebuilt (a primary key cannot change in place on SQLite), its rows copied with
their epoch, and its index and append-only triggers made again.

Revision ID: 3e8d1f6a2c57
Revises: 7c41e2a9b053
Create Date: 2026-12-02 19:30:00.000000+00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "3e8d1f6a2c57"
down_revision: str | None = "7c41e2a9b053"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _drop_append_only_triggers() -> None:
    # On SQLite a trigger is named in the schema (it would clash with the rebuilt table's);
    # on PostgreSQL the triggers go with the old table.
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_subject_no_{verb}")


def _create_append_only_triggers() -> None:
    # As 92311fd205af made them (audit_refuse_change() is the first revision's).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_subject_append_only BEFORE UPDATE OR DELETE ON audit_subject "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER audit_subject_no_truncate BEFORE TRUNCATE ON audit_subject "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_subject_no_{verb.lower()} BEFORE {verb} ON audit_subject "
            f"BEGIN SELECT RAISE(ABORT, 'audit records are append-only: {verb} refused'); END"
        )


def _rebuild(columns: list[sa.Column[Any]], copy: str) -> None:
    """Make audit_subject anew with these columns (all of them its key) from the old one's
    rows, selected by ``copy`` from audit_subject_old."""
    _drop_append_only_triggers()
    op.drop_index("ix_audit_subject_event_id", table_name="audit_subject")
    op.rename_table("audit_subject", "audit_subject_old")
    if op.get_bind().dialect.name == "postgresql":
        # Constraint names are index names there, one namespace for the schema.
        op.execute(
            "ALTER TABLE audit_subject_old RENAME CONSTRAINT pk_audit_subject"
            " TO pk_audit_subject_old"
        )
    op.create_table(
        "audit_subject",
        *columns,
        sa.PrimaryKeyConstraint(*(c.name for c in columns), name=op.f("pk_audit_subject")),
        sqlite_with_rowid=False,
    )
    names = ", ".join(c.name for c in columns)
    order = ", ".join(str(i + 1) for i in range(len(columns)))
    op.execute(f"INSERT INTO audit_subject ({names}) {copy} ORDER BY {order}")
    op.drop_table("audit_subject_old")
    op.create_index("ix_audit_subject_event_id", "audit_subject", ["event_id"], unique=False)
    _create_append_only_triggers()


def upgrade() -> None:
    _rebuild(
        [
            sa.Column("epoch", sa.BigInteger(), nullable=False),
            sa.Column("case_id", sa.Uuid(), nullable=False),
            sa.Column("event_id", EVENT_ID, nullable=False),
        ],
        # 512: app.models.audit.SUBJECT_EPOCH_EVENTS when this revision was written.
        "SELECT event_id / 512, case_id, event_id FROM audit_subject_old",
    )


def downgrade() -> None:
    _rebuild(
        [
            sa.Column("case_id", sa.Uuid(), nullable=False),
            sa.Column("event_id", EVENT_ID, nullable=False),
        ],
        "SELECT case_id, event_id FROM audit_subject_old",
    )
