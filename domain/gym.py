"""The Gym aggregate: a gym owner's account and public profile.

Functional style (as in eventsourcing's msgspec example): `register`, `update_profile`,
`close` and the credential decisions (`change_password`, `grant_auditor_access`,
`revoke_auditor_access`) decide which event happens; `evolve` folds events into
state. Both are pure, so the same code rebuilds a gym from the log and checks a new
command.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

import msgspec

from domain import fields as f
from domain import validation as v
from domain.changes import checked, unless_same
from domain.errors import (
    GymIsClosed,
    IncorrectPassword,
    InvalidValue,
    NotFound,
    StaleCredentials,
    StreamOfAnotherKind,
)
from domain.events import DomainEvent, Stamp, carried_fields, envelope, fold

UNSET: msgspec.UnsetType = msgspec.UNSET
DEFAULT_REMINDER_DAYS = 7


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
    reminder_days: int | msgspec.UnsetType = msgspec.UNSET


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


class GymPasswordChanged(DomainEvent, frozen=True, kw_only=True):
    """The owner chose a new password. Every token issued before it stops working:
    tokens carry the generation they were issued in, and from now on only
    `token_generation` is accepted. Auditor tokens granted before it end too."""

    password_hash: str
    token_generation: int


class AuditorAccessRevoked(DomainEvent, frozen=True, kw_only=True):
    """The owner ended one auditor token before it expired."""

    token_id: UUID


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
    # Days before a membership's last day its customer is reminded (0: never).
    reminder_days: int = DEFAULT_REMINDER_DAYS
    closed: bool = False
    # Tokens carry the generation they were issued in; each password change moves it on.
    token_generation: int = 0
    auditor_tokens: frozenset[UUID] = frozenset()  # granted and not revoked
    revoked_auditor_tokens: frozenset[UUID] = frozenset()


class NewGym(msgspec.Struct, frozen=True, kw_only=True):
    """A signup as the owner sent it: the payload of RegisterGym (POST /auth/signup)."""

    name: f.Name
    email: f.Email
    password: f.Password
    monthly_fee_cents: f.FeeCents
    currency: f.Currency
    address: f.Text | None = None
    description: f.Text | None = None
    gym_type: f.GymType | None = None
    timezone: f.TimeZone = "UTC"


class ProfileChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update as the owner asked for it (PATCH /gyms/me); UNSET means
    "leave as is"."""

    name: f.Name | msgspec.UnsetType = msgspec.UNSET
    email: f.Email | msgspec.UnsetType = msgspec.UNSET
    address: f.Text | msgspec.UnsetType | None = msgspec.UNSET
    description: f.Text | msgspec.UnsetType | None = msgspec.UNSET
    gym_type: f.GymType | msgspec.UnsetType | None = msgspec.UNSET
    monthly_fee_cents: f.FeeCents | msgspec.UnsetType = msgspec.UNSET
    currency: f.Currency | msgspec.UnsetType = msgspec.UNSET
    timezone: f.TimeZone | msgspec.UnsetType = msgspec.UNSET
    reminder_days: f.ReminderDays | msgspec.UnsetType = msgspec.UNSET


class PasswordChange(msgspec.Struct, frozen=True, kw_only=True):
    """The owner's new password, confirmed with the current one (POST /auth/password)."""

    current_password: str
    new_password: f.Password


PasswordHasher = Callable[[str], str]
PasswordVerifier = Callable[[str, str], bool]  # (stored hash, password) -> matches


def _clean_profile(c: ProfileChanges) -> ProfileChanges:
    """Validate every field that is present; absent (UNSET) fields stay absent."""
    name = checked(lambda x: v.single_line_text("name", x), c.name)
    email = checked(lambda x: v.email("email", x), c.email)
    address = checked(lambda x: v.optional_text("address", x), c.address)
    description = checked(lambda x: v.optional_text("description", x), c.description)
    gym_type = checked(lambda x: v.optional_text("gym_type", x, v.GYM_TYPE_MAX), c.gym_type)
    monthly_fee_cents = checked(v.monthly_fee_cents, c.monthly_fee_cents)
    currency = checked(v.currency, c.currency)
    timezone = checked(v.timezone, c.timezone)
    return ProfileChanges(
        name=name,
        email=email,
        address=address,
        description=description,
        gym_type=gym_type,
        monthly_fee_cents=monthly_fee_cents,
        currency=currency,
        timezone=timezone,
        reminder_days=c.reminder_days,
    )


def register(
    gym_id: UUID, new: NewGym, *, hash_password: PasswordHasher, stamp: Stamp
) -> GymRegistered:
    name = v.single_line_text("name", new.name)
    email = v.email("email", new.email)
    # Validate before hashing: argon2 is deliberately slow.
    password_hash = hash_password(v.password(new.password, user_inputs=(email, name)))
    return GymRegistered(
        **envelope(gym_id, 1, stamp),
        password_hash=password_hash,
        name=name,
        email=email,
        address=v.optional_text("address", new.address),
        description=v.optional_text("description", new.description),
        gym_type=v.optional_text("gym_type", new.gym_type, v.GYM_TYPE_MAX),
        monthly_fee_cents=v.monthly_fee_cents(new.monthly_fee_cents),
        currency=v.currency(new.currency),
        timezone=v.timezone(new.timezone),
    )


