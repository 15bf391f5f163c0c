"""Pure domain model: aggregates, events and the rules they enforce."""

from domain import customer, email_claim, gym, idempotency
from domain.events import DomainEvent

# Every event type the log may contain, by stable name (see infra/event_codec.py).
EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    *gym.EVENTS,
    *email_claim.EVENTS,
    *customer.EVENTS,
    *idempotency.EVENTS,
)
