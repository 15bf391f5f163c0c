"""The event store the command handlers write to: eventsourcing's Application, on
PostgreSQL in every process, or on eventsourcing's in-memory (POPO) recorder for the
handlers' unit tests."""

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Mapper, Recording
from eventsourcing.postgres import PostgresApplicationRecorder

from commands.stream_locks import StreamLocks
from domain.errors import VersionConflict
from domain.events import DomainEvent
from infra import metrics
from infra.db import eventsourcing_env
from infra.event_codec import CODEC, MsgspecMapper
from infra.event_store import Guards, SingleTripRecorder
from infra.passwords import ARGON2, Argon2Passwords

T = TypeVar("T")
# Folds events onto a state (domain/events.fold): how each aggregate is rebuilt.
Projector = Callable[[T | None, Iterable[DomainEvent]], T | None]

IN_MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


class StreamConflict(VersionConflict):
    """Another writer appended to one of the streams first (optimistic concurrency):
    the version this command decided on is taken."""

    def __init__(self, stream_id: UUID, version: int) -> None:
        super().__init__(expected=version - 1)
        self.stream_id = stream_id


# How long a reader waits for another reading the same stream before reading it too.
READ_WAIT_SECONDS = 5.0


class LatestStates:
    """The latest state of the streams this process has read, each brought up to date
    with the events after its version: one indexed read that usually returns nothing,
    so loading a gym costs the same after 10,000 events as after one (issue 14). Exact,
    because the log is read every time; only the replay is saved."""

    def __init__(self, events: "EventStore", size: int = 4096) -> None:
        self._events = events
        self._size = size
        self._lock = threading.Lock()
        self._states: OrderedDict[tuple[object, UUID], tuple[int, object]] = OrderedDict()
        # One reader of a stream at a time: the 16 requests that arrive together for a
        # gym nobody has read yet would otherwise each fetch all of its events at once
        # (the bench's API peaked at 250 MB on a 10,000-event gym). The others wait,
        # then read only what came after.
        self._reading = StreamLocks()

    def get(self, stream_id: UUID, project: Projector[T]) -> T | None:
        """The stream's state as `project` folds it; None for a stream with no events.
        Whatever `project` raises (a stream of another kind) is raised, not kept."""
        return self.get_with_version(stream_id, project)[0]

    def get_with_version(self, stream_id: UUID, project: Projector[T]) -> tuple[T | None, int]:
        """get(), and the version of the state (0 for no events)."""
        with self._reading.holding(stream_id, READ_WAIT_SECONDS):
            return self._bring_up_to_date(stream_id, project)

    def cached(self, stream_id: UUID, project: Projector[T]) -> tuple[T | None, int] | None:
        """The state last read and its version, without reading the log (None when
        not kept): only for a command whose append names that version as a guard."""
        with self._lock:
            kept = self._states.get((project, stream_id))
        return None if kept is None else (cast("T | None", kept[1]), kept[0])

    def forget(self, stream_id: UUID) -> None:
        """Drop the stream's kept states: a guard found them behind the log."""
        with self._lock:
            for key in [key for key in self._states if key[1] == stream_id]:
                del self._states[key]

    def _bring_up_to_date(self, stream_id: UUID, project: Projector[T]) -> tuple[T | None, int]:
        key = (project, stream_id)
        with self._lock:
            version, state = self._states.get(key, (0, None))
        newest = version

        def newer() -> Iterator[DomainEvent]:
            # Decoded one at a time as they are folded: a long stream's first read
            # never holds all of its events at once.
            nonlocal newest
            for event in self._events.events.get(stream_id, gt=version or None):
                newest = event.originator_version
                yield cast("DomainEvent", event)  # our mapper makes DomainEvents

        latest = project(cast("T | None", state), newer())
        if newest == version:
            return cast("T | None", state), version
        with self._lock:
            kept = self._states.get(key)
            if kept is None or kept[0] < newest:
                self._states[key] = (newest, latest)
            self._states.move_to_end(key)
            if len(self._states) > self._size:
                self._states.popitem(last=False)
        return latest, newest


class EventStore(Application[UUID]):
    # Names the table (gymledger_events) and the NOTIFY channel: never change it.
    name = "GymLedger"

    def __init__(
        self, database_url: str | None, pool_size: int = 5, *, passwords: Argon2Passwords = ARGON2
    ) -> None:
        """On PostgreSQL at `database_url`; in memory when it is None (unit tests)."""
        env = IN_MEMORY if database_url is None else eventsourcing_env(database_url, pool_size)
        super().__init__(env=env)
        self.passwords = passwords
        # This process's writers of one stream take turns (commands/latest.py).
        self.stream_locks = StreamLocks()
        self.latest = LatestStates(self)

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(CODEC)

    @property
    def guards_appends(self) -> bool:
        """Whether append() checks `guards` (PostgreSQL does; the in-memory store of
        the unit tests does not, so there commands read what they guard instead)."""
        return isinstance(self.recorder, SingleTripRecorder)

    def append(self, *events: DomainEvent | None, guards: Guards | None = None) -> int:
        """Append events atomically; returns the highest global position written.

        A duplicate (stream, version) means someone else wrote first: that is the
        race the optimistic-concurrency and uniqueness rules rely on. So does a
        stream of `guards` that has moved past the version given for it; its kept
        state is then dropped, so that the command's retry reads it.
        """
        to_save: Sequence[Any] = [e for e in events if e is not None]
        if not to_save:
            return 0
        try:
            recordings: list[Recording[UUID]] = self.save(*to_save, guards=guards)
        except IntegrityError as error:
            for stream_id in guards or ():
                self.latest.forget(stream_id)
            first = to_save[0]
            raise StreamConflict(first.originator_id, first.originator_version) from error
        for event in to_save:
            metrics.EVENTS_APPENDED.labels(type(event).__name__).inc()
        return max(r.notification.id for r in recordings)

    def create_tables(self) -> None:
        """Used by migrations only; the running services never create tables."""
        if isinstance(self.recorder, PostgresApplicationRecorder):
            self.recorder.create_table()
