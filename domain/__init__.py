"""Pure domain model: aggregates, events and the rules they enforce."""

from uuid import UUID

from domain import (
    card_claim,
    check_in,
    customer,
    email_claim,
    gym,
    idempotency,
    membership,
    plan,
)
from domain.events import DomainEvent

# Every event type the log may contain, by stable name (see infra/event_codec.py).
EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    *gym.EVENTS,
    *email_claim.EVENTS,
    *customer.EVENTS,
    *idempotency.EVENTS,
    *plan.EVENTS,
    *membership.EVENTS,
    *check_in.EVENTS,
    *card_claim.EVENTS,
)


def gym_of(event: DomainEvent) -> UUID:
    """The tenant an event belongs to: its `gym_id`, or itself for the gym's own stream."""
    gym_id = getattr(event, "gym_id", None)
    return gym_id if isinstance(gym_id, UUID) else event.originator_id
