"""ETags from row versions, and If-Match checks for optimistic concurrency."""

from __future__ import annotations

import uuid

from app.errors import PreconditionFailed


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(
    if_match: str | None, version: int, resource_type: str, resource_id: uuid.UUID
) -> None:
    """Refuse (412) when the caller's If-Match names a version other than the current one."""
    if if_match is None:
        return
    candidates = {part.strip().removeprefix("W/") for part in if_match.split(",")}
    if "*" in candidates or etag(version) in candidates:
        return
    raise PreconditionFailed(
        f"The {resource_type.replace('_', ' ')} has changed since you read it "
        f"(current ETag {etag(version)}); read it again and reapply your change",
        resource_type=resource_type,
        resource_id=resource_id,
    )
