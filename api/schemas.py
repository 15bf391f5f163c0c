"""Request and response bodies of the REST contract (kept compatible with the old service).

Requests are checked by the domain, so a rule lives in one place whichever entry
point a command uses. The rules are also published: each field carries, for the
OpenAPI document only (`extra_json_schema`, which msgspec does not enforce), the
pattern or bounds domain/validation.py defines, so the schema says exactly what the
domain accepts (tests/unit/test_validation_patterns.py holds them to it).
"""

from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain import validation as v
from domain.customer import Customer, is_active
from domain.gym import Gym
from projections.customers import CustomerRow
from projections.gyms import GymView

# Every time the API answers with is in UTC with its offset (RFC 3339, "date-time").
Instant = Annotated[datetime, msgspec.Meta(tz=True)]


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


def _optional_text(max_length: int) -> msgspec.Meta:
    return _documented(
        f"At most {max_length} characters. {_TRIMMED} Blank or null: none.",
        pattern=v.text_pattern(max_length, required=False),
    )


Text = Annotated[str, _optional_text(v.TEXT_MAX)]
GymType = Annotated[str, _optional_text(v.GYM_TYPE_MAX)]
Phone = Annotated[str, _optional_text(v.PHONE_MAX)]


class SignupRequest(msgspec.Struct, forbid_unknown_fields=False):
    name: Name
    email: Email
    password: Password
    monthly_fee_cents: FeeCents
    currency: Currency
    address: Text | None = None
    description: Text | None = None
    gym_type: GymType | None = None
    timezone: TimeZone = "UTC"


class GymPatchRequest(msgspec.Struct):
    """Only the fields sent change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    email: Email | msgspec.UnsetType = msgspec.UNSET
    address: Text | msgspec.UnsetType | None = msgspec.UNSET
    description: Text | msgspec.UnsetType | None = msgspec.UNSET
    gym_type: GymType | msgspec.UnsetType | None = msgspec.UNSET
    monthly_fee_cents: FeeCents | msgspec.UnsetType = msgspec.UNSET
    currency: Currency | msgspec.UnsetType = msgspec.UNSET
    timezone: TimeZone | msgspec.UnsetType = msgspec.UNSET


# PostgreSQL text cannot hold NUL, so no stored value has one.
NO_NUL_PATTERN = r"^[^\x00]*$(?!\n)"


class LoginForm(msgspec.Struct):
    """OAuth2's password grant, as the earlier service took it."""

    username: Annotated[str, _documented("The owner's email.", pattern=NO_NUL_PATTERN)]
    password: Annotated[str, _documented("The password.", pattern=NO_NUL_PATTERN)]
    grant_type: str | None = None
    scope: str = ""


class TokenResponse(msgspec.Struct):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - OAuth2 token type, not a secret


class GymResponse(msgspec.Struct):
    id: UUID
    name: str
    email: str
    address: str | None
    description: str | None
    gym_type: str | None
    monthly_fee_cents: int
    currency: str
    timezone: str
    created_at: Instant
    updated_at: Instant

    @classmethod
    def of(cls, gym: GymView | Gym) -> "GymResponse":
        """From the read model, or from the write side when the projector lags."""
        return cls(
            id=gym.id,
            name=gym.name,
            email=gym.email,
            address=gym.address,
            description=gym.description,
            gym_type=gym.gym_type,
            monthly_fee_cents=gym.monthly_fee_cents,
            currency=gym.currency,
            timezone=gym.timezone,
            created_at=gym.created_at.astimezone(UTC),
            updated_at=gym.updated_at.astimezone(UTC),
        )


BirthDate = Annotated[date, _documented("Not after today in the gym's time zone.")]
MembershipEnd = Annotated[
    date, _documented("Not before membership_start; the membership lapses after this day.")
]


class CustomerCreateRequest(msgspec.Struct):
    first_name: Name
    last_name: Name
    email: Email
    phone: Phone | None = None
    active: bool = True
    date_of_birth: BirthDate | None = None
    membership_start: date | None = None
    membership_end: MembershipEnd | None = None
    notes: Text | None = None


class CustomerPatchRequest(msgspec.Struct):
    """Only the fields sent change."""

    first_name: Name | msgspec.UnsetType = msgspec.UNSET
    last_name: Name | msgspec.UnsetType = msgspec.UNSET
    email: Email | msgspec.UnsetType = msgspec.UNSET
    phone: Phone | msgspec.UnsetType | None = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    date_of_birth: BirthDate | msgspec.UnsetType | None = msgspec.UNSET
    membership_start: date | msgspec.UnsetType | None = msgspec.UNSET
    membership_end: MembershipEnd | msgspec.UnsetType | None = msgspec.UNSET
    notes: Text | msgspec.UnsetType | None = msgspec.UNSET


class CustomerResponse(msgspec.Struct):
    id: UUID
    gym_id: UUID
    first_name: str
    last_name: str
    email: str
    phone: str | None
    active: bool
    date_of_birth: date | None
    membership_start: date | None
    membership_end: date | None
    notes: str | None
    created_at: Instant
    updated_at: Instant

    @classmethod
    def of(cls, c: CustomerRow | Customer, today: date) -> "CustomerResponse":
        """From the read model or the write side; `active` as of the gym's today."""
        return cls(
            id=c.id,
            gym_id=c.gym_id,
            first_name=c.first_name,
            last_name=c.last_name,
            email=c.email,
            phone=c.phone,
            active=is_active(c.owner_active, c.membership_end, today),
            date_of_birth=c.date_of_birth,
            membership_start=c.membership_start,
            membership_end=c.membership_end,
            notes=c.notes,
            created_at=c.created_at.astimezone(UTC),
            updated_at=c.updated_at.astimezone(UTC),
        )


class ParkedAt(msgspec.Struct):
    position: int
    message: str


class HealthChecks(msgspec.Struct):
    """What each dependency reported; a check that could not run is left out, and
    others may be added."""

    database: str | msgspec.UnsetType = msgspec.UNSET  # "ok" or "unavailable: <error>"
    redis: str | msgspec.UnsetType = msgspec.UNSET
    projector_lag_events: int | msgspec.UnsetType = msgspec.UNSET
    projector_lag_seconds: float | msgspec.UnsetType = msgspec.UNSET
    projector_parked: ParkedAt | msgspec.UnsetType = msgspec.UNSET


class HealthBody(msgspec.Struct):
    """GET /health (documentation of the body api/routes/health.py builds)."""

    status: str  # "ok", or "degraded" with what is wrong in `checks` and `failing`
    checks: HealthChecks
    failing: list[str]


class ReadinessReport(msgspec.Struct):
    """GET /health/ready: 200 when this process can serve, 503 naming what fails."""

    status: str
    checks: HealthChecks
    failing: list[str]


class LivenessReport(msgspec.Struct):
    status: str
