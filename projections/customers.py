"""Read model of customers: one row per present customer, searchable per gym.

"Active" is computed at query time from the owner's flag and the membership end
against today's date in the gym's timezone (the rule of domain.customer.is_active),
so a lapsed membership reads as inactive without waiting for any job.
"""

import functools
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from domain.customer import (
    Customer,
    CustomerDeactivated,
    CustomerDetailsChanged,
    CustomerEvent,
    CustomerReactivated,
    CustomerRegistered,
    CustomerRemoved,
    MembershipExpired,
    birth_date_range,
    is_active,
)
from domain.events import carried_fields
from domain.gym import GymClosed
from projections.engine import BulkInsert, Projection, Recorded
from projections.memberships import ACCESS_TODAY

MIGRATION_SQL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA {shared};
CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA {shared};
CREATE TABLE IF NOT EXISTS {schema}.customers (
    id uuid PRIMARY KEY,
    gym_id uuid NOT NULL,
    version integer NOT NULL,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text NOT NULL,
    phone text,
    date_of_birth date,
    membership_start date,
    membership_end date,
    notes text,
    owner_active boolean NOT NULL,
    expired_end date,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    search_text text GENERATED ALWAYS AS (
        lower(first_name || ' ' || last_name || ' ' || email)) STORED
);
-- Newest first within a gym, with id as the tie-breaker that makes paging stable.
-- It covers the active and age filters, so pages and counts of a large gym are
-- index-only scans rather than visits to every row of the table.
CREATE INDEX IF NOT EXISTS customers_gym_newest
    ON {schema}.customers (gym_id, created_at DESC, id DESC)
    INCLUDE (owner_active, membership_end, date_of_birth);
-- Substring search inside one gym (trigram GIN, gym_id via btree_gin).
CREATE INDEX IF NOT EXISTS customers_gym_search
    ON {schema}.customers USING gin (gym_id, search_text {shared}.gin_trgm_ops);
CREATE INDEX IF NOT EXISTS customers_gym_birth ON {schema}.customers (gym_id, date_of_birth);
-- The expiry job's work list: memberships that ended and are not yet recorded.
CREATE INDEX IF NOT EXISTS customers_expiry_due ON {schema}.customers (membership_end)
    WHERE membership_end IS NOT NULL AND expired_end IS DISTINCT FROM membership_end;
"""

# Whether a customer holds memberships, kept by the memberships projection when one is
# sold, and in the list's covering index: the `active` filter then asks the memberships
# table only about the customers who hold some (issue 14's query cost, bench/README.md).
HOLDS_MEMBERSHIPS_MIGRATION_SQL = """
ALTER TABLE {schema}.customers
    ADD COLUMN IF NOT EXISTS holds_memberships boolean NOT NULL DEFAULT false;
DO $$ BEGIN
    IF to_regclass('{schema}.memberships') IS NOT NULL THEN  -- not in every scratch build
        UPDATE {schema}.customers c SET holds_memberships = true
            WHERE EXISTS (SELECT 1 FROM {schema}.memberships m WHERE m.customer_id = c.id);
    END IF;
END $$;
DROP INDEX IF EXISTS {schema}.customers_gym_newest;
CREATE INDEX IF NOT EXISTS customers_gym_newest
    ON {schema}.customers (gym_id, created_at DESC, id DESC)
    INCLUDE (owner_active, membership_end, date_of_birth, holds_memberships);
"""

# The customer's last allowed check-in, kept by the check-ins projection at the end of
# each batch: a customer with none in the last 30 days needs no count of them.
LAST_CHECK_IN_MIGRATION_SQL = """
ALTER TABLE {schema}.customers ADD COLUMN IF NOT EXISTS last_check_in_at timestamptz;
DO $$ BEGIN
    IF to_regclass('{schema}.check_ins') IS NOT NULL THEN  -- not in every scratch build
        UPDATE {schema}.customers c SET last_check_in_at = k.last
            FROM (SELECT customer_id, max(at) AS last FROM {schema}.check_ins
                  WHERE allowed GROUP BY customer_id) k
            WHERE k.customer_id = c.id;
    END IF;
