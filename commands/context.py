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
    """Who is asking (a gym id or "system"), on which request, and until when.

    Every event a command records carries `correlation_id` and `causation_id` in its
    metadata. Correlation names the request the work belongs to: for an HTTP command
    the request id (X-Request-ID), which every event and log line of that request
    shares. Causation names the message that made this command happen when that is
    not a person's request but something the system received, such as the dramatiq
    message id of the expiry job (workers/expiry.py); None when nothing caused it
    but the request itself, which is every HTTP command.
    """

    actor: str
    correlation_id: str
    clock: Clock = field(default_factory=SystemClock)
    # time.monotonic() after which a contended command gives up (a budget, not a moment
    # in the domain's time, so it never comes from `clock`).
    deadline: float = field(default_factory=lambda: _deadline_in(DEFAULT_BUDGET_SECONDS))
    causation_id: str | None = None

    def stamp(self) -> Stamp:
        return Stamp(
            at=self.clock.now(),
            metadata=EventMetadata(
                actor=self.actor,
                correlation_id=self.correlation_id,
                causation_id=self.causation_id,
            ),
        )

    def remaining(self) -> float:
        """Seconds left of the command's time budget (negative once it is spent)."""
        return self.deadline - time.monotonic()

    @classmethod
    def system(
        cls, clock: Clock | None = None, causation_id: str | None = None
    ) -> "CommandContext":
        return cls(
            actor=SYSTEM_ACTOR,
            correlation_id=str(uuid4()),
            clock=clock or SystemClock(),
            causation_id=causation_id,
        )

    @classmethod
    def within(
        cls, seconds: float, actor: str, correlation_id: str, clock: Clock
    ) -> "CommandContext":
        """A context whose time budget starts now."""
        return cls(actor, correlation_id, clock, _deadline_in(seconds))
