"""Open gyms and their timezones, cached in each API process.

Every authenticated request asks "is this gym still open, and what is its
timezone?". Asking PostgreSQL each time took about a quarter of the API's CPU
under load (bench/README.md), while the answer changes only when a gym changes
its timezone or closes. The projector announces those changes
(GYM_CHANGED_CHANNEL) in the same transaction that applies them, and the
projection watcher calls `forget` before it moves its position past them. So a
request that waited for a close to be projected never sees the gym as open.

Only open gyms are cached: an unknown or closed gym is asked about every time.
"""

from uuid import UUID

MAX_GYMS = 100_000


class OpenGyms:
    def __init__(self, max_gyms: int = MAX_GYMS) -> None:
        self._timezones: dict[UUID, str] = {}
        self._max_gyms = max_gyms
        # Moves on every forget: an answer read while a change was announced is not kept.
        self.epoch = 0

    def timezone(self, gym_id: UUID) -> str | None:
        return self._timezones.get(gym_id)

    def remember(self, gym_id: UUID, timezone: str, epoch_before_read: int) -> None:
        """Keep an answer read from the database, unless a change was announced
        while it was being read (it might predate that change)."""
        if epoch_before_read != self.epoch:
            return
        if len(self._timezones) >= self._max_gyms:
            del self._timezones[next(iter(self._timezones))]  # the oldest entry
        self._timezones[gym_id] = timezone

    def forget(self, gym_id: UUID) -> None:
        self.epoch += 1
        self._timezones.pop(gym_id, None)

    def forget_all(self) -> None:
        """When announcements may have been missed (the listener reconnected)."""
        self.epoch += 1
        self._timezones.clear()
