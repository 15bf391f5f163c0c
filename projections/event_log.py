"""Per-gym index of the event log, for the event feed and history.

The projector writes index rows in log order and commits them with its position,
so a reader that pages with `position > last_seen` never misses or repeats an
event: rows only ever appear at the end, in whole committed batches.
"""

from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow

from domain import gym_of
from infra.event_codec import split_topic
from projections.engine import Projection, Recorded

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

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        cur.execute(
            "INSERT INTO event_index (position, gym_id, stream_id, event_type, recorded_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (
                recorded.position,
                gym_of(recorded.event),
                recorded.stream_id,
                split_topic(recorded.topic)[0],
                recorded.event.timestamp,
            ),
        )


StoredRow = tuple[int, UUID, int, str, bytes]  # position, stream, version, topic, state


async def gym_events(
    conn: psycopg.AsyncConnection[Any],
    gym_id: UUID,
    after: int,
    limit: int,
    event_types: list[str] | None = None,
) -> list[StoredRow]:
    """The gym's events after `after`, in log order, as stored."""
    cur = await conn.execute(
        "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state"
        " FROM event_index i JOIN gymledger_events e ON e.notification_id = i.position"
        " WHERE i.gym_id = %(gym)s AND i.position > %(after)s"
        " AND (%(types)s::text[] IS NULL OR i.event_type = ANY(%(types)s::text[]))"
        " ORDER BY i.position LIMIT %(limit)s",
        {"gym": gym_id, "after": after, "limit": limit, "types": event_types or None},
    )
    return [(r[0], r[1], r[2], r[3], bytes(r[4])) for r in await cur.fetchall()]


async def stream_events(conn: psycopg.AsyncConnection[Any], stream_id: UUID) -> list[StoredRow]:
    """Every stored event of one stream, oldest first, straight from the log."""
    cur = await conn.execute(
        "SELECT notification_id, originator_id, originator_version, topic, state"
        " FROM gymledger_events WHERE originator_id = %s ORDER BY originator_version",
        (stream_id,),
    )
    return [(r[0], r[1], r[2], r[3], bytes(r[4])) for r in await cur.fetchall()]
