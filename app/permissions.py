"""Who may do what, as data: permissions, roles, API-client scopes and their mapping.

Routes name the one permission they need (``require(Permission.X)``); which rows a caller may
then see is decided by the visibility filters in ``app.policies``.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    SELF_READ = "self:read"
    SELF_MANAGE = "self:manage"
    AGENCY_READ = "agency:read"
    AGENCY_WRITE = "agency:write"
    USER_READ = "user:read"
    USER_WRITE = "user:write"
    ROLE_ASSIGN = "role:assign"
    API_CLIENT_READ = "api_client:read"
    API_CLIENT_WRITE = "api_client:write"
    AUDIT_READ = "audit:read"
    AUDIT_VERIFY = "audit:verify"
    PANEL_READ = "panel:read"
    PANEL_WRITE = "panel:write"
    PANEL_MEMBERS_READ = "panel_members:read"
    PERSON_SEARCH = "person:search"
    REFERRAL_SUBMIT = "referral:submit"
    REFERRAL_READ = "referral:read"
    REFERRAL_TRIAGE = "referral:triage"
    CASE_READ = "case:read"
    CASE_WRITE = "case:write"
    CONFERENCE_READ = "conference:read"
    CONFERENCE_WRITE = "conference:write"
    ACTION_READ = "action:read"
    ACTION_WRITE = "action:write"


class Role(StrEnum):
    """System roles. Case access never comes from these: it comes from panel membership."""

    ADMIN = "admin"
    AUDITOR = "auditor"
    AGENCY_ADMIN = "agency_admin"


class Scope(StrEnum):
    """What a partner system's API client may be granted."""

    AGENCIES_READ = "agencies:read"
    PANELS_READ = "panels:read"
    REFERRALS_WRITE = "referrals:write"
    REFERRALS_READ = "referrals:read"
    CASES_READ = "cases:read"
    CONFERENCES_READ = "conferences:read"
    ACTIONS_READ = "actions:read"
    ACTIONS_WRITE = "actions:write"


# Every signed-in person, whatever their role.
USER_BASE: frozenset[Permission] = frozenset(
    {
        Permission.SELF_READ,
        Permission.SELF_MANAGE,
        Permission.AGENCY_READ,
        Permission.PANEL_READ,
        Permission.PANEL_MEMBERS_READ,
        Permission.REFERRAL_SUBMIT,
        Permission.REFERRAL_READ,
    }
)

# Case work. What a person may see of it comes from their panel roles (app.policies); the
# partnership-wide system roles never get it, so admins and auditors see no case content.
CASEWORK: frozenset[Permission] = frozenset(
    {
        Permission.PERSON_SEARCH,
        Permission.REFERRAL_TRIAGE,
        Permission.CASE_READ,
        Permission.CASE_WRITE,
        Permission.CONFERENCE_READ,
        Permission.CONFERENCE_WRITE,
        Permission.ACTION_READ,
        Permission.ACTION_WRITE,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(
        {
            Permission.AGENCY_WRITE,
            Permission.USER_READ,
            Permission.USER_WRITE,
            Permission.ROLE_ASSIGN,
            Permission.API_CLIENT_READ,
            Permission.API_CLIENT_WRITE,
            Permission.PANEL_WRITE,
        }
    ),
    Role.AUDITOR: frozenset(
        {
            Permission.AUDIT_READ,
            Permission.AUDIT_VERIFY,
            Permission.USER_READ,
            Permission.API_CLIENT_READ,
        }
    ),
    # Manages the users of their own agency only (scoped in app.policies).
    Role.AGENCY_ADMIN: frozenset({Permission.USER_READ, Permission.USER_WRITE}),
}

CLIENT_BASE: frozenset[Permission] = frozenset({Permission.SELF_READ})

SCOPE_PERMISSIONS: dict[Scope, frozenset[Permission]] = {
    Scope.AGENCIES_READ: frozenset({Permission.AGENCY_READ}),
    Scope.PANELS_READ: frozenset({Permission.PANEL_READ}),
    Scope.REFERRALS_WRITE: frozenset({Permission.REFERRAL_SUBMIT, Permission.REFERRAL_READ}),
    Scope.REFERRALS_READ: frozenset({Permission.REFERRAL_READ}),
    Scope.CASES_READ: frozenset({Permission.CASE_READ}),
    Scope.CONFERENCES_READ: frozenset({Permission.CONFERENCE_READ}),
    Scope.ACTIONS_READ: frozenset({Permission.ACTION_READ}),
    Scope.ACTIONS_WRITE: frozenset({Permission.ACTION_READ, Permission.ACTION_WRITE}),
}

# System roles that see no case content, whatever panel roles they are given.
NO_CASEWORK: frozenset[Role] = frozenset({Role.ADMIN, Role.AUDITOR})

# A password-authenticated session of someone who must enrol a second factor before anything.
MFA_ENROLMENT_SCOPE = "mfa_enrolment"
MFA_ENROLMENT_PERMISSIONS: frozenset[Permission] = frozenset(
    {Permission.SELF_READ, Permission.SELF_MANAGE}
)


def user_permissions(roles: list[str]) -> frozenset[Permission]:
    perms = set(USER_BASE)
    if not NO_CASEWORK.intersection(Role(r) for r in roles):
        perms |= CASEWORK
    for role in roles:
        perms |= ROLE_PERMISSIONS.get(Role(role), frozenset())
    return frozenset(perms)


def client_permissions(scopes: list[str]) -> frozenset[Permission]:
    perms = set(CLIENT_BASE)
    for scope in scopes:
        perms |= SCOPE_PERMISSIONS.get(Scope(scope), frozenset())
    return frozenset(perms)
