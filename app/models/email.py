"""An email address, checked as pydantic's ``EmailStr`` checks it, with what a check found
remembered.

Partner systems send the same few referrer addresses in referral after referral, and the
check (email_validator: the syntax, then each character of the domain against IDNA's
tables) was a tenth of a referral submission's CPU. The same function answers; a valid
address's answer is kept (at most 4,096), an invalid one's error is raised again each time.
"""

from __future__ import annotations

import functools
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema
from pydantic.networks import import_email_validator, validate_email

import_email_validator()


@functools.lru_cache(maxsize=4096)
def _checked(value: str) -> str:
    return validate_email(value)[1]


Email = Annotated[
    str, AfterValidator(_checked), WithJsonSchema({"type": "string", "format": "email"})
]
