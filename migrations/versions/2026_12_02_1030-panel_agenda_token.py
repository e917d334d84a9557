"""panel.agenda_token: a value the database changes whenever a panel's agendas change

Triggers on every table a conference agenda reads (app.services.agenda_reads) set the token of
each panel a changed row belongs to (before and after the change) to a new random value, in
the same statement: an agenda built at one token is what the database holds while the token
stays. Random rather than counted, so that the token of a transaction that rolled back is
never given to another's changes.

Revision ID: 7c41e2a9b053
Revises: 5b0c2e9d7a41
Create Date: 2026-12-02 10:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c41e2a9b053"
down_revision: str | None = "5b0c2e9d7a41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each table an agenda reads, and the panels of one of its rows ({row}: NEW or OLD).
PANELS_OF = {
    "case_record": "SELECT {row}.panel_id",
    "case_action": "SELECT {row}.panel_id",
    "conference": "SELECT {row}.panel_id",
    "panel_member": "SELECT {row}.panel_id",
    "panel_role": "SELECT {row}.panel_id",
    "listing": "SELECT panel_id FROM conference WHERE id = {row}.conference_id",
    "case_exclusion": "SELECT panel_id FROM case_record WHERE id = {row}.case_id",
    "person": "SELECT panel_id FROM case_record WHERE subject_person_id = {row}.id",
}
# A new person is nobody's subject yet: only a change to a person's row can show.
VERBS = {table: ("INSERT", "UPDATE", "DELETE") for table in PANELS_OF} | {
    "person": ("UPDATE", "DELETE")
}
# The panel's own row: its type decides who may see it (a Channel panel is isolated).
PANEL_COLUMNS = "panel_type, is_active"
RANDOM = {"sqlite": "random()", "postgresql": "(random() * 9007199254740991)::bigint"}


def _bump(dialect: str, panels: str) -> str:
    return f"UPDATE panel SET agenda_token = {RANDOM[dialect]} WHERE id IN ({panels})"  # noqa: S608


def _sqlite_triggers() -> None:
    for table, panels in PANELS_OF.items():
        new, old = panels.format(row="NEW"), panels.format(row="OLD")
        which_panels = {"INSERT": new, "UPDATE": f"{new} UNION {old}", "DELETE": old}
        for verb in VERBS[table]:
            which = which_panels[verb]
            op.execute(
                f"CREATE TRIGGER agenda_changed_{table}_{verb.lower()} AFTER {verb} ON {table} "
                f"BEGIN {_bump('sqlite', which)}; END"
            )
    op.execute(
        f"CREATE TRIGGER agenda_changed_panel_update AFTER UPDATE OF {PANEL_COLUMNS} ON panel "
        f"BEGIN {_bump('sqlite', 'SELECT NEW.id')}; END"
    )


def _postgresql_triggers() -> None:
    for table, panels in PANELS_OF.items():
        new, old = panels.format(row="NEW"), panels.format(row="OLD")
        op.execute(
            f"CREATE FUNCTION agenda_changed_{table}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            "    IF TG_OP = 'INSERT' THEN\n"
            f"        {_bump('postgresql', new)};\n"
            "    ELSIF TG_OP = 'UPDATE' THEN\n"
            f"        {_bump('postgresql', f'{new} UNION {old}')};\n"
            "    ELSE\n"
            f"        {_bump('postgresql', old)};\n"
            "    END IF;\n"
            "    RETURN NULL;\n"
            "END $$"
        )
        op.execute(
            f"CREATE TRIGGER agenda_changed AFTER {' OR '.join(VERBS[table])} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION agenda_changed_{table}()"
        )
    op.execute(
        "CREATE FUNCTION agenda_changed_panel() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n    {_bump('postgresql', 'SELECT NEW.id')};\n    RETURN NULL;\nEND $$"
    )
    op.execute(
        f"CREATE TRIGGER agenda_changed AFTER UPDATE OF {PANEL_COLUMNS} ON panel "
        "FOR EACH ROW EXECUTE FUNCTION agenda_changed_panel()"
    )


def upgrade() -> None:
    with op.batch_alter_table("panel", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("agenda_token", sa.BigInteger(), server_default="0", nullable=False)
        )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in (*PANELS_OF, "panel"):
            op.execute(f"DROP TRIGGER agenda_changed ON {table}")
            op.execute(f"DROP FUNCTION agenda_changed_{table}()")
    else:
        for table, verbs in VERBS.items():
            for verb in verbs:
                op.execute(f"DROP TRIGGER agenda_changed_{table}_{verb.lower()}")
        op.execute("DROP TRIGGER agenda_changed_panel_update")
    with op.batch_alter_table("panel", schema=None) as batch_op:
        batch_op.drop_column("agenda_token")
