"""msgspec mapper for eventsourcing: Structs go to JSON bytes and back directly.

Stored topics are stable names with a version ("GymRegistered.v1"), not Python
import paths, so modules can move without breaking the log. When an event class
raises `class_version`, older payloads pass through its `upcasters` (one function
per step, v1->v2, v2->v3, ...) before being decoded into the current class.
"""

from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder

from domain import EVENT_TYPES
from domain.events import DomainEvent

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    pass


class _NoTranscoder(Transcoder):
    """The mapper encodes Structs itself; eventsourcing still wants a transcoder object."""

    def encode(self, obj: Any) -> bytes:
        return msgspec.json.encode(obj)

    def decode(self, data: bytes) -> Any:
        return msgspec.json.decode(data)


def topic_for(cls: type[DomainEvent]) -> str:
    return f"{cls.__name__}.v{cls.class_version}"


def split_topic(topic: str) -> tuple[str, int]:
    name, _, version = topic.rpartition(".v")
    return name, int(version)


class EventCodec:
    """Encodes and decodes registered event types; shared by writers and projectors."""

    def __init__(self, event_types: Iterable[type[DomainEvent]]) -> None:
        self._types: dict[str, type[DomainEvent]] = {}
        for cls in event_types:
            if cls.__name__ in self._types:
                raise ValueError(f"duplicate event type name {cls.__name__}")
            self._types[cls.__name__] = cls
        self._encoder = msgspec.json.Encoder()
        self._decoders = {name: msgspec.json.Decoder(cls) for name, cls in self._types.items()}

    @property
    def event_types(self) -> tuple[type[DomainEvent], ...]:
        """Every event type the log may hold."""
        return tuple(self._types.values())

    def type_named(self, name: str) -> type[DomainEvent]:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownEventType(name) from None

    def topics_for(self, name: str) -> list[str]:
        """Every stored topic of one event type, old versions included."""
        cls = self.type_named(name)
        return [f"{name}.v{n}" for n in range(1, cls.class_version + 1)]

    def encode(self, event: DomainEvent) -> tuple[str, bytes]:
        return topic_for(type(event)), self._encoder.encode(event)

    def decode(self, topic: str, state: bytes) -> DomainEvent:
        name, version = split_topic(topic)
        cls = self.type_named(name)
        if version == cls.class_version:
            return self._decoders[name].decode(state)
        payload: dict[str, Any] = msgspec.json.decode(state)
        upcasters: dict[int, Upcaster] = getattr(cls, "upcasters", {})
        for step in range(version, cls.class_version):
            payload = upcasters[step](payload)
        return self._decoders[name].decode(msgspec.json.encode(payload))


class MsgspecMapper(Mapper[UUID]):
    def __init__(self, codec: EventCodec) -> None:
        super().__init__(transcoder=_NoTranscoder())
        self.codec = codec

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        topic, state = self.codec.encode(domain_event)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic,
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return self.codec.decode(stored_event.topic, bytes(stored_event.state))


# Every event type the log may hold (the domain's registry of types).
CODEC = EventCodec(EVENT_TYPES)
