"""Request and response bodies of the REST contract (kept compatible with the old service).

Requests are typed loosely on purpose (types, not rules): the domain enforces the
invariants, so a rule lives in one place whichever entry point a command uses.
"""

from datetime import UTC, date, datetime
from uuid import UUID

import msgspec

from domain.customer import Customer, is_active
from domain.gym import Gym
from projections.customers import CustomerRow
from projections.gyms import GymView


class SignupRequest(msgspec.Struct, forbid_unknown_fields=False):
    name: str
    email: str
    password: str
    monthly_fee_cents: int
    currency: str
    address: str | None = None
    description: str | None = None
    gym_type: str | None = None
    timezone: str = "UTC"


class GymPatchRequest(msgspec.Struct):
    name: str | msgspec.UnsetType = msgspec.UNSET
    email: str | msgspec.UnsetType = msgspec.UNSET
    address: str | msgspec.UnsetType | None = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    gym_type: str | msgspec.UnsetType | None = msgspec.UNSET
    monthly_fee_cents: int | msgspec.UnsetType = msgspec.UNSET
    currency: str | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET


class LoginForm(msgspec.Struct):
    username: str
    password: str
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
    created_at: datetime
    updated_at: datetime

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


class CustomerCreateRequest(msgspec.Struct):
    first_name: str
    last_name: str
    email: str
    phone: str | None = None
    active: bool = True
    date_of_birth: date | None = None
    membership_start: date | None = None
    membership_end: date | None = None
    notes: str | None = None


class CustomerPatchRequest(msgspec.Struct):
    first_name: str | msgspec.UnsetType = msgspec.UNSET
    last_name: str | msgspec.UnsetType = msgspec.UNSET
    email: str | msgspec.UnsetType = msgspec.UNSET
    phone: str | msgspec.UnsetType | None = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    date_of_birth: date | msgspec.UnsetType | None = msgspec.UNSET
    membership_start: date | msgspec.UnsetType | None = msgspec.UNSET
    membership_end: date | msgspec.UnsetType | None = msgspec.UNSET
    notes: str | msgspec.UnsetType | None = msgspec.UNSET


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
    created_at: datetime
    updated_at: datetime

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
