"""Response bodies of the REST contract (kept compatible with the old service), and
the login form.

Command request bodies are the commands' payloads (domain/gym.py, domain/customer.py,
with their documented field types in domain/fields.py); responses are built from the
read model's rows.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain.membership import (
    Membership,
    Status,
    last_day_of_access,
    shown_on_customer,
    status_on,
)
from domain.plan import Plan
from domain.terms import Term
from projections.customers import CustomerRow
from projections.gyms import GymView

# Every time the API answers with is in UTC with its offset (RFC 3339, "date-time").
Instant = Annotated[datetime, msgspec.Meta(tz=True)]


def _documented(description: str, **schema: Any) -> msgspec.Meta:
    return msgspec.Meta(extra_json_schema={"description": description, **schema})


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
    reminder_days: int
    created_at: Instant
    updated_at: Instant

    @classmethod
    def of(cls, gym: GymView) -> "GymResponse":
        return _in_utc(msgspec.convert(gym, cls, from_attributes=True))


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
    def of(
        cls, c: CustomerRow, today: date, memberships: Sequence[Membership] = ()
    ) -> "CustomerResponse":
        """`active` as of the gym's today; with memberships, it and the membership
        dates follow the one domain.membership.shown_on_customer picks. Field by
        field: lists answer up to 200 of these, four times as fast as msgspec.convert."""
        shown = shown_on_customer(memberships, today)
        if shown is not None:
            return msgspec.structs.replace(
                cls.of(c, today),
                active=c.owner_active and status_on(shown, today) is Status.ACTIVE,
                membership_start=shown.starts_on,
                membership_end=last_day_of_access(shown),
            )
        return cls(
            id=c.id,
            gym_id=c.gym_id,
            first_name=c.first_name,
            last_name=c.last_name,
            email=c.email,
            phone=c.phone,
            active=c.active_on(today),
            date_of_birth=c.date_of_birth,
            membership_start=c.membership_start,
            membership_end=c.membership_end,
            notes=c.notes,
            created_at=c.created_at.astimezone(UTC),
            updated_at=c.updated_at.astimezone(UTC),
        )


def _in_utc(answer: GymResponse) -> GymResponse:
    """Times as the API gives every time: in UTC, whatever the session's time zone."""
    return msgspec.structs.replace(
        answer,
        created_at=answer.created_at.astimezone(UTC),
        updated_at=answer.updated_at.astimezone(UTC),
    )


class PlanResponse(msgspec.Struct):
    id: UUID
    name: str
    price_cents: int
    currency: str
    term: Term
    max_freeze_days: int
    retired: bool

    @classmethod
    def of(cls, plan: Plan) -> "PlanResponse":
        return cls(
            id=plan.id,
            name=plan.name,
            price_cents=plan.price_cents,
            currency=plan.currency,
            term=plan.term,
            max_freeze_days=plan.max_freeze_days,
            retired=plan.retired,
        )


class FreezeResponse(msgspec.Struct):
    """Both days frozen."""

    starts_on: date
    ends_on: date
    reason: str | None


class MembershipResponse(msgspec.Struct):
    """`ends_on` is the last day of the current term, moved later by its freezes;
    `status` is derived on the gym's today (in its time zone)."""

    id: UUID
    customer_id: UUID
    plan_id: UUID
    plan_name: str
    starts_on: date
    ends_on: date
    price_cents: int
    currency: str
    status: Status
    freezes: list[FreezeResponse]
    cancelled_on: date | None

    @classmethod
    def of(cls, m: Membership, today: date) -> "MembershipResponse":
        return cls(
            id=m.id,
            customer_id=m.customer_id,
            plan_id=m.plan_id,
            plan_name=m.plan_name,
            starts_on=m.starts_on,
            ends_on=m.ends_on,
            price_cents=m.price_cents,
            currency=m.currency,
            status=status_on(m, today),
            freezes=[FreezeResponse(f.starts_on, f.ends_on, f.reason) for f in m.freezes],
            cancelled_on=m.cancelled_on,
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
