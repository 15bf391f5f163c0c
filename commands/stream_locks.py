"""One writer at a time per stream, within one process.

Writers of one stream in one process would otherwise all load the same version, and
all but one would lose the append and load the stream again: on a long stream each
of those replays costs more than the write itself, and every loser holds a database
connection while it replays. Queued here, they wait without a connection and each
one's load sees the version the previous one wrote. Writers in other processes still
race through the database's optimistic concurrency (commands/latest.py).
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID


class StreamLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        # A lock per stream with its number of holders and waiters: dropped when the
        # last one leaves, so the table holds only the streams being written now.
        self._locks: dict[UUID, tuple[threading.Lock, int]] = {}

    @contextmanager
    def holding(self, stream_id: UUID, timeout: float) -> Iterator[bool]:
        """Holds the stream's lock for the block; yields False if it could not be had
        within `timeout` seconds (the block then runs without it)."""
        with self._guard:
            lock, users = self._locks.get(stream_id, (threading.Lock(), 0))
            self._locks[stream_id] = (lock, users + 1)
        acquired = lock.acquire(timeout=max(timeout, 0.0))
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()
            with self._guard:
                users = self._locks[stream_id][1] - 1
                if users:
                    self._locks[stream_id] = (lock, users)
                else:
                    del self._locks[stream_id]

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)
