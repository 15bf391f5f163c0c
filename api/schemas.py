"""Request and response bodies of the REST contract (kept compatible with the old service).

Requests are typed loosely on purpose (types, not rules): the domain enforces the
invariants, so a rule lives in one place whichever entry point a command uses.
"""

from datetime import datetime
from uuid import UUID

import msgspec

from domain.gym import Gym
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


class GymPatchRequest(msgspec.Struct):
    name: str | msgspec.UnsetType = msgspec.UNSET
    email: str | msgspec.UnsetType = msgspec.UNSET
    address: str | msgspec.UnsetType | None = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    gym_type: str | msgspec.UnsetType | None = msgspec.UNSET
    monthly_fee_cents: int | msgspec.UnsetType = msgspec.UNSET
    currency: str | msgspec.UnsetType = msgspec.UNSET


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
            created_at=gym.created_at,
            updated_at=gym.updated_at,
        )
