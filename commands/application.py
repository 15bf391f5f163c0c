"""The eventsourcing Application that stores GymLedger's events in PostgreSQL."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Mapper, Recording

from commands.stream_locks import StreamLocks
from domain.errors import VersionConflict
from domain.events import DomainEvent
from infra import metrics
from infra.db import eventsourcing_env
from infra.event_codec import CODEC, MsgspecMapper


class StreamConflict(VersionConflict):
    """Another writer appended to one of the streams first (optimistic concurrency)."""


class GymLedger(Application[UUID]):
    name = "GymLedger"

    def __init__(self, database_url: str, pool_size: int = 5) -> None:
        super().__init__(env=eventsourcing_env(database_url, pool_size))
        # This process's writers of one stream take turns (commands/latest.py).
        self.stream_locks = StreamLocks()

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(CODEC)

    def append(self, *events: DomainEvent | None) -> int:
        """Append events atomically; returns the highest global position written.

        A duplicate (stream, version) means someone else wrote first: that is the
        race the optimistic-concurrency and uniqueness rules rely on.
        """
        to_save: Sequence[Any] = [e for e in events if e is not None]
        if not to_save:
            return 0
        try:
            recordings: list[Recording[UUID]] = self.save(*to_save)
        except IntegrityError as error:
            raise StreamConflict(expected=to_save[0].originator_version, actual=-1) from error
        for event in to_save:
            metrics.EVENTS_APPENDED.labels(type(event).__name__).inc()
        return max(r.notification.id for r in recordings)

    def create_tables(self) -> None:
        """Used by migrations only; the running services never create tables."""
        self.recorder.create_table()  # type: ignore[attr-defined]
