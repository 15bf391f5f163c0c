"""When the supervisor starts a crashed child again, and when it stops trying.

Pure bookkeeping on the times it is given, so it is tested without waiting.
"""

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 0.5  # seconds before the first restart after a crash
    max_delay: float = 30.0  # the pause doubles with each crash in a row, up to this
    healthy_after: float = 60.0  # a child that ran this long starts again at first_delay
    max_restarts: int = 5  # more crashes than this within `window` seconds: give up
    window: float = 60.0


@dataclass
class RestartHistory:
    """The crashes of one child."""

    policy: RestartPolicy
    _delay: float = field(init=False)
    _restarts: deque[float] = field(init=False, default_factory=deque)

    def __post_init__(self) -> None:
        self._delay = self.policy.first_delay

    def next_delay(self, started_at: float, exited_at: float) -> float | None:
        """Seconds to wait before starting the child again after it exited at `exited_at`
        (having started at `started_at`), or None when it crashed too often to go on."""
        if exited_at - started_at >= self.policy.healthy_after:
            self._delay = self.policy.first_delay
        while self._restarts and exited_at - self._restarts[0] > self.policy.window:
            self._restarts.popleft()
        if len(self._restarts) >= self.policy.max_restarts:
            return None
        self._restarts.append(exited_at)
        delay, self._delay = self._delay, min(self._delay * 2, self.policy.max_delay)
        return delay

    @property
    def recent(self) -> int:
        """Restarts within the window that ended with the last exit."""
        return len(self._restarts)
