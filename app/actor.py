"""Who is making a request, and from where: the subject of every permission check and audit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from enum import StrEnum

from app.permissions import Permission


class ActorKind(StrEnum):
    USER = "user"
    API_CLIENT = "api_client"
    ANONYMOUS = "anonymous"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class RequestMeta:
    request_id: str | None = None
    source_ip: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    meta: RequestMeta = field(default_factory=RequestMeta)
    id: uuid.UUID | None = None
    agency_id: uuid.UUID | None = None
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    permissions: frozenset[Permission] = frozenset()

    @classmethod
    def anonymous(cls, meta: RequestMeta) -> Actor:
        return cls(kind=ActorKind.ANONYMOUS, meta=meta)

    @classmethod
    def system(cls) -> Actor:
        return cls(kind=ActorKind.SYSTEM)

    @property
    def required_id(self) -> uuid.UUID:
        """The id of an authenticated actor (never called for anonymous ones)."""
        assert self.id is not None, "an authenticated actor has an id"
        return self.id

    @property
    def required_agency_id(self) -> uuid.UUID:
        assert self.agency_id is not None, "an authenticated actor has an agency"
        return self.agency_id

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def identified(self, *, kind: ActorKind, id: uuid.UUID, agency_id: uuid.UUID | None) -> Actor:
        """The same request, now attributed to a known user or client (for login events)."""
        return replace(self, kind=kind, id=id, agency_id=agency_id)