END $$;
"""

# Card codes came after the table: a column of their own, unique within a gym (the
# claim streams keep it so on the write side; this index says so to the read side).
CARD_CODE_MIGRATION_SQL = """
ALTER TABLE {schema}.customers ADD COLUMN IF NOT EXISTS card_code text;
CREATE UNIQUE INDEX IF NOT EXISTS customers_gym_card_code
    ON {schema}.customers (gym_id, card_code) WHERE card_code IS NOT NULL;
"""

# SQL twin of what CustomerResponse shows as `active` (api/schemas.py); %(today)s is
# the gym's local date. A customer holding memberships is active when the owner's
# switch is on and one of them gives access today (domain.membership.shown_on_customer
# picks such a one whenever there is one); any other customer by
# domain.customer.is_active, from the dates stored on them.
_ACTIVE = f"""(CASE WHEN c.holds_memberships
    THEN c.owner_active AND EXISTS (SELECT 1 FROM memberships m
        WHERE m.gym_id = c.gym_id AND m.customer_id = c.id AND {ACCESS_TODAY})
    ELSE c.owner_active AND (c.membership_end IS NULL OR c.membership_end >= %(today)s)
    END)"""  # noqa: S608 - fixed fragments


class CustomerRow(msgspec.Struct, frozen=True):
    id: UUID
    gym_id: UUID
    version: int
    first_name: str
    last_name: str
    email: str
    phone: str | None
    date_of_birth: date | None
    membership_start: date | None
    membership_end: date | None
    notes: str | None
    owner_active: bool
    created_at: datetime
    updated_at: datetime
    card_code: str | None
    # What the row says of the customer's other streams, so that a page asks about
    # memberships and visits only for the customers who have some. Only rows read from
    # this table carry them: a row rebuilt from the log (row_of) has the defaults, and
    # its readers ask about everything.
    holds_memberships: bool = True
    last_check_in_at: datetime | None = None

    def active_on(self, today: date) -> bool:
        """What people see as "active" on the gym's `today` (domain.customer.is_active)."""
        return is_active(self.owner_active, self.membership_end, today)


class CustomerFilter(msgspec.Struct, frozen=True, kw_only=True):
    active: bool | None = None
    search: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    min_age: int | None = None  # in whole years, on the gym's today
    max_age: int | None = None
    limit: int = 50
    offset: int = 0
    # Keyset pagination: only customers listed after this one (its created_at and id,
    # the list's order), so a page stays exact while customers are added.
    after: tuple[datetime, UUID] | None = None


_COLUMN_TYPES = {
    "id": "uuid",
    "gym_id": "uuid",
    "version": "integer",
    "first_name": "text",
    "last_name": "text",
    "email": "text",
    "phone": "text",
    "date_of_birth": "date",
    "membership_start": "date",
    "membership_end": "date",
    "notes": "text",
    "owner_active": "boolean",
    "expired_end": "date",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "card_code": "text",
}


class CustomersProjection(Projection):
    name = "customers"
    tables: tuple[str, ...] = ("customers",)
    rebuildable = True
    # The trigram index costs most to maintain per row: a 100k-event rebuild took
    # 19 % less time when it was built at the end (other indexes gained 4 % more).
    deferred_indexes = ("customers_gym_search",)

    def __init__(self) -> None:
        # Customers registered in this batch stay rows in memory until it ends, and
        # later events for them in the same batch change those rows: one INSERT per
        # batch however events interleave. Statements for other customers touch rows
        # already in the table, so the order of the log is still respected.
        self._pending: dict[UUID, dict[str, Any]] = {}
        self._insert = BulkInsert("customers", _COLUMN_TYPES)

    def begin_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        self._pending.clear()

    def end_batch(self, cur: psycopg.Cursor[TupleRow]) -> None:
        for row in self._pending.values():
            self._insert.add(*row.values())
        self._pending.clear()
        self._insert.flush(cur)

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        event = recorded.event
        if isinstance(event, CustomerRegistered):
            self._pending[event.originator_id] = _new_row(event)
        elif isinstance(event, GymClosed):
            for customer_id, row in list(self._pending.items()):
                if row["gym_id"] == event.originator_id:
                    del self._pending[customer_id]
            cur.execute("DELETE FROM customers WHERE gym_id = %s", (event.originator_id,))
        elif isinstance(event, CustomerRemoved):
            if self._pending.pop(event.originator_id, None) is None:
                cur.execute("DELETE FROM customers WHERE id = %s", (event.originator_id,))
        elif isinstance(event, CustomerEvent) and (changes := _changes(event)):
            pending = self._pending.get(event.originator_id)
            if pending is not None:
                pending.update(changes)
            else:
                cur.execute(_update_sql(tuple(changes)), (*changes.values(), event.originator_id))


