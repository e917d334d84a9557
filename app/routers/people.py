"""/api/v1/people: find candidates with a match score; read one person."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import Depends, Query

from app.deps import Caller, require
from app.models.person import PersonCandidate, PersonPublic
from app.openapi import AUTHED, READ_ONE, problems
from app.permissions import Permission
from app.routing import IndexedRouter
from app.services import people

router = IndexedRouter(prefix="/api/v1/people", tags=["people"])

Searcher = Annotated[Caller, Depends(require(Permission.PERSON_SEARCH))]
Reader = Annotated[Caller, Depends(require(Permission.CASE_READ))]


@router.get("", response_model=list[PersonCandidate], responses=problems(*AUTHED))
async def find_people(
    caller: Searcher,
    name: Annotated[str | None, Query(max_length=200, description="given and family name")] = None,
    date_of_birth: date | None = None,
    postcode: Annotated[str | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> list[PersonCandidate]:
    """Candidates among the people on your panels' cases and referrals, best match first."""
    return await caller(people.search, name, date_of_birth, postcode, limit)


@router.get("/{person_id}", response_model=PersonPublic, responses=problems(*READ_ONE))
async def get_person(caller: Reader, person_id: uuid.UUID) -> PersonPublic:
    return await caller(people.get_person, person_id)
