"""Login lockout: repeated failures lock an account for a while, without telling the caller."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.config import Settings
from app.models.agency import Agency
from app.models.base import utcnow
from app.models.user import User
from app.security import Security
from tests.builders import Principals, make_agency, make_user
from tests.test_auth_tokens import (
    assert_invalid_grant,
    audit_events,
    comparable_problem,
    login_ok,
    one_event,
    password_login,
)

WRONG = "definitely-not-the-password"


@pytest.fixture
def agency(session: Session) -> Agency:
    return make_agency(session)


@pytest.fixture
def user(session: Session, security: Security, agency: Agency) -> User:
    return make_user(session, security, agency)


def _fail(client: TestClient, user: User, times: int) -> None:
    for _ in range(times):
        assert_invalid_grant(password_login(client, user.email, WRONG))


def test_account_locks_after_max_failures(
    client: TestClient, session: Session, settings: Settings, user: User
) -> None:
    assert settings.login_max_failures == 5
    for attempt in range(1, settings.login_max_failures):
        assert_invalid_grant(password_login(client, user.email, WRONG))
        session.refresh(user)
        assert user.failed_login_count == attempt
        assert user.locked_until is None
    assert audit_events(session, "auth.lockout", actor_id=user.id) == []

    before = utcnow()
    last = password_login(client, user.email, WRONG)

    assert_invalid_grant(last)
    session.refresh(user)
    assert user.locked_until is not None
    expected = before + timedelta(seconds=settings.lockout_seconds)
    assert abs((user.locked_until - expected).total_seconds()) < 5
    lockout = one_event(session, "auth.lockout", last)
    assert lockout.outcome == "failure"
    assert (lockout.actor_id, lockout.resource_type) == (user.id, "user")
    assert lockout.resource_id == str(user.id)
    assert lockout.detail is not None and "locked_until" in lockout.detail
    failures = audit_events(session, "auth.login", actor_id=user.id, outcome="failure")
    assert [e.detail for e in failures] == [{"reason": "bad_password"}] * 5


def test_locked_account_refuses_the_right_password_like_a_wrong_one(
    client: TestClient, session: Session, settings: Settings, user: User
) -> None:
    _fail(client, user, settings.login_max_failures - 1)
    wrong = password_login(client, user.email, WRONG)  # this one locks

    right = password_login(client, user.email)

    assert_invalid_grant(right)
    assert comparable_problem(right) == comparable_problem(wrong)
    assert one_event(session, "auth.login", right).detail == {"reason": "locked"}
    assert "refresh_token" not in right.json()


def test_attempts_while_locked_neither_count_nor_extend_the_lock(
    client: TestClient, session: Session, settings: Settings, user: User
) -> None:
    _fail(client, user, settings.login_max_failures)
    session.refresh(user)
    locked_until, count = user.locked_until, user.failed_login_count

    _fail(client, user, 2)
    assert_invalid_grant(password_login(client, user.email))

    session.refresh(user)
    assert (user.locked_until, user.failed_login_count) == (locked_until, count)
    assert len(audit_events(session, "auth.lockout", actor_id=user.id)) == 1


def test_login_works_again_once_the_lock_expires(
    client: TestClient, session: Session, settings: Settings, user: User
) -> None:
    _fail(client, user, settings.login_max_failures)
    session.refresh(user)
    assert user.locked_until is not None
    assert_invalid_grant(password_login(client, user.email))

    user.locked_until = utcnow() - timedelta(seconds=1)
    session.commit()

    r = password_login(client, user.email)
    assert r.status_code == 200, r.text
    assert one_event(session, "auth.login", r).outcome == "success"
    session.refresh(user)
    assert user.locked_until is None
    assert user.failed_login_count == 0
    # The counter starts afresh: a full allowance of failures before the next lock.
    _fail(client, user, settings.login_max_failures - 1)
    login_ok(client, user.email)


def test_successful_login_resets_the_failure_counter(
    client: TestClient, session: Session, settings: Settings, user: User
) -> None:
    _fail(client, user, settings.login_max_failures - 1)
    session.refresh(user)
    assert user.failed_login_count == settings.login_max_failures - 1

    login_ok(client, user.email)

    session.refresh(user)
    assert user.failed_login_count == 0
    # Had the counter not been reset, these would take it past the limit.
    _fail(client, user, settings.login_max_failures - 1)
    session.refresh(user)
    assert user.locked_until is None
    login_ok(client, user.email)
    assert audit_events(session, "auth.lockout", actor_id=user.id) == []


def test_unknown_accounts_are_not_locked_and_get_the_same_answer(
    client: TestClient, session: Session, settings: Settings, user: User
) -> None:
    ghost = "ghost@agency.example.org"
    answers = [password_login(client, ghost) for _ in range(settings.login_max_failures + 1)]

    for r in answers:
        assert_invalid_grant(r)
        assert comparable_problem(r) == comparable_problem(answers[0])
        assert one_event(session, "auth.login", r).detail == {"reason": "unknown_user"}
    assert audit_events(session, "auth.lockout") == []


def test_failures_on_one_account_do_not_lock_another(
    client: TestClient,
    session: Session,
    security: Security,
    settings: Settings,
    user: User,
    agency: Agency,
) -> None:
    neighbour = make_user(session, security, agency)
    _fail(client, user, settings.login_max_failures)

    login_ok(client, neighbour.email)
    assert_invalid_grant(password_login(client, user.email))


def test_admin_can_clear_a_lockout(
    client: TestClient,
    session: Session,
    settings: Settings,
    security: Security,
    principals: Principals,
) -> None:
    user = make_user(session, security, principals.other)
    _fail(client, user, settings.login_max_failures)
    assert_invalid_grant(password_login(client, user.email))
    listed = client.get(f"/api/v1/users/{user.id}", headers=principals.admin.headers)
    assert listed.json()["locked_until"] is not None

    r = client.patch(
        f"/api/v1/users/{user.id}", json={"unlock": True}, headers=principals.admin.headers
    )

    assert r.status_code == 200, r.text
    assert r.json()["locked_until"] is None
    login_ok(client, user.email)
