"""The base of every stored event.

Events are frozen msgspec Structs with explicit, concretely typed fields. The
codec stores `class_version` beside each event: when a stored shape changes, bump
the version and register an upcaster instead of renaming or repurposing a field.
"""

from datetime import datetime
from typing import ClassVar
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
