"""Read model of check-ins: one row per check-in of a present customer, denied ones too.

The front desk reads a day's list (in the gym's time zone, so by the day's UTC bounds:
domain.validation.local_day_bounds) and a customer's own list; the customer response
counts their visits when read. A customer's removal or the gym's closing takes their
check-ins off the read side, as it does the customer; the streams stay in the log.
"""

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import TupleRow

from domain.check_in import CheckInRecorded
from domain.customer import CustomerRemoved
from domain.gym import GymClosed
from projections.engine import BulkInsert, Projection, Recorded

MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.check_ins (
    id uuid PRIMARY KEY,
    gym_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    at timestamptz NOT NULL,
    allowed boolean NOT NULL,
    reason text,
    card_code text
);
-- A day's list, newest first (id breaks ties, so pages are stable); `allowed` is in
-- the index for the filter and the count.
CREATE INDEX IF NOT EXISTS check_ins_gym_day
    ON {schema}.check_ins (gym_id, at DESC, id DESC) INCLUDE (allowed);
-- A customer's list, newest first; its count of visits as well.
CREATE INDEX IF NOT EXISTS check_ins_gym_customer
    ON {schema}.check_ins (gym_id, customer_id, at DESC, id DESC) INCLUDE (allowed);
-- The customer response's last visit and visits of the last 30 days: allowed ones only.
CREATE INDEX IF NOT EXISTS check_ins_customer_visits
    ON {schema}.check_ins (customer_id, at DESC) WHERE allowed;
"""

VISIT_WINDOW = timedelta(days=30)

_COLUMN_TYPES = {
    "id": "uuid",
    "gym_id": "uuid",
    "customer_id": "uuid",
    "at": "timestamptz",
    "allowed": "boolean",
    "reason": "text",
    "card_code": "text",
}


class CheckInRow(msgspec.Struct, frozen=True):
    id: UUID
    gym_id: UUID
    customer_id: UUID
    at: datetime
    allowed: bool
    reason: str | None
    card_code: str | None

    @classmethod
    def of(cls, e: CheckInRecorded) -> "CheckInRow":
        """The row this projection holds for the event (what a command answers with)."""
        return cls(
            e.originator_id, e.gym_id, e.customer_id, e.timestamp, e.allowed, e.reason, e.card_code
        )


class CheckInsProjection(Projection):
    name = "check_ins"
    tables: tuple[str, ...] = ("check_ins",)
    rebuildable = True

    def __init__(self) -> None:
        # A desk's scans arrive many per second: one COPY per batch, not an INSERT each.
        self._insert = BulkInsert("check_ins", _COLUMN_TYPES)
        # Each customer's latest allowed check-in of the batch, for customers.last_check_in_at
        # (set at the end: customers registered in this batch are written by then).
        self._visited: dict[UUID, datetime] = {}

    def begin_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        self._insert.rows.clear()
        self._visited.clear()

    def end_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        self._insert.flush(cur)
        if self._visited:
            cur.execute(
                "UPDATE customers c SET last_check_in_at = v.at"
                " FROM unnest(%s::uuid[], %s::timestamptz[]) AS v (id, at)"
                " WHERE c.id = v.id AND (c.last_check_in_at IS NULL OR c.last_check_in_at < v.at)",
                (list(self._visited), list(self._visited.values())),
            )

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        event = recorded.event
        if isinstance(event, CheckInRecorded):
            self._insert.add(*msgspec.structs.astuple(CheckInRow.of(event)))
            if event.allowed:
                seen = self._visited.get(event.customer_id)
                self._visited[event.customer_id] = max(event.timestamp, seen or event.timestamp)
        elif isinstance(event, CustomerRemoved):
            self._drop_pending(lambda row: row[2] == event.originator_id)
            cur.execute(
                "DELETE FROM check_ins WHERE gym_id = %s AND customer_id = %s",
                (event.gym_id, event.originator_id),
            )
        elif isinstance(event, GymClosed):
            self._drop_pending(lambda row: row[1] == event.originator_id)
            cur.execute("DELETE FROM check_ins WHERE gym_id = %s", (event.originator_id,))

    def _drop_pending(self, gone: Callable[[tuple[object, ...]], bool]) -> None:
        """Rows of this batch not written yet that the event takes away too."""
        self._insert.rows = [row for row in self._insert.rows if not gone(row)]


# --- queries (gym_id first, always) ------------------------------------------------

_COLUMNS = "k.id, k.gym_id, k.customer_id, k.at, k.allowed, k.reason, k.card_code"
assert [c.strip().removeprefix("k.") for c in _COLUMNS.split(",")] == list(
    CheckInRow.__struct_fields__
)
_NEWEST_FIRST = " ORDER BY k.at DESC, k.id DESC LIMIT %(limit)s OFFSET %(offset)s"


def _rows(fetched: Sequence[Any]) -> list[CheckInRow]:
    return [CheckInRow(*values) for values in fetched]


async def check_ins_between(
    conn: psycopg.AsyncConnection[Any],
    gym_id: UUID,
    start: datetime,
    end: datetime,
    allowed: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[CheckInRow], int]:
    """One page of the gym's check-ins at or after `start` and before `end`, newest
    first, and how many there are."""
    where = "k.gym_id = %(gym)s AND k.at >= %(start)s AND k.at < %(end)s"
    if allowed is not None:
        where += " AND k.allowed = %(allowed)s"
    params = {"gym": gym_id, "start": start, "end": end, "allowed": allowed}
    page = await conn.execute(
        f"SELECT {_COLUMNS} FROM check_ins k WHERE {where}" + _NEWEST_FIRST,  # noqa: S608
        {**params, "limit": limit, "offset": offset},
    )
    rows = _rows(await page.fetchall())
    counted = await conn.execute(f"SELECT count(*) FROM check_ins k WHERE {where}", params)  # noqa: S608
    total = await counted.fetchone()
    return rows, int(total[0]) if total else 0


async def check_ins_of(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, customer_id: UUID, limit: int, offset: int
) -> tuple[list[CheckInRow], int]:
    """One page of the customer's check-ins, newest first, and how many there are."""
    params = {"gym": gym_id, "customer": customer_id}
    where = "k.gym_id = %(gym)s AND k.customer_id = %(customer)s"
    page = await conn.execute(
        f"SELECT {_COLUMNS} FROM check_ins k WHERE {where}" + _NEWEST_FIRST,  # noqa: S608
        {**params, "limit": limit, "offset": offset},
    )
    rows = _rows(await page.fetchall())
    counted = await conn.execute(f"SELECT count(*) FROM check_ins k WHERE {where}", params)  # noqa: S608
    total = await counted.fetchone()
    return rows, int(total[0]) if total else 0


