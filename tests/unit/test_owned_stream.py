"""Which stored streams a gym may read as a customer or as its own gym (pure code)."""

from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import pytest

from domain import customer, email_claim, idempotency
from domain.customer import NewCustomer
from domain.events import DomainEvent, EventMetadata, Stamp
from domain.gym import GymProfileUpdated
from infra.event_codec import CODEC
from projections.event_log import CUSTOMER_STREAM, GYM_STREAM, owned_stream

STAMP = Stamp(
    at=datetime(2026, 6, 15, tzinfo=UTC), metadata=EventMetadata(actor="t", correlation_id="c")
)
GYM_A, GYM_B = uuid4(), uuid4()


def stored(*events: DomainEvent) -> list[tuple[int, UUID, int, str, bytes]]:
    """The events as rows of the log: position, stream, version, topic, state."""
    rows = []
    for position, event in enumerate(events, start=1):
        topic, state = CODEC.encode(event)
        rows.append((position, event.originator_id, event.originator_version, topic, state))
    return rows


def registered(gym_id: UUID) -> customer.CustomerRegistered:
    details = NewCustomer(first_name="Ann", last_name="Lee", email="ann@example.com")
    return customer.register(uuid4(), gym_id, details, today=date(2026, 6, 15), stamp=STAMP)


def test_a_customer_of_the_gym_is_owned_with_every_event() -> None:
    first = registered(GYM_A)
    removed = customer.remove(customer.evolve(None, first), STAMP)
    owned = owned_stream(stored(first, removed), GYM_A, CUSTOMER_STREAM)
    assert [e.event for e in owned] == [first, removed]
    assert owned_stream(stored(first, removed), GYM_B, CUSTOMER_STREAM) == []
    assert owned_stream(stored(first), GYM_A, GYM_STREAM) == []


def test_an_email_claim_held_by_two_gyms_in_turn_belongs_to_neither() -> None:
    claimed = email_claim.claim(None, "a@example.com", GYM_A, STAMP)
    released = email_claim.release(email_claim.project(None, [claimed]), GYM_A, STAMP)  # type: ignore[arg-type]
    assert released is not None
    again = email_claim.claim(
        email_claim.project(None, [claimed, released]), "a@example.com", GYM_B, STAMP
    )
    rows = stored(claimed, released, again)
    for gym in (GYM_A, GYM_B):
        for kind in (CUSTOMER_STREAM, GYM_STREAM):
            assert owned_stream(rows, gym, kind) == []


def test_support_streams_are_no_kind_an_endpoint_serves() -> None:
    key = idempotency.use("scope", "k", "f", uuid4(), GYM_A, STAMP)
    for kind in (CUSTOMER_STREAM, GYM_STREAM):
        assert owned_stream(stored(key), GYM_A, kind) == []


def test_one_foreign_event_disqualifies_the_whole_stream() -> None:
    first = registered(GYM_A)
    forged = customer.CustomerRemoved(
        originator_id=first.originator_id,
        originator_version=2,
        timestamp=STAMP.at,
        metadata=STAMP.metadata,
        gym_id=GYM_B,
    )
    rows = stored(first, forged)
    assert owned_stream(rows, GYM_A, CUSTOMER_STREAM) == []
    assert owned_stream(rows, GYM_B, CUSTOMER_STREAM) == []
    # The write side refuses to fold it into a customer, too (load_customer: 404).
    with pytest.raises(ValueError, match="does not belong"):
        customer.project(None, [first, forged])


def test_a_gym_event_in_a_customer_stream_is_not_a_customer() -> None:
    first = registered(GYM_A)
    odd = GymProfileUpdated(
        originator_id=first.originator_id,
        originator_version=2,
        timestamp=STAMP.at,
        metadata=STAMP.metadata,
        name="X",
    )
    assert owned_stream(stored(first, odd), GYM_A, CUSTOMER_STREAM) == []
