"""The Gym aggregate: a gym owner's account and public profile.

Functional style (as in eventsourcing's msgspec example): `register`, `update_profile`
and `close` decide which event happens; `evolve` folds events into state. Both are
pure, so the same code rebuilds a gym from the log and checks a new command.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

import msgspec

from domain import validation as v
from domain.errors import GymIsClosed, InvalidValue
from domain.events import DomainEvent, Stamp, fold

UNSET: msgspec.UnsetType = msgspec.UNSET


def _v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """Version 1 predates gym time zones: those gyms ran on UTC."""
    return {**payload, "timezone": payload.get("timezone", "UTC")}


class GymRegistered(DomainEvent, frozen=True, kw_only=True):
    """v2 added `timezone`; stored v1 events are upcast on reading (infra/event_codec.py)."""

    class_version: ClassVar[int] = 2
    upcasters: ClassVar[dict[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {1: _v1_to_v2}

    name: str
    email: str
    password_hash: str
    address: str | None
    description: str | None
    gym_type: str | None
    monthly_fee_cents: int
    currency: str
    timezone: str


class GymProfileUpdated(DomainEvent, frozen=True, kw_only=True):
    """Carries only the fields that changed; UNSET fields are not stored."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    email: str | msgspec.UnsetType = msgspec.UNSET
    address: str | msgspec.UnsetType | None = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    gym_type: str | msgspec.UnsetType | None = msgspec.UNSET
    monthly_fee_cents: int | msgspec.UnsetType = msgspec.UNSET
    currency: str | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET


class GymClosed(DomainEvent, frozen=True, kw_only=True):
    pass


class GymPasswordRehashed(DomainEvent, frozen=True, kw_only=True):
    """The same password, hashed again with the current parameters at a login
    (the only time the password is known). Not a profile change: `updated_at` stays."""

    password_hash: str


class AuditorAccessGranted(DomainEvent, frozen=True, kw_only=True):
    """The owner issued a read-only auditor token (recorded so access is auditable)."""

    token_id: UUID
    expires_at: datetime


