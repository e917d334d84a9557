"""Email addresses are checked as pydantic's EmailStr checks them (app.models.email), also
the second time, when a valid address's answer is remembered."""

from __future__ import annotations

import pytest
from pydantic import EmailStr, TypeAdapter, ValidationError

from app.models.email import Email

OURS, THEIRS = TypeAdapter(Email), TypeAdapter(EmailStr)


@pytest.mark.parametrize(
    "value",
    [
        "sam.officer@police.example.org",
        "Sam.Officer@Police.EXAMPLE.org",
        "jane@bücher.example",
        "a@b",
        "no-at-sign",
        "a@-bad.example",
        "two words@example.org",
        "",
    ],
)
def test_an_address_is_checked_exactly_as_emailstr_checks_it(value: str) -> None:
    for _ in range(2):
        try:
            expected = THEIRS.validate_python(value)
        except ValidationError as refused:
            with pytest.raises(ValidationError) as ours:
                OURS.validate_python(value)
            assert ours.value.errors(include_url=False) == refused.errors(include_url=False)
        else:
            assert OURS.validate_python(value) == expected


def test_the_schema_says_it_is_an_email_address() -> None:
    assert OURS.json_schema() == {"type": "string", "format": "email"}
