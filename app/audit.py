"""Record audit events, one typed call each, inside the caller's transaction.

``record(session, actor, AuditAction.X, ...)`` inserts the event and queues it for sealing; if
the transaction rolls back, the event goes with the change it described, and if the insert
fails, the request fails. Values are never free text: actions are an enum, outcomes too.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from app.actor import Actor
from app.models.base import utcnow
from app.rawsql import READ_UNIT, Raw
from app.services.principals import PROOF, PrincipalUnconfirmed, Proof, confirm_sql


class AuditAction(StrEnum):
    AUTH_LOGIN = "auth.login"
    AUTH_CLIENT_TOKEN = "auth.client_token"
    AUTH_REFRESH = "auth.refresh"
    AUTH_REFRESH_REUSE = "auth.refresh_reuse"
    AUTH_REVOKE = "auth.revoke"
    AUTH_LOCKOUT = "auth.lockout"
    AUTH_TOKEN_REJECTED = "auth.token_rejected"
    ACCESS_REFUSED = "access.refused"
    SELF_READ = "self.read"
    PASSWORD_CHANGE = "self.password_change"
    MFA_ENROL_START = "self.mfa_enrol_start"
    MFA_ENROL_CONFIRM = "self.mfa_enrol_confirm"
    AGENCY_LIST = "agency.list"
    AGENCY_READ = "agency.read"
    AGENCY_CREATE = "agency.create"
    AGENCY_UPDATE = "agency.update"
    USER_LIST = "user.list"
    USER_READ = "user.read"
    USER_CREATE = "user.create"
    USER_UPDATE = "user.update"
    API_CLIENT_LIST = "api_client.list"
    API_CLIENT_READ = "api_client.read"
    API_CLIENT_CREATE = "api_client.create"
    API_CLIENT_UPDATE = "api_client.update"
    API_CLIENT_ROTATE_SECRET = "api_client.rotate_secret"
    PANEL_LIST = "panel.list"
    PANEL_READ = "panel.read"
    PANEL_CREATE = "panel.create"
    PANEL_UPDATE = "panel.update"
    PANEL_MEMBERS_READ = "panel.members_read"
    PANEL_MEMBERS_UPDATE = "panel.members_update"
    PANEL_TYPES_READ = "panel_type.list"
    PERSON_SEARCH = "person.search"
    PERSON_READ = "person.read"
    PERSON_CREATE = "person.create"
    REFERRAL_SUBMIT = "referral.submit"
    REFERRAL_LIST = "referral.list"
    REFERRAL_READ = "referral.read"
    REFERRAL_AMEND = "referral.amend"
    REFERRAL_SCREEN = "referral.screen"
    REFERRAL_DECIDE = "referral.decide"
    CASE_OPEN = "case.open"
    CASE_LIST = "case.list"
    CASE_READ = "case.read"
    CASE_UPDATE = "case.update"
    CONSENT_LIST = "consent.list"
    CONSENT_RECORD = "consent.record"
    EXCLUSION_LIST = "exclusion.list"
    EXCLUSION_ADD = "exclusion.add"
    EXCLUSION_REMOVE = "exclusion.remove"
    CONFERENCE_CREATE = "conference.create"
    CONFERENCE_LIST = "conference.list"
    CONFERENCE_READ = "conference.read"
    CONFERENCE_UPDATE = "conference.update"
    CONFERENCE_FINALISE = "conference.finalise"
    CALENDAR_READ = "conference.calendar_read"
    CALENDAR_FEED_ISSUE = "conference.calendar_feed_issue"
    AGENDA_READ = "agenda.read"
    AGENDA_PUBLISH = "agenda.publish"
    AGENDA_REORDER = "agenda.reorder"
    LISTING_ADD = "listing.add"
    LISTING_REMOVE = "listing.remove"
    ATTENDANCE_LIST = "attendance.list"
    ATTENDANCE_RECORD = "attendance.record"
    ATTENDANCE_UPDATE = "attendance.update"
    MINUTES_READ = "minutes.read"
    MINUTES_WRITE = "minutes.write"
    MINUTES_AMEND = "minutes.amend"
    ACTION_CREATE = "action.create"
    ACTION_LIST = "action.list"
    ACTION_READ = "action.read"
    ACTION_UPDATE = "action.update"
    AUDIT_QUERY = "audit.query"
    AUDIT_EXPORT = "audit.export"
    AUDIT_VERIFY = "audit.verify"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    CONFLICT = "conflict"


# An event's columns, in the order ``record`` gives their values, with their SQL types.
_EVENT_COLUMNS = (
    ("occurred_at", "TIMESTAMP WITH TIME ZONE"),
    ("actor_type", "VARCHAR"),
    ("actor_id", "UUID"),
    ("actor_agency_id", "UUID"),
    ("action", "VARCHAR"),
    ("outcome", "VARCHAR"),
    ("resource_type", "VARCHAR"),
    ("resource_id", "VARCHAR"),
    ("case_id", "UUID"),
    ("person_id", "UUID"),
    ("purpose", "VARCHAR"),
    ("source_ip", "VARCHAR"),
    ("request_id", "VARCHAR"),
    ("changes", "JSON"),
    ("detail", "JSON"),
)
_INTO_EVENTS = "INSERT INTO audit_event (" + ", ".join(name for name, _ in _EVENT_COLUMNS) + ")"
# Written through the driver (app.rawsql): every request runs it. On PostgreSQL the event and
# its queue row go in one statement (one round trip fewer on every request).
_INSERT_EVENT = _INTO_EVENTS + " VALUES (" + ", ".join("?" * len(_EVENT_COLUMNS)) + ")"
_INSERT_EVENT_RETURNING = _INSERT_EVENT + " RETURNING id"
# Constants only, no values: the S608 warning does not apply.
_INSERT_EVENT_QUEUED = (
    "WITH event AS (" + _INSERT_EVENT_RETURNING + ")"  # noqa: S608
    " INSERT INTO audit_unsealed (event_id) SELECT id FROM event"
)
# The same, written only while the actor's principal reads as it did (``{proof}``, a query
# returning a row if so); the count of events written (1 or 0). Typed casts: the values are
# selected, not inserted as a VALUES row, so nothing else tells their types.
_INSERT_EVENT_PROVEN = (
    "WITH proof AS ({proof}), event AS ("  # noqa: S608 (constants only)
    + _INTO_EVENTS
    + " SELECT "
    + ", ".join(f"CAST(? AS {sql_type})" for _, sql_type in _EVENT_COLUMNS)
    + " WHERE EXISTS (SELECT 1 FROM proof) RETURNING id),"
    " queued AS (INSERT INTO audit_unsealed (event_id) SELECT id FROM event RETURNING event_id)"
    " SELECT count(*) FROM queued"
)
# (case id, subject person id) pairs: UUIDs, or ids as the driver returned them from a row.
Subjects = Sequence[tuple[Any, Any]]


def record(
    session: Session,
    actor: Actor,
    action: AuditAction,
    *,
    outcome: Outcome = Outcome.SUCCESS,
    resource_type: str | None = None,
    resource_id: uuid.UUID | str | None = None,
    case_id: uuid.UUID | None = None,
    person_id: uuid.UUID | None = None,
    changes: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
    subjects: Subjects | None = None,
    subject_texts: list[list[str | None]] | None = None,
) -> None:
    """Append one audit event to the current transaction and queue it for sealing.

    ``subjects``: for a read that showed several cases, the (case id, subject person id) of
    each, kept in the event's ``detail["subjects"]`` and sealed with it: one event per
    request however many cases it showed, so a page of fifty costs the sealer one seal, not
    fifty. The sealer indexes them in ``audit_subject`` for the auditors' case and person
    filters (``app.services.audit_chain``), in batches, off the request's path.
    ``subject_texts``: the same, already as the event's text writes them (``Raw.to_id_text``),
    for a read that shows the same cases again and again.
    """
    raw = Raw(session)
    deferred: list[tuple[Any, ...]] | None = session.info.get(READ_UNIT)  # a read's unit
    if subjects and subject_texts is None:
        subject_texts = [[raw.to_id_text(c), raw.to_id_text(p)] for c, p in subjects]
    if subject_texts:
        pairs = subject_texts
        detail = {**(detail or {}), "subjects": pairs}
        if len(pairs) == 1 and case_id is None and person_id is None:
            case_id, person_id = (None if v is None else uuid.UUID(v) for v in pairs[0])
    values = (
        raw.timestamp(utcnow()),
        actor.kind.value,
        raw.id(actor.id),
        raw.id(actor.agency_id),
        action.value,
        outcome.value,
        resource_type,
        None if resource_id is None else str(resource_id)[:64],
        raw.id(case_id),
        raw.id(person_id),
        actor.meta.purpose,
        actor.meta.source_ip,
        actor.meta.request_id,
        raw.json(changes),
        raw.json(detail),
    )
    if deferred is not None:
        deferred.append(values)
        return
    _insert(raw, values)


def _insert(raw: Raw, values: tuple[Any, ...]) -> None:
    if not raw.sqlite:
        # In a write unit, with its next message (its COMMIT, most often): app.pending.
        raw.later(_INSERT_EVENT_QUEUED, values)
        return
    row = raw.one(_INSERT_EVENT_RETURNING, values)
    assert row is not None
    raw.run("INSERT INTO audit_unsealed (event_id) VALUES (?)", (row[0],))


def write_deferred(session: Session) -> None:
    """Write the events a read's unit of work recorded, just before its commit.

    A read writes nothing but its events, so on PostgreSQL its unit runs in autocommit mode
    (``app.db``): two round trips fewer, ``BEGIN`` and ``COMMIT``. Its events wait until the
    read has succeeded and are written last, in one statement, or inside ``BEGIN`` when
    there are several: as inside one transaction, a read that fails keeps none of them, and
    no answer leaves before they are committed.
    """
    pending: list[tuple[Any, ...]] | None = session.info.get(READ_UNIT)
    proof: Proof | None = session.info.pop(PROOF, None)
    if pending is None:
        # A write unit: its events are written already. Started from a remembered actor, it
        # confirms it with its COMMIT (app.services.principals).
        if proof is not None:
            Raw(session).later(confirm_sql(proof), proof.params)
        return
    if not pending:
        if proof is not None:
            raise PrincipalUnconfirmed  # every read records its event; none is no proof
        return
    session.info[READ_UNIT] = []
    raw = Raw(session)
    raw.read_only = False
    if proof is not None and len(pending) == 1:
        # The actor was remembered (app.services.principals): the event is written only if
        # the principal's row still reads as it did, in the same statement.
        written = raw.one(_proven(proof.sql), (*proof.params, *pending[0]))
        if written is None or not written[0]:
            raise PrincipalUnconfirmed
        return
    if proof is not None and raw.one(proof.sql, proof.params) is None:
        raise PrincipalUnconfirmed
    if len(pending) > 1 and raw.in_autocommit():
        raw.run("BEGIN", ())  # the unit's commit sends COMMIT: the driver sees a transaction
    for values in pending:
        _insert(raw, values)


@functools.cache
def _proven(proof: str) -> str:
    return _INSERT_EVENT_PROVEN.format(proof=proof)


def discard_deferred(session: Session) -> None:
    """Forget a failed read's events (as a rollback would)."""
    if READ_UNIT in session.info:
        session.info[READ_UNIT] = []


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changed, as ``{field: [old, new]}``, for the fields the caller chose to expose."""
    return {
        key: [plain(before.get(key)), plain(value)]
        for key, value in after.items()
        if before.get(key) != value
    }


def plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID | StrEnum):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
