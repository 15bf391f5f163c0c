"""The documented field types of the commands' payloads (the REST requests).

Each type carries, for the OpenAPI document only (`extra_json_schema`, which msgspec
does not enforce), the pattern or bounds domain/validation.py defines, so the schema
says exactly what the domain accepts (tests/unit/test_validation_patterns.py holds
them to it). The rules themselves are enforced by the aggregates, in one place
whichever entry point a command uses.
"""

from datetime import date
from typing import Annotated, Any

import msgspec

from domain import validation as v


def _documented(description: str, **schema: Any) -> msgspec.Meta:
    return msgspec.Meta(extra_json_schema={"description": description, **schema})


_TRIMMED = "Surrounding blanks are dropped; no control characters."
Name = Annotated[
    str,
    _documented(
        f"1 to {v.NAME_MAX} characters on one line. {_TRIMMED}",
        pattern=v.text_pattern(v.NAME_MAX, single_line=True),
    ),
]
Email = Annotated[
    str,
    _documented(
        "An email address (at most 254 characters); compared and stored lower-cased.",
        pattern=v.EMAIL_PATTERN,
        examples=["owner@example.com"],
    ),
]
Password = Annotated[
    str,
    _documented(
        f"{v.PASSWORD_MIN} to {v.PASSWORD_MAX} characters, not a common or easily "
        "guessed one (checked by zxcvbn, which no pattern can express).",
        minLength=v.PASSWORD_MIN,
        maxLength=v.PASSWORD_MAX,
        pattern=v.PASSWORD_PATTERN,
    ),
]
FeeCents = Annotated[
    int, _documented("Monthly fee in the currency's minor unit.", minimum=0, maximum=10**12)
]
Currency = Annotated[
    str,
    _documented(
        "An ISO 4217 code in any letter case, stored upper-cased.",
        pattern=v.CURRENCY_PATTERN,
        examples=["EUR", "usd"],
    ),
]
TimeZone = Annotated[
    str,
    _documented(
        "An IANA time zone name, exactly as listed (tzdata); memberships end at its midnight.",
        pattern=v.timezone_pattern(),
        examples=["UTC", "Europe/Berlin", "America/New_York"],
    ),
]

CardCode = Annotated[
    str,
    _documented(
        f"What the member's card reads: 1 to {v.CARD_CODE_MAX} visible ASCII characters"
        " (no blanks), compared exactly; one customer's within the gym.",
        pattern=v.CARD_CODE_PATTERN,
        examples=["0004211733", "GYM-7F3A"],
    ),
]


def _optional_text(max_length: int) -> msgspec.Meta:
    return _documented(
        f"At most {max_length} characters. {_TRIMMED} Blank or null: none.",
        pattern=v.text_pattern(max_length, required=False),
    )


Text = Annotated[str, _optional_text(v.TEXT_MAX)]
GymType = Annotated[str, _optional_text(v.GYM_TYPE_MAX)]
Phone = Annotated[str, _optional_text(v.PHONE_MAX)]


BirthDate = Annotated[date, _documented("Not after today in the gym's time zone.")]
MembershipEnd = Annotated[
    date, _documented("Not before membership_start; the membership lapses after this day.")
]
ReminderDays = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=365,
        description="Days before a membership's last day its customer gets a reminder; 0: none.",
    ),
]
MembershipDay = Annotated[date, _documented(f"A day from {v.DAY_MIN} to {v.DAY_MAX} (else 422).")]
