"""Per-gym index of the event log, for the event feed and history.

The projector writes index rows in log order and commits them with its position,
so a reader that pages with `position > last_seen` never misses or repeats an
event: rows only ever appear at the end, in whole committed batches.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import TupleRow

from domain import gym_of
from infra.event_codec import CODEC, split_topic
from projections.engine import BulkInsert, Projection, Recorded

MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS event_index (
    position bigint PRIMARY KEY,
    gym_id uuid NOT NULL,
    stream_id uuid NOT NULL,
    event_type text NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS event_index_gym ON event_index (gym_id, position);
CREATE INDEX IF NOT EXISTS event_index_gym_type ON event_index (gym_id, event_type, position);
"""


class EventIndexProjection(Projection):
    tables: tuple[str, ...] = ("event_index",)
    rebuildable = True

    def __init__(self) -> None:
        self._rows = BulkInsert(
            "event_index",
            {
                "position": "bigint",
                "gym_id": "uuid",
                "stream_id": "uuid",
                "event_type": "text",
                "recorded_at": "timestamptz",
            },
        )

    def begin_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        self._rows.rows.clear()

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        self._rows.add(
            recorded.position,
            gym_of(recorded.event),
            recorded.stream_id,
            split_topic(recorded.topic)[0],
            recorded.event.timestamp,
        )

    def end_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        self._rows.flush(cur)


class StoredRow(NamedTuple):
    position: int
    stream_id: UUID
    version: int
    topic: str
    state: bytes


class EventRecord(msgspec.Struct, frozen=True):
    """One event as auditors and integrations see it (no secrets)."""

    position: int
    stream_id: UUID
    version: int
    type: str
    recorded_at: datetime
    actor: str
    correlation_id: str
    data: dict[str, Any]


_ENVELOPE = {"originator_id", "originator_version", "timestamp", "metadata"}
# Stored for login, never shown: not in history, feed or export.
_SECRETS = {"password_hash"}


def describe(row: StoredRow) -> EventRecord:
    event = CODEC.decode(row.topic, row.state)  # upcast to the current shape
    data = msgspec.to_builtins(event)
    return EventRecord(
        position=row.position,
        stream_id=row.stream_id,
        version=row.version,
        type=type(event).__name__,
        recorded_at=event.timestamp.astimezone(UTC),
        actor=event.metadata.actor,
        correlation_id=event.metadata.correlation_id,
        data={k: v for k, v in data.items() if k not in _ENVELOPE | _SECRETS},
    )


def _rows(fetched: list[Any]) -> list[StoredRow]:
    return [StoredRow(r[0], r[1], r[2], r[3], bytes(r[4])) for r in fetched]


GYM_EVENTS_SQL = (
    "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state"
    " FROM event_index i JOIN gymledger_events e ON e.notification_id = i.position"
    " WHERE i.gym_id = %(gym)s AND i.position > %(after)s"
    " AND (%(types)s::text[] IS NULL OR i.event_type = ANY(%(types)s::text[]))"
    " ORDER BY i.position LIMIT %(limit)s"
)


async def gym_events(
    conn: psycopg.AsyncConnection[Any],
    gym_id: UUID,
    after: int,
    limit: int,
    event_types: list[str] | None = None,
) -> list[StoredRow]:
    """The gym's events after `after`, in log order, as stored."""
    params = {"gym": gym_id, "after": after, "limit": limit, "types": event_types or None}
    cur = await conn.execute(GYM_EVENTS_SQL, params)
    return _rows(await cur.fetchall())


def all_gym_events(
    conn: psycopg.Connection[Any], gym_id: UUID, page: int = 1000
) -> Iterator[StoredRow]:
    """Every event of a gym, in log order (for export), fetched page by page."""
    after = 0
    while True:
        params = {"gym": gym_id, "after": after, "limit": page, "types": None}
        rows = _rows(conn.execute(GYM_EVENTS_SQL, params).fetchall())
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].position


async def tenant_stream(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, stream_id: UUID
) -> list[StoredRow]:
    """Every stored event of one stream, oldest first, straight from the log; empty
    unless the stream belongs to `gym_id` (another gym's stream looks absent)."""
    cur = await conn.execute(
        "SELECT notification_id, originator_id, originator_version, topic, state"
        " FROM gymledger_events WHERE originator_id = %s ORDER BY originator_version",
        (stream_id,),
    )
    rows = _rows(await cur.fetchall())
    if not rows or gym_of(CODEC.decode(rows[0].topic, rows[0].state)) != gym_id:
        return []
    return rows
