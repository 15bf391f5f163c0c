"""EmailClaim: makes "one open gym per owner email" race-free in the event store.

Each email maps to a deterministic stream id. Claiming appends the next version of
that stream in the same transaction as the gym's own event, so of two concurrent
signups the store's (stream, version) uniqueness lets exactly one commit. Closing a
gym appends a release, and a later signup claims the stream again.
"""

from uuid import UUID, uuid5

import msgspec

from domain.errors import EmailAlreadyRegistered
from domain.events import DomainEvent, Stamp, envelope, fold

_NAMESPACE = UUID("3f0c5a52-0d7e-4a57-9d51-5c7f9b0f2a10")


class EmailClaimed(DomainEvent, frozen=True, kw_only=True):
    email: str
    gym_id: UUID


class EmailReleased(DomainEvent, frozen=True, kw_only=True):
    email: str
    gym_id: UUID


class EmailClaim(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    email: str
    holder: UUID | None


def claim_id(email: str) -> UUID:
    """`email` must already be normalised (domain.validation.email)."""
    return uuid5(_NAMESPACE, email)


def claim(current: EmailClaim | None, email: str, gym_id: UUID, stamp: Stamp) -> EmailClaimed:
    if current is not None and current.holder is not None:
        raise EmailAlreadyRegistered(email)
    return EmailClaimed(
        **envelope(claim_id(email), 1 if current is None else current.version + 1, stamp),
        email=email,
        gym_id=gym_id,
    )


def release(current: EmailClaim, gym_id: UUID, stamp: Stamp) -> EmailReleased | None:
    """Only the holder can release; anything else is a no-op, never an error."""
    if current.holder != gym_id:
        return None
    return EmailReleased(
        **envelope(current.id, current.version + 1, stamp),
        email=current.email,
        gym_id=gym_id,
    )


def evolve(current: EmailClaim | None, event: DomainEvent) -> EmailClaim:
    match event:
        case EmailClaimed():
            return EmailClaim(
                id=event.originator_id,
                version=event.originator_version,
                email=event.email,
                holder=event.gym_id,
            )
        case EmailReleased() if current is not None:
            return msgspec.structs.replace(current, version=event.originator_version, holder=None)
    raise ValueError(f"cannot apply {type(event).__name__} to {current!r}")


project = fold(evolve)


EVENTS: tuple[type[DomainEvent], ...] = (EmailClaimed, EmailReleased)