class Visits(msgspec.Struct, frozen=True):
    """A customer's allowed check-ins as of a moment: the last one, and how many in
    the VISIT_WINDOW before it."""

    last_at: datetime | None = None
    last_30_days: int = 0


NO_VISITS = Visits()


async def visits_of(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, customer_ids: Sequence[UUID], until: datetime
) -> dict[UUID, Visits]:
    """Each customer's Visits as of `until` (check-ins after it are not counted); a
    customer without any is left out. Two index lookups per customer of the page."""
    if not customer_ids:
        return {}
    cur = await conn.execute(
        "SELECT c.id,"
        " (SELECT max(k.at) FROM check_ins k WHERE k.customer_id = c.id AND k.allowed"
        "  AND k.gym_id = %(gym)s AND k.at <= %(until)s),"
        " (SELECT count(*) FROM check_ins k WHERE k.customer_id = c.id AND k.allowed"
        "  AND k.gym_id = %(gym)s AND k.at > %(since)s AND k.at <= %(until)s)"
        " FROM unnest(%(ids)s::uuid[]) AS c(id)",
        {"gym": gym_id, "ids": list(customer_ids), "until": until, "since": until - VISIT_WINDOW},
    )
    return {
        customer_id: Visits(last_at, int(count))
        for customer_id, last_at, count in await cur.fetchall()
        if last_at is not None
    }


async def listed_membership_ids(
    conn: psycopg.AsyncConnection[Any],
    gym_id: UUID,
    customer_id: UUID | None,
    card_code: str | None,
) -> tuple[UUID, ...]:
    """The memberships the read model lists for the customer named by id or by card:
    which streams a check-in loads from the log to decide (commands/check_ins.py)."""
    cur = await conn.execute(
        "SELECT m.id FROM memberships m WHERE m.gym_id = %(gym)s AND m.customer_id = COALESCE("
        " %(customer)s::uuid,"
        " (SELECT c.id FROM customers c WHERE c.gym_id = %(gym)s AND c.card_code = %(card)s))",
        {"gym": gym_id, "customer": customer_id, "card": card_code},
    )
    return tuple(row[0] for row in await cur.fetchall())
