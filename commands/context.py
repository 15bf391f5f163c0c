"""What every command handler needs besides the command itself."""

from dataclasses import dataclass, field
from uuid import uuid4

from domain.events import SYSTEM_ACTOR, EventMetadata, Stamp
from infra.clock import Clock, SystemClock


@dataclass(frozen=True)
class CommandContext:
    """Who is asking (a gym id or "system") and on which request."""

    actor: str
    correlation_id: str
    clock: Clock = field(default_factory=SystemClock)

    def stamp(self) -> Stamp:
        return Stamp(
            at=self.clock.now(),
            metadata=EventMetadata(actor=self.actor, correlation_id=self.correlation_id),
        )

    @classmethod
    def system(cls, clock: Clock | None = None) -> "CommandContext":
        return cls(actor=SYSTEM_ACTOR, correlation_id=str(uuid4()), clock=clock or SystemClock())
