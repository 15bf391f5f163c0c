"""Read model of plans: one row per plan a gym created, retired ones too (their
memberships go on, and the owner may want to see what they sold)."""

import functools
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from domain.gym import GymClosed
from domain.plan import Plan, PlanChanged, PlanCreated, PlanRetired
from domain.terms import Term
from projections.engine import Projection, Recorded

MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.plans (
    id uuid PRIMARY KEY,
    gym_id uuid NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    price_cents bigint NOT NULL,
    currency text NOT NULL,
    term_months integer,
    term_days integer,
    max_freeze_days integer NOT NULL,
    retired boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
-- The gym's list, newest first, id as the tie-breaker that keeps pages stable.
CREATE INDEX IF NOT EXISTS plans_gym_newest ON {schema}.plans (gym_id, created_at DESC, id DESC);
"""


class PlansProjection(Projection):
    name = "plans"
    tables: tuple[str, ...] = ("plans",)
    rebuildable = True

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        event = recorded.event
        match event:
            case PlanCreated():
                cur.execute(
                    "INSERT INTO plans (id, gym_id, version, name, price_cents, currency,"
                    " term_months, term_days, max_freeze_days, retired, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, false, %s, %s)",
                    (
                        event.originator_id,
                        event.gym_id,
                        event.originator_version,
                        event.name,
                        event.price_cents,
                        event.currency,
                        event.term.months,
                        event.term.days,
                        event.max_freeze_days,
                        event.timestamp,
                        event.timestamp,
                    ),
                )
            case PlanChanged():
                changes = _changed_columns(event)
                cur.execute(_update_sql(tuple(changes)), (*changes.values(), event.originator_id))
            case PlanRetired():
                changes = {"retired": True, **_touched(event)}
                cur.execute(_update_sql(tuple(changes)), (*changes.values(), event.originator_id))
            case GymClosed():
                cur.execute("DELETE FROM plans WHERE gym_id = %s", (event.originator_id,))
            case _:
                pass


def _touched(event: PlanChanged | PlanRetired) -> dict[str, Any]:
    return {"version": event.originator_version, "updated_at": event.timestamp}


def _changed_columns(event: PlanChanged) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name in ("name", "price_cents", "currency", "max_freeze_days"):
        value = getattr(event, name)
        if value is not msgspec.UNSET:
            columns[name] = value
    if isinstance(event.term, Term):  # a term is months or days: the other is cleared
        columns |= {"term_months": event.term.months, "term_days": event.term.days}
    return {**columns, **_touched(event)}


@functools.cache
def _update_sql(columns: tuple[str, ...]) -> sql.Composed:
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
    return sql.SQL("UPDATE plans SET {} WHERE id = %s").format(assignments)


# --- queries (gym_id first, always) ------------------------------------------------

_COLUMNS = (
    "p.id, p.gym_id, p.version, p.name, p.price_cents, p.currency, p.term_months,"
    " p.term_days, p.max_freeze_days, p.retired, p.created_at, p.updated_at"
)


def _plan(values: Any) -> Plan:
    """A domain Plan from a row in _COLUMNS order."""
    id_, gym_id, version, name, price, currency, months, days = values[:8]
    max_freeze_days, retired, created_at, updated_at = values[8:]
    return Plan(
        id=id_,
        gym_id=gym_id,
        version=version,
        name=name,
        price_cents=price,
        currency=currency,
        term=Term(months=months, days=days),
        max_freeze_days=max_freeze_days,
        retired=retired,
        created_at=created_at,
        updated_at=updated_at,
    )


async def list_plans(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, *, retired: bool | None
) -> list[Plan]:
    """The gym's plans, newest first; `retired=False` leaves retired ones out."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM plans p WHERE p.gym_id = %s"  # noqa: S608 - fixed fragments
        " AND (%s::boolean IS NULL OR p.retired = %s::boolean)"
        " ORDER BY p.created_at DESC, p.id DESC",
        (gym_id, retired, retired),
    )
    return [_plan(row) for row in await cur.fetchall()]


async def get_plan(conn: psycopg.AsyncConnection[Any], gym_id: UUID, plan_id: UUID) -> Plan | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM plans p WHERE p.gym_id = %s AND p.id = %s",  # noqa: S608
        (gym_id, plan_id),
    )
    row = await cur.fetchone()
    return None if row is None else _plan(row)
