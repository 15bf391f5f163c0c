"""The base of every stored event.

Events are frozen msgspec Structs with explicit, concretely typed fields. The
codec stores `class_version` beside each event: when a stored shape changes, bump
the version and register an upcaster instead of renaming or repurposing a field.
"""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import msgspec

SYSTEM_ACTOR = "system"


class EventMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """Who asked for the change and on which request (for auditors)."""

    actor: str
    correlation_id: str
    causation_id: str | None = None


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    originator_id: UUID
    originator_version: int
    timestamp: datetime
    metadata: EventMetadata

    class_version: ClassVar[int] = 1


class Stamp(msgspec.Struct, frozen=True, kw_only=True):
    """What a command handler passes in so the domain never reads a clock."""

    at: datetime
    metadata: EventMetadata


def envelope(stream_id: UUID, version: int, stamp: Stamp) -> dict[str, Any]:
    """What every event carries besides its own fields: its stream, its version in
    that stream, when it happened and on whose request (`Event(**envelope(...), ...)`)."""
    return {
        "originator_id": stream_id,
        "originator_version": version,
        "timestamp": stamp.at,
        "metadata": stamp.metadata,
    }


State = TypeVar("State")


def fold(
    evolve: Callable[[State | None, DomainEvent], State],
) -> Callable[[State | None, Iterable[DomainEvent]], State | None]:
    """Turn an `evolve(state, event)` into the `project(state, events)` eventsourcing's
    Repository.get(projector_func=...) expects (None: the stream has no events)."""

    def project(state: State | None, events: Iterable[DomainEvent]) -> State | None:
        for event in events:
            state = evolve(state, event)
        return state

    return project


def carried_fields(event: DomainEvent, *besides: str) -> dict[str, object]:
    """The fields a partial-update event carries, by name: those that are set (not
    UNSET), without the envelope every event has and the names in `besides`."""
    skip = {*DomainEvent.__struct_fields__, *besides}
    return {
        name: value
        for name, value in msgspec.structs.asdict(event).items()
        if name not in skip and value is not msgspec.UNSET
    }
