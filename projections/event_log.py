"""Per-gym index of the event log, for the event feed and history.

The projector writes index rows in log order and commits them with its position,
so a reader that pages with `position > last_seen` never misses or repeats an
event: rows only ever appear at the end, in whole committed batches.
"""

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import TupleRow

from domain import customer, gym, gym_of, membership, plan
from infra.db import EVENTS_TABLE
from infra.event_codec import CODEC, split_topic
from projections.engine import BulkInsert, Projection, Recorded

MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.event_index (
    position bigint PRIMARY KEY,
    gym_id uuid NOT NULL,
    stream_id uuid NOT NULL,
    event_type text NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS event_index_gym ON {schema}.event_index (gym_id, position);
CREATE INDEX IF NOT EXISTS event_index_gym_type
    ON {schema}.event_index (gym_id, event_type, position);
"""

# The reports' time windows (projections/reports.py): one type's events of one gym
# recorded between two instants.
RECORDED_AT_INDEX_SQL = """
CREATE INDEX IF NOT EXISTS event_index_gym_type_time
    ON {schema}.event_index (gym_id, event_type, recorded_at);
"""


class EventIndexProjection(Projection):
    name = "event_index"
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


class EventRecord(msgspec.Struct, frozen=True):
    """One event as auditors and integrations see it (no secrets)."""

    position: int
    stream_id: UUID
    version: int
    type: str
    recorded_at: Annotated[datetime, msgspec.Meta(tz=True)]  # UTC
    actor: str
    correlation_id: str
    data: dict[str, Any]


_ENVELOPE = {"originator_id", "originator_version", "timestamp", "metadata"}
# Stored for login, never shown: not in history, feed or export.
_SECRETS = {"password_hash"}
# What `data` leaves out of an event (api/openapi.py describes the rest, per type).
HIDDEN_FIELDS = frozenset(_ENVELOPE | _SECRETS)


def describe(row: Recorded) -> EventRecord:
    event = row.event
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


def decoded(fetched: list[TupleRow]) -> list[Recorded]:
    """Rows of the log (position, stream, version, topic, state), decoded."""
    return [Recorded.decode(CODEC, *row) for row in fetched]


GYM_EVENTS_SQL = (
    "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state"  # noqa: S608
    f" FROM event_index i JOIN {EVENTS_TABLE} e ON e.notification_id = i.position"
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
) -> list[Recorded]:
    """The gym's events after `after`, in log order, as stored and decoded."""
    params = {"gym": gym_id, "after": after, "limit": limit, "types": event_types or None}
    cur = await conn.execute(GYM_EVENTS_SQL, params)
    return decoded(await cur.fetchall())


def all_gym_events(
    conn: psycopg.Connection[Any], gym_id: UUID, page: int = 1000
) -> Iterator[Recorded]:
    """Every event of a gym, in log order (for export), fetched page by page."""
    after = 0
    while True:
        params = {"gym": gym_id, "after": after, "limit": page, "types": None}
        rows = decoded(conn.execute(GYM_EVENTS_SQL, params).fetchall())
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].position


# What each kind of stream an endpoint serves may hold, by event type name. Support
# streams (email claims, idempotency keys) are of no kind an endpoint serves.
CUSTOMER_STREAM = frozenset(cls.__name__ for cls in customer.EVENTS)
GYM_STREAM = frozenset(cls.__name__ for cls in gym.EVENTS)
PLAN_STREAM = frozenset(cls.__name__ for cls in plan.EVENTS)
MEMBERSHIP_STREAM = frozenset(cls.__name__ for cls in membership.EVENTS)


def owned_stream(rows: Iterable[TupleRow], gym_id: UUID, kind: frozenset[str]) -> list[Recorded]:
    """The stream's events (rows of the log: position, stream, version, topic, state)
    if every one is of a type `kind` names and belongs to `gym_id`; otherwise none.
    One foreign event disqualifies the whole stream: an email claim is first held by
    one gym and later by another, so checking only the first event would hand the
    second gym's events to the first. A row's type is checked before it is decoded,
    so a stream of another kind is never decoded at all."""
    owned: list[Recorded] = []
    for row in rows:
        if split_topic(row[3])[0] not in kind:
            return []
        recorded = Recorded.decode(CODEC, *row)
        if gym_of(recorded.event) != gym_id:
            return []
        owned.append(recorded)
    return owned


STREAM_SQL = (
    "SELECT notification_id, originator_id, originator_version, topic, state"  # noqa: S608
    f" FROM {EVENTS_TABLE} WHERE originator_id = %s ORDER BY originator_version"
)


async def tenant_stream(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, stream_id: UUID, kind: frozenset[str]
) -> list[Recorded]:
    """Every stored event of one stream, oldest first, straight from the log; empty
    unless it is a `kind` stream of `gym_id` (see owned_stream): another gym's
    stream, or one of another kind, looks absent."""
    cur = await conn.execute(STREAM_SQL, (stream_id,))
    return owned_stream(await cur.fetchall(), gym_id, kind)


async def customer_stream(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, customer_id: UUID
) -> list[Recorded]:
    return await tenant_stream(conn, gym_id, customer_id, CUSTOMER_STREAM)


async def gym_stream(conn: psycopg.AsyncConnection[Any], gym_id: UUID) -> list[Recorded]:
    return await tenant_stream(conn, gym_id, gym_id, GYM_STREAM)


async def plan_stream(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, plan_id: UUID
) -> list[Recorded]:
    return await tenant_stream(conn, gym_id, plan_id, PLAN_STREAM)


async def membership_stream(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, membership_id: UUID
) -> list[Recorded]:
    return await tenant_stream(conn, gym_id, membership_id, MEMBERSHIP_STREAM)
