"""audit_subject: the cases a list read showed, indexed for the audit log's filters

Revision ID: 92311fd205af
Revises: d6eb58d18327
Create Date: 2026-11-25 16:53:29.654849+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "92311fd205af"
down_revision: str | None = "d6eb58d18327"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_subject",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["audit_event.id"], name=op.f("fk_audit_subject_event_id_audit_event")
        ),
        sa.PrimaryKeyConstraint("case_id", "event_id", name=op.f("pk_audit_subject")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("audit_subject", schema=None) as batch_op:
        batch_op.create_index("ix_audit_subject_event_id", ["event_id"], unique=False)
    # Append-only, like the event and seal tables (audit_refuse_change() is the first
    # revision's).
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


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_subject_append_only ON audit_subject")
        op.execute("DROP TRIGGER IF EXISTS audit_subject_no_truncate ON audit_subject")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_subject_no_{verb}")
    with op.batch_alter_table("audit_subject", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_subject_event_id")
    op.drop_table("audit_subject")