def update_profile(gym: Gym, changes: ProfileChanges, stamp: Stamp) -> GymProfileUpdated | None:
    """Returns None when nothing would change, so no empty event is stored."""
    _require_open(gym)
    c = _clean_profile(changes)
    envelope = _next_event(gym, stamp)
    updated = GymProfileUpdated(
        **envelope,
        name=unless_same(c.name, gym.name),
        email=unless_same(c.email, gym.email),
        address=unless_same(c.address, gym.address),
        description=unless_same(c.description, gym.description),
        gym_type=unless_same(c.gym_type, gym.gym_type),
        monthly_fee_cents=unless_same(c.monthly_fee_cents, gym.monthly_fee_cents),
        currency=unless_same(c.currency, gym.currency),
        timezone=unless_same(c.timezone, gym.timezone),
        reminder_days=unless_same(c.reminder_days, gym.reminder_days),
    )
    return None if updated == GymProfileUpdated(**envelope) else updated


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
    gym: Gym, token_id: UUID, expires_at: datetime, stamp: Stamp, *, token_generation: int
) -> AuditorAccessGranted:
    """`token_generation`: that of the owner's token asking (the new token's too)."""
    _require_open(gym)
    _require_current(gym, token_generation)
    if not stamp.at < expires_at <= stamp.at + MAX_AUDITOR_ACCESS:
        raise InvalidValue("expires_in_seconds", "must be between 1 second and 90 days")
    return AuditorAccessGranted(
        **_next_event(gym, stamp),
        token_id=token_id,
        expires_at=expires_at,
    )


def change_password(
    gym: Gym,
    *,
    current_password: str,
    new_password: str,
    verify_password: PasswordVerifier,
    hash_password: PasswordHasher,
    stamp: Stamp,
    token_generation: int,
) -> GymPasswordChanged:
    """The owner proves they know the current password (with a token of the current
    generation); the new one must be a valid, uncommon password other than the
    current one."""
    _require_open(gym)
    _require_current(gym, token_generation)
    if not verify_password(gym.password_hash, current_password):
        raise IncorrectPassword()
    new = v.password(new_password, field="new_password", user_inputs=(gym.email, gym.name))
    if new == current_password:
        raise InvalidValue("new_password", "must differ from the current password")
    return GymPasswordChanged(
        **_next_event(gym, stamp),
        password_hash=hash_password(new),
        token_generation=gym.token_generation + 1,
    )


def revoke_auditor_access(gym: Gym, token_id: UUID, stamp: Stamp) -> AuditorAccessRevoked | None:
    """None when the token is already revoked (nothing to record); NotFound for a
    token this gym never granted, whoever else did."""
    _require_open(gym)
    if token_id in gym.revoked_auditor_tokens:
        return None
    if token_id not in gym.auditor_tokens:
        raise NotFound("auditor token")
    return AuditorAccessRevoked(**_next_event(gym, stamp), token_id=token_id)


def _next_event(gym: Gym, stamp: Stamp) -> dict[str, Any]:
    """The envelope of the gym's next event."""
    return envelope(gym.id, gym.version + 1, stamp)


def _require_open(gym: Gym) -> None:
    if gym.closed:
        raise GymIsClosed(str(gym.id))


def _require_current(gym: Gym, token_generation: int) -> None:
    if token_generation != gym.token_generation:
        raise StaleCredentials(str(gym.id))


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
            # The event names only the fields that changed, by the names the state has.
            return msgspec.structs.replace(
                gym,
                version=event.originator_version,
                updated_at=event.timestamp,
                **carried_fields(event),
            )
        case GymPasswordRehashed(), Gym():
            return msgspec.structs.replace(
                gym, version=event.originator_version, password_hash=event.password_hash
            )
        case AuditorAccessGranted(), Gym():
            return msgspec.structs.replace(
                gym,
                version=event.originator_version,
                auditor_tokens=gym.auditor_tokens | {event.token_id},
            )
        case AuditorAccessRevoked(), Gym():
            return msgspec.structs.replace(
                gym,
                version=event.originator_version,
                auditor_tokens=gym.auditor_tokens - {event.token_id},
                revoked_auditor_tokens=gym.revoked_auditor_tokens | {event.token_id},
            )
        case GymPasswordChanged(), Gym():
            return msgspec.structs.replace(
                gym,
                version=event.originator_version,
                password_hash=event.password_hash,
                token_generation=event.token_generation,
                auditor_tokens=frozenset(),
                revoked_auditor_tokens=gym.revoked_auditor_tokens | gym.auditor_tokens,
            )
        case GymClosed(), Gym():
            return msgspec.structs.replace(
                gym, version=event.originator_version, updated_at=event.timestamp, closed=True
            )
    if gym is None:  # the stream is not a gym's (a customer's, a claim's, ...)
        raise StreamOfAnotherKind(f"{type(event).__name__} does not start a gym")
    raise ValueError(f"cannot apply {type(event).__name__} to {gym!r}")


project = fold(evolve)


EVENTS: tuple[type[DomainEvent], ...] = (
    GymRegistered,
    GymProfileUpdated,
    GymClosed,
    AuditorAccessGranted,
    GymPasswordRehashed,
    GymPasswordChanged,
    AuditorAccessRevoked,
)