class Gym(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    created_at: datetime
    updated_at: datetime
    name: str
    email: str
    password_hash: str
    address: str | None
    description: str | None
    gym_type: str | None
    monthly_fee_cents: int
    currency: str
    timezone: str = "UTC"
    closed: bool = False


class ProfileChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update as the owner asked for it; UNSET means "leave as is"."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    email: str | msgspec.UnsetType = msgspec.UNSET
    address: str | msgspec.UnsetType | None = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    gym_type: str | msgspec.UnsetType | None = msgspec.UNSET
    monthly_fee_cents: int | msgspec.UnsetType = msgspec.UNSET
    currency: str | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET


PasswordHasher = Callable[[str], str]

PROFILE_FIELDS = tuple(f for f in ProfileChanges.__struct_fields__)


def _clean_profile(c: ProfileChanges) -> dict[str, object]:
    """Validate every field that is present; absent (UNSET) fields stay absent."""
    out: dict[str, object] = {}
    if c.name is not UNSET:
        out["name"] = v.single_line_text("name", c.name)
    if c.email is not UNSET:
        out["email"] = v.email("email", c.email)
    if c.address is not UNSET:
        out["address"] = v.optional_text("address", c.address)
    if c.description is not UNSET:
        out["description"] = v.optional_text("description", c.description)
    if c.gym_type is not UNSET:
        out["gym_type"] = v.optional_text("gym_type", c.gym_type, v.GYM_TYPE_MAX)
    if c.monthly_fee_cents is not UNSET:
        out["monthly_fee_cents"] = v.monthly_fee_cents(c.monthly_fee_cents)
    if c.currency is not UNSET:
        out["currency"] = v.currency(c.currency)
    if c.timezone is not UNSET:
        out["timezone"] = v.timezone(c.timezone)
    return out


def register(
    gym_id: UUID,
    *,
    name: str,
    email: str,
    password: str,
    address: str | None,
    description: str | None,
    gym_type: str | None,
    monthly_fee_cents: int,
    currency: str,
    timezone: str = "UTC",
    hash_password: PasswordHasher,
    stamp: Stamp,
) -> GymRegistered:
    profile = _clean_profile(
        ProfileChanges(
            name=name,
            email=email,
            address=address,
            description=description,
            gym_type=gym_type,
            monthly_fee_cents=monthly_fee_cents,
            currency=currency,
            timezone=timezone,
        )
    )
    # Validate before hashing: argon2 is deliberately slow.
    password_hash = hash_password(v.password(password))
    return GymRegistered(
        originator_id=gym_id,
        originator_version=1,
        timestamp=stamp.at,
        metadata=stamp.metadata,
        password_hash=password_hash,
        **profile,  # type: ignore[arg-type]
    )


def update_profile(gym: Gym, changes: ProfileChanges, stamp: Stamp) -> GymProfileUpdated | None:
    """Returns None when nothing would change, so no empty event is stored."""
    _require_open(gym)
    cleaned = _clean_profile(changes)
    changed = {k: val for k, val in cleaned.items() if getattr(gym, k) != val}
    if not changed:
        return None
    return GymProfileUpdated(
        **_next_event(gym, stamp),
        **changed,  # type: ignore[arg-type]
    )


def close(gym: Gym, stamp: Stamp) -> GymClosed:
    _require_open(gym)
    return GymClosed(
        **_next_event(gym, stamp),
    )


def rehash_password(gym: Gym, password_hash: str, stamp: Stamp) -> GymPasswordRehashed:
    _require_open(gym)
    return GymPasswordRehashed(
        **_next_event(gym, stamp),
        password_hash=password_hash,
    )


MAX_AUDITOR_ACCESS = timedelta(days=90)


def grant_auditor_access(
    gym: Gym, token_id: UUID, expires_at: datetime, stamp: Stamp
) -> AuditorAccessGranted:
    _require_open(gym)
    if not stamp.at < expires_at <= stamp.at + MAX_AUDITOR_ACCESS:
        raise InvalidValue("expires_in_seconds", "must be between 1 second and 90 days")
    return AuditorAccessGranted(
        **_next_event(gym, stamp),
        token_id=token_id,
        expires_at=expires_at,
    )


def _next_event(gym: Gym, stamp: Stamp) -> dict[str, Any]:
    """The envelope of the gym's next event: its stream, version, time and metadata."""
    return {
        "originator_id": gym.id,
        "originator_version": gym.version + 1,
        "timestamp": stamp.at,
        "metadata": stamp.metadata,
    }


def _require_open(gym: Gym) -> None:
    if gym.closed:
        raise GymIsClosed(str(gym.id))


def evolve(gym: Gym | None, event: DomainEvent) -> Gym:
    match event, gym:
        case GymRegistered(), None:
            return Gym(
                id=event.originator_id,
                version=event.originator_version,
                created_at=event.timestamp,
                updated_at=event.timestamp,
                name=event.name,
                email=event.email,
                password_hash=event.password_hash,
                address=event.address,
                description=event.description,
                gym_type=event.gym_type,
                monthly_fee_cents=event.monthly_fee_cents,
                currency=event.currency,
                timezone=event.timezone,
            )
        case GymProfileUpdated(), Gym():
            changed = {
                f: getattr(event, f) for f in PROFILE_FIELDS if getattr(event, f) is not UNSET
            }
            return msgspec.structs.replace(
                gym, version=event.originator_version, updated_at=event.timestamp, **changed
            )
        case GymPasswordRehashed(), Gym():
            return msgspec.structs.replace(
                gym, version=event.originator_version, password_hash=event.password_hash
            )
        case AuditorAccessGranted(), Gym():
            return msgspec.structs.replace(gym, version=event.originator_version)
        case GymClosed(), Gym():
            return msgspec.structs.replace(
                gym, version=event.originator_version, updated_at=event.timestamp, closed=True
            )
    raise ValueError(f"cannot apply {type(event).__name__} to {gym!r}")


project = fold(evolve)


EVENTS: tuple[type[DomainEvent], ...] = (
    GymRegistered,
    GymProfileUpdated,
    GymClosed,
    AuditorAccessGranted,
    GymPasswordRehashed,
)
