"""Open gyms and what tokens they accept, cached in each API process.

Every authenticated request asks "is this gym still open, what is its timezone,
and is this token still good for it?". Asking PostgreSQL each time took about a
quarter of the API's CPU under load (bench/README.md), while the answer changes
only when a gym changes its timezone, its password or its auditor tokens, or
closes. The projector announces those changes (GYM_CHANGED_CHANNEL) in the same
transaction that applies them, and the projection watcher calls `forget` before
it moves its position past them. So a request that waited for a close or a
revocation to be projected never sees the gym's old state, and every other
process drops it as soon as it hears the announcement.

Only open gyms are cached: an unknown or closed gym is asked about every time.
"""

from uuid import UUID

from projections.gyms import GymAccess

MAX_GYMS = 100_000


class OpenGyms:
    def __init__(self, max_gyms: int = MAX_GYMS) -> None:
        self._gyms: dict[UUID, GymAccess] = {}
        self._max_gyms = max_gyms
        # Moves on every forget: an answer read while a change was announced is not kept.
        self.epoch = 0

    def access(self, gym_id: UUID) -> GymAccess | None:
        return self._gyms.get(gym_id)

    def remember(self, gym_id: UUID, access: GymAccess, epoch_before_read: int) -> None:
        """Keep an answer read from the database, unless a change was announced
        while it was being read (it might predate that change)."""
        if epoch_before_read != self.epoch:
            return
        if len(self._gyms) >= self._max_gyms:
            del self._gyms[next(iter(self._gyms))]  # the oldest entry
        self._gyms[gym_id] = access

    def forget(self, gym_id: UUID) -> None:
        self.epoch += 1
        self._gyms.pop(gym_id, None)

    def forget_all(self) -> None:
        """When announcements may have been missed (the listener reconnected)."""
        self.epoch += 1
        self._gyms.clear()
