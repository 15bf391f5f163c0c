"""Read model of open gyms: profiles for `GET /gyms/me`, credentials for login.

Closed gyms are removed here (their history stays in the event log), which is
also what makes an old token of a closed gym stop working.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow, class_row

from domain.gym import (
    PROFILE_FIELDS,
    AuditorAccessGranted,
    GymClosed,
    GymPasswordRehashed,
    GymProfileUpdated,
    GymRegistered,
)
from infra.db import GYM_CHANGED_CHANNEL
from projections.engine import Projection, Recorded

MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS gyms (
    id uuid PRIMARY KEY,
    version integer NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    address text,
    description text,
    gym_type text,
    monthly_fee_cents bigint NOT NULL,
    currency text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
-- (timezone arrives with migration 0004)
CREATE TABLE IF NOT EXISTS gym_logins (
    email text PRIMARY KEY,
    gym_id uuid NOT NULL UNIQUE REFERENCES gyms (id) ON DELETE CASCADE,
    password_hash text NOT NULL
);
"""


TIMEZONE_MIGRATION_SQL = """
ALTER TABLE gyms ADD COLUMN IF NOT EXISTS timezone text NOT NULL DEFAULT 'UTC';
"""


class GymView(msgspec.Struct, frozen=True):
    id: UUID
    version: int
    name: str
    email: str
    address: str | None
    description: str | None
    gym_type: str | None
    monthly_fee_cents: int
    currency: str
    timezone: str
    created_at: datetime
    updated_at: datetime


class GymsProjection(Projection):
    tables: tuple[str, ...] = ("gym_logins", "gyms")
    rebuildable = True

    def apply(self, cur: psycopg.Cursor[TupleRow], recorded: Recorded) -> None:
        event = recorded.event
        match event:
            case GymRegistered():
                cur.execute(
                    "INSERT INTO gyms (id, version, name, email, address, description, gym_type,"
                    " monthly_fee_cents, currency, timezone, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        event.originator_id,
                        event.originator_version,
                        event.name,
                        event.email,
                        event.address,
                        event.description,
                        event.gym_type,
                        event.monthly_fee_cents,
                        event.currency,
                        event.timezone,
                        event.timestamp,
                        event.timestamp,
                    ),
                )
                cur.execute(
                    "INSERT INTO gym_logins (email, gym_id, password_hash) VALUES (%s, %s, %s)",
                    (event.email, event.originator_id, event.password_hash),
                )
            case GymProfileUpdated():
                changed = {
                    f: getattr(event, f)
                    for f in PROFILE_FIELDS
                    if getattr(event, f) is not msgspec.UNSET
                }
                assignments = sql.SQL(", ").join(
                    sql.SQL("{} = %s").format(sql.Identifier(f)) for f in changed
                )
                cur.execute(
                    sql.SQL(
                        "UPDATE gyms SET {}, version = %s, updated_at = %s WHERE id = %s"
                    ).format(assignments),
                    (
                        *changed.values(),
                        event.originator_version,
                        event.timestamp,
                        event.originator_id,
                    ),
                )
                if "email" in changed:
                    cur.execute(
                        "UPDATE gym_logins SET email = %s WHERE gym_id = %s",
                        (changed["email"], event.originator_id),
                    )
                if "timezone" in changed:
                    _announce_change(cur, event.originator_id)
            case GymPasswordRehashed():
                cur.execute(
                    "UPDATE gym_logins SET password_hash = %s WHERE gym_id = %s",
                    (event.password_hash, event.originator_id),
                )
                cur.execute(
                    "UPDATE gyms SET version = %s WHERE id = %s",
                    (event.originator_version, event.originator_id),
                )
            case AuditorAccessGranted():
                cur.execute(
                    "UPDATE gyms SET version = %s WHERE id = %s",
                    (event.originator_version, event.originator_id),
                )
            case GymClosed():
                cur.execute("DELETE FROM gyms WHERE id = %s", (event.originator_id,))
                _announce_change(cur, event.originator_id)


def _announce_change(cur: psycopg.Cursor[TupleRow], gym_id: UUID) -> None:
    # Delivered when the batch commits, before the batch's new position is announced.
    cur.execute("SELECT pg_notify(%s, %s)", (GYM_CHANGED_CHANNEL, str(gym_id)))


_GYM_COLUMNS = (
    "id, version, name, email, address, description, gym_type, monthly_fee_cents,"
    " currency, timezone, created_at, updated_at"
)


async def get_gym(conn: psycopg.AsyncConnection[Any], gym_id: UUID) -> GymView | None:
    async with conn.cursor(row_factory=class_row(GymView)) as cur:
        await cur.execute(f"SELECT {_GYM_COLUMNS} FROM gyms WHERE id = %s", (gym_id,))  # noqa: S608
        return await cur.fetchone()


async def open_gym_timezone(conn: psycopg.AsyncConnection[Any], gym_id: UUID) -> str | None:
    """The timezone of an open gym; None if the gym is closed or unknown."""
    cur = await conn.execute("SELECT timezone FROM gyms WHERE id = %s", (gym_id,))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def find_login(conn: psycopg.AsyncConnection[Any], email: str) -> tuple[UUID, str] | None:
    """(gym id, password hash) of the open gym with this email, if any."""
    cur = await conn.execute(
        "SELECT gym_id, password_hash FROM gym_logins WHERE email = %s", (email.strip().lower(),)
    )
    row = await cur.fetchone()
    return None if row is None else (row[0], row[1])
