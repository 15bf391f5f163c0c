from datetime import UTC, datetime
from uuid import uuid4

import pytest

from domain import email_claim
from domain.errors import EmailAlreadyRegistered
from domain.events import EventMetadata, Stamp

STAMP = Stamp(
    at=datetime(2026, 1, 1, tzinfo=UTC), metadata=EventMetadata(actor="t", correlation_id="c")
)


def test_claim_is_deterministic_per_email() -> None:
    assert email_claim.claim_id("a@example.com") == email_claim.claim_id("a@example.com")
    assert email_claim.claim_id("a@example.com") != email_claim.claim_id("b@example.com")


def test_held_claim_refuses_a_second_gym_until_released() -> None:
    first, second = uuid4(), uuid4()
    held = email_claim.evolve(None, email_claim.claim(None, "a@example.com", first, STAMP))
    with pytest.raises(EmailAlreadyRegistered):
        email_claim.claim(held, "a@example.com", second, STAMP)
    released_event = email_claim.release(held, first, STAMP)
    assert released_event is not None
    released = email_claim.evolve(held, released_event)
    again = email_claim.claim(released, "a@example.com", second, STAMP)
    assert again.originator_version == 3
    assert again.gym_id == second


def test_only_the_holder_releases() -> None:
    held = email_claim.evolve(None, email_claim.claim(None, "a@example.com", uuid4(), STAMP))
    assert email_claim.release(held, uuid4(), STAMP) is None
