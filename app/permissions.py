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


class Role(StrEnum):
    """System roles. Case access never comes from these: it comes from panel membership."""

    ADMIN = "admin"
    AUDITOR = "auditor"
    AGENCY_ADMIN = "agency_admin"


class Scope(StrEnum):
    """What a partner system's API client may be granted."""

    AGENCIES_READ = "agencies:read"


# Every signed-in person, whatever their role.
USER_BASE: frozenset[Permission] = frozenset(
    {Permission.SELF_READ, Permission.SELF_MANAGE, Permission.AGENCY_READ}
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
}

# A password-authenticated session of someone who must enrol a second factor before anything.
MFA_ENROLMENT_SCOPE = "mfa_enrolment"
MFA_ENROLMENT_PERMISSIONS: frozenset[Permission] = frozenset(
    {Permission.SELF_READ, Permission.SELF_MANAGE}
)


def user_permissions(roles: list[str]) -> frozenset[Permission]:
    perms = set(USER_BASE)
    for role in roles:
        perms |= ROLE_PERMISSIONS.get(Role(role), frozenset())
    return frozenset(perms)


def client_permissions(scopes: list[str]) -> frozenset[Permission]:
    perms = set(CLIENT_BASE)
    for scope in scopes:
        perms |= SCOPE_PERMISSIONS.get(Scope(scope), frozenset())
    return frozenset(perms)