def _new_row(event: CustomerRegistered) -> dict[str, Any]:
    return {  # in the INSERT's column order (_COLUMN_TYPES)
        "id": event.originator_id,
        "gym_id": event.gym_id,
        "version": event.originator_version,
        "first_name": event.first_name,
        "last_name": event.last_name,
        "email": event.email,
        "phone": event.phone,
        "date_of_birth": event.date_of_birth,
        "membership_start": event.membership_start,
        "membership_end": event.membership_end,
        "notes": event.notes,
        "owner_active": event.active,
        "expired_end": None,
        "created_at": event.timestamp,
        "updated_at": event.timestamp,
        "card_code": event.card_code,
    }


def _changes(event: CustomerEvent) -> dict[str, Any]:
    """The columns an event changes (empty: none)."""
    match event:
        case CustomerDetailsChanged():
            changed = carried_fields(event, "gym_id")
        case CustomerDeactivated():
            changed = {"owner_active": False}
        case CustomerReactivated():
            changed = {"owner_active": True}
        case MembershipExpired():  # recorded by the system: not an update by the owner
            return {"version": event.originator_version, "expired_end": event.membership_end}
        case _:
            return {}
    return {**changed, "version": event.originator_version, "updated_at": event.timestamp}


@functools.cache
def _update_sql(columns: tuple[str, ...]) -> sql.Composed:
    """UPDATE of these columns by id; built once per set of columns."""
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
    return sql.SQL("UPDATE customers SET {} WHERE id = %s").format(assignments)


# --- queries (gym_id first, always) ------------------------------------------------

_COLUMNS = (
    "c.id, c.gym_id, c.version, c.first_name, c.last_name, c.email, c.phone,"
    " c.date_of_birth, c.membership_start, c.membership_end, c.notes, c.owner_active,"
    " c.created_at, c.updated_at, c.card_code, c.holds_memberships, c.last_check_in_at"
)
# CustomerRow is built positionally from these columns (_customer_rows).
assert [c.strip().removeprefix("c.") for c in _COLUMNS.split(",")] == list(
    CustomerRow.__struct_fields__
)


def _like(text: str) -> str:
    """A case-insensitive substring pattern with LIKE's wildcards taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _pattern(text: str) -> str:
    """The LIKE pattern of `text` as a quoted literal in the statement, not a parameter:
    how many rows a fragment matches decides the plan (a common one is found walking the
    list's order, a rare one through the trigram index: 0.2 against 11 ms for
    `search=bench7` at 100,000 customers), and reads run on generic plans (infra/db.py),
    which never see a parameter's value. `%` doubled: the statement has placeholders."""
    return sql.quote(_like(text)).replace("%", "%%")


