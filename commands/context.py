"""What every command handler needs besides the command itself."""

import time
from dataclasses import dataclass, field
from uuid import uuid4

from domain.events import SYSTEM_ACTOR, EventMetadata, Stamp
from infra.clock import Clock, SystemClock

# How long a command may keep deciding again while other writers win (commands/latest.py)
# when its caller sets no budget of its own; the API uses COMMAND_TIMEOUT.
DEFAULT_BUDGET_SECONDS = 10.0


def _deadline_in(seconds: float) -> float:
    return time.monotonic() + seconds


@dataclass(frozen=True)
class CommandContext:
    """Who is asking (a gym id or "system"), on which request, and until when."""

    actor: str
    correlation_id: str
    clock: Clock = field(default_factory=SystemClock)
    # time.monotonic() after which a contended command gives up (a budget, not a moment
    # in the domain's time, so it never comes from `clock`).
    deadline: float = field(default_factory=lambda: _deadline_in(DEFAULT_BUDGET_SECONDS))

    def stamp(self) -> Stamp:
        return Stamp(
            at=self.clock.now(),
            metadata=EventMetadata(actor=self.actor, correlation_id=self.correlation_id),
        )

    def remaining(self) -> float:
        """Seconds left of the command's time budget (negative once it is spent)."""
        return self.deadline - time.monotonic()

    @classmethod
    def system(cls, clock: Clock | None = None) -> "CommandContext":
        return cls(actor=SYSTEM_ACTOR, correlation_id=str(uuid4()), clock=clock or SystemClock())

    @classmethod
    def within(
        cls, seconds: float, actor: str, correlation_id: str, clock: Clock
    ) -> "CommandContext":
        """A context whose time budget starts now."""
        return cls(actor, correlation_id, clock, _deadline_in(seconds))
