"""Card codes' claim streams (domain/card_claim.py), for the customer and check-in commands.

A customer's card code is theirs while they hold its claim: the claim is taken and
released in the same append as the customer's own event, so two customers of a gym
can never both end up with one code, however their requests interleave.
"""

from collections.abc import Iterable
from uuid import UUID

import msgspec

from commands.store import EventStore
from domain import card_claim
from domain.customer import Customer, CustomerDetailsChanged, CustomerRegistered
from domain.errors import CardCodeTaken
from domain.events import DomainEvent, Stamp


def load_claim(app: EventStore, gym_id: UUID, card_code: str) -> card_claim.CardClaim | None:
    found: card_claim.CardClaim | None = app.latest.get(
        card_claim.claim_id(gym_id, card_code), card_claim.project
    )
    return found


def holder(app: EventStore, gym_id: UUID, card_code: str) -> UUID | None:
    """The customer of `gym_id` who carries `card_code` now, as the log says."""
    claim = load_claim(app, gym_id, card_code)
    return None if claim is None else claim.holder


def claim_for_new(
    app: EventStore, registered: CustomerRegistered, stamp: Stamp
) -> DomainEvent | None:
    """The claim of a new customer's card (None without one); CardCodeTaken if held."""
    if registered.card_code is None:
        return None
    code = registered.card_code
    current = load_claim(app, registered.gym_id, code)
    return card_claim.claim(current, registered.gym_id, code, registered.originator_id, stamp)


def moves(
    app: EventStore, current: Customer, events: Iterable[DomainEvent], stamp: Stamp
) -> list[DomainEvent]:
    """The claim events that go with a change of the customer's card code in `events`:
    take the new code (CardCodeTaken if another customer holds it), free the old one."""
    new: str | msgspec.UnsetType | None = msgspec.UNSET
    for event in events:
        if isinstance(event, CustomerDetailsChanged) and event.card_code is not msgspec.UNSET:
            new = event.card_code
    if isinstance(new, msgspec.UnsetType):
        return []
    claims: list[DomainEvent] = []
    if new is not None:
        taken = load_claim(app, current.gym_id, new)
        claims.append(card_claim.claim(taken, current.gym_id, new, current.id, stamp))
    return claims + released(app, current, stamp)


def released(app: EventStore, current: Customer, stamp: Stamp) -> list[DomainEvent]:
    """The release of the card the customer carries (none without one)."""
    if current.card_code is None:
        return []
    claim = load_claim(app, current.gym_id, current.card_code)
    freed = None if claim is None else card_claim.release(claim, current.id, stamp)
    return [] if freed is None else [freed]


def refuse_if_taken(app: EventStore, appended: Iterable[DomainEvent | None]) -> None:
    """After an append lost a race: CardCodeTaken when what it lost was a card's claim
    (another customer took the code meanwhile), rather than a version conflict."""
    for event in appended:
        if isinstance(event, card_claim.CardCodeClaimed):
            now = holder(app, event.gym_id, event.card_code)
            if now is not None and now != event.customer_id:
                raise CardCodeTaken(event.card_code)
