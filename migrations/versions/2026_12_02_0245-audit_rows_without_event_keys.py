"""audit_seal, audit_unsealed, audit_subject: their event named without a foreign key

Events are append-only and these rows are written only with their event or from it, so the
key cannot dangle; checking it cost PostgreSQL an index search and a row lock on the event
for every row written (half of inserting a list read's subjects). The chain's verification
reports a row naming no event.

Revision ID: 5b0c2e9d7a41
Revises: 92311fd205af
Create Date: 2026-12-02 02:45:00.000000+00:00
"""

from collections.abc import Sequence
from typing import Any

from alembic import op

revision: str = "5b0c2e9d7a41"
down_revision: str | None = "92311fd205af"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("audit_seal", "audit_unsealed", "audit_subject")
# SQLite rebuilds a table to change its constraints, and a table's triggers go with it:
# the append-only ones of the first revision (audit_seal) and of 92311fd205af (audit_subject).
SQLITE_TRIGGERS = {"audit_seal": ("UPDATE", "DELETE"), "audit_subject": ("UPDATE", "DELETE")}


def _key(table: str) -> str:
    return f"fk_{table}_event_id_audit_event"


def _rebuilt(table: str) -> dict[str, Any]:
    # audit_subject is a WITHOUT ROWID table on SQLite (its key is the table); keep it so.
    return {"table_kwargs": {"sqlite_with_rowid": False}} if table == "audit_subject" else {}


def _restore_sqlite_triggers(table: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for verb in SQLITE_TRIGGERS.get(table, ()):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb.lower()}")
        op.execute(
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'audit records are append-only: {verb} refused'); END"
        )


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None, **_rebuilt(table)) as batch_op:
            batch_op.drop_constraint(_key(table), type_="foreignkey")
        _restore_sqlite_triggers(table)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None, **_rebuilt(table)) as batch_op:
            batch_op.create_foreign_key(_key(table), "audit_event", ["event_id"], ["id"])
        _restore_sqlite_triggers(table)
