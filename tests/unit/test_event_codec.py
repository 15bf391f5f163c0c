"""The msgspec codec: round trips, stable topics, upcasting of old payloads."""

from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import uuid4

import msgspec
import pytest

from domain.events import DomainEvent, EventMetadata
from domain.gym import GymProfileUpdated
from infra.event_codec import CODEC, EventCodec, UnknownEventType

META = EventMetadata(actor="t", correlation_id="c")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_round_trip_keeps_unset_fields_absent() -> None:
    event = GymProfileUpdated(
        originator_id=uuid4(), originator_version=2, timestamp=NOW, metadata=META, name="X"
    )
    topic, state = CODEC.encode(event)
    assert topic == "GymProfileUpdated.v1"
    assert b"currency" not in state
    assert CODEC.decode(topic, state) == event


def test_unknown_topic_is_refused() -> None:
    with pytest.raises(UnknownEventType):
        CODEC.decode("Nope.v1", b"{}")


class PriceSetV2(DomainEvent, frozen=True, kw_only=True):
    """Version 2 split an int price into cents and currency."""

    cents: int
    currency: str
    class_version: ClassVar[int] = 2
    upcasters: ClassVar[dict[int, Any]] = {
        1: lambda old: {
            **{k: v for k, v in old.items() if k != "price"},
            "cents": old["price"] * 100,
            "currency": "EUR",
        },
    }


def test_old_payloads_are_upcast() -> None:
    codec = EventCodec([PriceSetV2])
    old_payload = {
        "originator_id": str(uuid4()),
        "originator_version": 1,
        "timestamp": NOW.isoformat(),
        "metadata": {"actor": "t", "correlation_id": "c"},
        "price": 12,
    }
    event = codec.decode("PriceSetV2.v1", msgspec.json.encode(old_payload))
    assert isinstance(event, PriceSetV2)
    assert (event.cents, event.currency) == (1200, "EUR")
    assert codec.topics_for("PriceSetV2") == ["PriceSetV2.v1", "PriceSetV2.v2"]