def _where(
    gym_id: UUID, f: CustomerFilter, today: date, page: bool = False
) -> tuple[str, dict[str, Any]]:
    clauses = ["c.gym_id = %(gym_id)s"]
    params: dict[str, Any] = {"gym_id": gym_id, "today": today}
    if f.active is not None:
        clauses.append(_ACTIVE if f.active else f"NOT {_ACTIVE}")
    # Every text filter is also a substring of search_text: that extra predicate
    # lets the trigram index narrow the rows before the exact column check.
    for column, value in (
        ("search_text", f.search),
        ("first_name", f.first_name),
        ("last_name", f.last_name),
        ("email", f.email),
    ):
        if value:
            pattern = _pattern(value)
            clauses.append(f"c.search_text LIKE {pattern}")
            if column != "search_text":
                clauses.append(f"lower(c.{column}) LIKE {pattern}")
    born_on_or_before, born_after = birth_date_range(today, f.min_age, f.max_age)
    # A page walks the list's own order and stops at `limit` matches; reads run on
    # generic plans (infra/db.py, READ_SESSION), which do not know how wide the band
    # is and, as if it were narrow, would fetch every match by the birth index and sort
    # them (1.7 ms against 0.1 on 20,000 customers). `+ 0` keeps that index out of a
    # page's plan; a count, which visits every match anyway, still uses it.
    born = "(c.date_of_birth + 0)" if page else "c.date_of_birth"
    if born_on_or_before is not None:
        clauses.append(f"{born} <= %(born_on_or_before)s")
        params["born_on_or_before"] = born_on_or_before
    if born_after is not None:
        clauses.append(f"{born} > %(born_after)s")
        params["born_after"] = born_after
    return " AND ".join(clauses), params


def list_query(gym_id: UUID, f: CustomerFilter, today: date) -> tuple[str, dict[str, Any]]:
    where, params = _where(gym_id, f, today, page=True)
    params |= {"limit": f.limit, "offset": f.offset}
    if f.after is not None:  # the order's own index (gym_id, created_at DESC, id DESC)
        where += " AND (c.created_at, c.id) < (%(after_at)s, %(after_id)s)"
        params |= {"after_at": f.after[0], "after_id": f.after[1]}
    return (
        f"SELECT {_COLUMNS} FROM customers c WHERE {where}"  # noqa: S608 - fixed fragments
        " ORDER BY c.created_at DESC, c.id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )


def count_query(gym_id: UUID, f: CustomerFilter, today: date) -> tuple[str, dict[str, Any]]:
    where, params = _where(gym_id, f, today)
    return f"SELECT count(*) FROM customers c WHERE {where}", params  # noqa: S608


def _customer_rows(cursor: Any) -> Callable[[Sequence[Any]], CustomerRow]:
    """Row factory: a CustomerRow from the values in _COLUMNS order, positionally.

    class_row builds a dict per row and calls the class with keywords; on a page of
    200 rows that was a tenth of an API process's CPU (bench/README.md)."""
    return lambda values: CustomerRow(*values)


async def list_customers(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, f: CustomerFilter, today: date
) -> list[CustomerRow]:
    """One page of matches, newest first."""
    query, params = list_query(gym_id, f, today)
    async with conn.cursor(row_factory=_customer_rows) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def count_customers(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, f: CustomerFilter, today: date
) -> int:
    """How many customers match (paging ignored)."""
    counted = await conn.execute(*count_query(gym_id, f, today))
    total = await counted.fetchone()
    return int(total[0]) if total else 0


async def get_customer(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, customer_id: UUID
) -> CustomerRow | None:
    async with conn.cursor(row_factory=_customer_rows) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM customers c WHERE c.gym_id = %s AND c.id = %s",  # noqa: S608
            (gym_id, customer_id),
        )
        return await cur.fetchone()


def due_for_expiry(conn: psycopg.Connection[Any], now: datetime, limit: int = 1000) -> list[UUID]:
    """Customers whose membership ended before today in their gym's timezone and
    whose expiry is not recorded yet."""
    rows = conn.execute(
        "SELECT c.id FROM customers c JOIN gyms g ON g.id = c.gym_id"
        " WHERE c.membership_end IS NOT NULL"
        " AND c.expired_end IS DISTINCT FROM c.membership_end"
        " AND c.membership_end < (%s AT TIME ZONE g.timezone)::date"
        " ORDER BY c.membership_end LIMIT %s",
        (now, limit),
    ).fetchall()
    return [r[0] for r in rows]


def row_of(customer: Customer) -> CustomerRow:
    """The row this projection holds for `customer`: what a route answers from the
    write side while the projector has not caught up, or for a past version."""
    return msgspec.convert(customer, CustomerRow, from_attributes=True)
