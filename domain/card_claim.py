"""CardClaim: makes "one customer per card code within a gym" race-free in the event store.

The same device as the owners' emails (domain/email_claim.py): each (gym, code) maps
to a deterministic stream id, and giving a customer a code appends the next version
of that stream in the same transaction as the customer's own event, so of two
concurrent requests for one code the store's (stream, version) uniqueness lets
exactly one commit. Changing or clearing the code, or removing the customer, appends
a release; a later customer claims the stream again. Another gym's code is another
stream, so the same code may be used in every gym.
"""

from uuid import UUID, uuid5

import msgspec

from domain.errors import CardCodeTaken
from domain.events import DomainEvent, Stamp, envelope, fold

_NAMESPACE = UUID("6b3f2f0e-4c1d-4f7a-8e53-1d2a9c0b7e41")


class CardCodeClaimed(DomainEvent, frozen=True, kw_only=True):
    gym_id: UUID
    card_code: str
    customer_id: UUID


class CardCodeReleased(DomainEvent, frozen=True, kw_only=True):
    gym_id: UUID
    card_code: str
    customer_id: UUID


class CardClaim(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    gym_id: UUID
    card_code: str
    holder: UUID | None  # the customer who carries the card; None once released


def claim_id(gym_id: UUID, card_code: str) -> UUID:
    """`card_code` as domain.validation.card_code accepted it (compared exactly)."""
    return uuid5(_NAMESPACE, f"{gym_id}\n{card_code}")


def claim(
    current: CardClaim | None, gym_id: UUID, card_code: str, customer_id: UUID, stamp: Stamp
) -> CardCodeClaimed:
    if current is not None and current.holder is not None:
        raise CardCodeTaken(card_code)
    return CardCodeClaimed(
        **envelope(
            claim_id(gym_id, card_code), 1 if current is None else current.version + 1, stamp
        ),
        gym_id=gym_id,
        card_code=card_code,
        customer_id=customer_id,
    )


def release(current: CardClaim, customer_id: UUID, stamp: Stamp) -> CardCodeReleased | None:
    """Only the holder can release; anything else is a no-op, never an error."""
    if current.holder != customer_id:
        return None
    return CardCodeReleased(
        **envelope(current.id, current.version + 1, stamp),
        gym_id=current.gym_id,
        card_code=current.card_code,
        customer_id=customer_id,
    )


def evolve(current: CardClaim | None, event: DomainEvent) -> CardClaim:
    match event:
        case CardCodeClaimed():
            return CardClaim(
                id=event.originator_id,
                version=event.originator_version,
                gym_id=event.gym_id,
                card_code=event.card_code,
                holder=event.customer_id,
            )
        case CardCodeReleased() if current is not None:
            return msgspec.structs.replace(current, version=event.originator_version, holder=None)
    raise ValueError(f"cannot apply {type(event).__name__} to {current!r}")


project = fold(evolve)


EVENTS: tuple[type[DomainEvent], ...] = (CardCodeClaimed, CardCodeReleased)
