"""Read model of open gyms: profiles for `GET /gyms/me`, credentials for login, and
what decides whether a token is still good (token generation, auditor tokens).

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

from domain.events import DomainEvent, carried_fields
from domain.gym import (
    AuditorAccessGranted,
    AuditorAccessRevoked,
    Gym,
    GymClosed,
    GymPasswordChanged,
    GymPasswordRehashed,
    GymProfileUpdated,
    GymRegistered,
)
from infra.db import EVENTS_TABLE, GYM_CHANGED_CHANNEL
from projections.engine import Projection, Recorded

MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.gyms (
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
CREATE TABLE IF NOT EXISTS {schema}.gym_logins (
    email text PRIMARY KEY,
    gym_id uuid NOT NULL UNIQUE REFERENCES {schema}.gyms (id) ON DELETE CASCADE,
    password_hash text NOT NULL
);
"""


TIMEZONE_MIGRATION_SQL = """
ALTER TABLE {schema}.gyms ADD COLUMN IF NOT EXISTS timezone text NOT NULL DEFAULT 'UTC';
"""


REMINDER_DAYS_MIGRATION_SQL = """
ALTER TABLE {schema}.gyms ADD COLUMN IF NOT EXISTS reminder_days integer NOT NULL DEFAULT 7;
"""


CREDENTIALS_MIGRATION_SQL = """
ALTER TABLE {schema}.gyms ADD COLUMN IF NOT EXISTS token_generation integer NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS {schema}.auditor_tokens (
    token_id uuid PRIMARY KEY,
    gym_id uuid NOT NULL REFERENCES {schema}.gyms (id) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS auditor_tokens_gym
    ON {schema}.auditor_tokens (gym_id, granted_at DESC, token_id);
"""

# Existing logs already hold auditor grants: the migration copies them from the log
# (grants of open gyms the projector has applied; it applies later ones itself, and
# its insert ignores a row the migration wrote). Nothing was revoked before this.
# An f-string only for the log's name: the template it makes is the released text,
# byte for byte ({{schema}} and {{shared}} stay placeholders for infra/migrate.py).
CREDENTIALS_BACKFILL_SQL = f"""
INSERT INTO {{schema}}.auditor_tokens (token_id, gym_id, granted_at, expires_at)
SELECT (grant_event.data ->> 'token_id')::uuid, e.originator_id,
       (grant_event.data ->> 'timestamp')::timestamptz,
       (grant_event.data ->> 'expires_at')::timestamptz
FROM {{shared}}.{EVENTS_TABLE} e
CROSS JOIN LATERAL (SELECT convert_from(e.state, 'UTF8')::jsonb AS data) grant_event
JOIN {{schema}}.gyms g ON g.id = e.originator_id
WHERE e.topic = 'AuditorAccessGranted.v1'
ON CONFLICT (token_id) DO NOTHING;
"""  # noqa: S608 - constants only

# Revoked auditor tokens stay in a process's cache while they could still pass the
# expiry check, with this much room for clock differences between API and database.
REVOKED_KEPT_PAST_EXPIRY = "1 hour"


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
    reminder_days: int
    created_at: datetime
    updated_at: datetime


class GymAccess(msgspec.Struct, frozen=True):
    """What every authenticated request needs to know about an open gym."""

    timezone: str
    token_generation: int
    revoked_auditor_tokens: frozenset[UUID]


class AuditorTokenView(msgspec.Struct, frozen=True):
    id: UUID
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class GymsProjection(Projection):
    name = "gyms"
    tables: tuple[str, ...] = ("auditor_tokens", "gym_logins", "gyms")
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
                changed = carried_fields(event)
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
                _set_version(cur, event)
            case AuditorAccessGranted():
                _set_version(cur, event)
                cur.execute(
                    "INSERT INTO auditor_tokens (token_id, gym_id, granted_at, expires_at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (token_id) DO NOTHING",
                    (event.token_id, event.originator_id, event.timestamp, event.expires_at),
                )
            case AuditorAccessRevoked():
                _set_version(cur, event)
                cur.execute(
                    "UPDATE auditor_tokens SET revoked_at = %s"
                    " WHERE token_id = %s AND gym_id = %s AND revoked_at IS NULL",
                    (event.timestamp, event.token_id, event.originator_id),
                )
                _announce_change(cur, event.originator_id)
            case GymPasswordChanged():
                cur.execute(
                    "UPDATE gym_logins SET password_hash = %s WHERE gym_id = %s",
                    (event.password_hash, event.originator_id),
                )
                cur.execute(
                    "UPDATE gyms SET version = %s, token_generation = %s WHERE id = %s",
                    (event.originator_version, event.token_generation, event.originator_id),
                )
                # The password may have leaked: so may the auditor tokens minted with it.
                cur.execute(
                    "UPDATE auditor_tokens SET revoked_at = %s"
                    " WHERE gym_id = %s AND revoked_at IS NULL",
                    (event.timestamp, event.originator_id),
                )
                _announce_change(cur, event.originator_id)
            case GymClosed():
                cur.execute("DELETE FROM gyms WHERE id = %s", (event.originator_id,))
                _announce_change(cur, event.originator_id)


def _set_version(cur: psycopg.Cursor[TupleRow], event: DomainEvent) -> None:
    """The gym row's version, for an event that changes nothing else it shows."""
    cur.execute(
        "UPDATE gyms SET version = %s WHERE id = %s",
        (event.originator_version, event.originator_id),
    )


def _announce_change(cur: psycopg.Cursor[TupleRow], gym_id: UUID) -> None:
    # Delivered when the batch commits, before the batch's new position is announced.
    cur.execute("SELECT pg_notify(%s, %s)", (GYM_CHANGED_CHANNEL, str(gym_id)))


_GYM_COLUMNS = (
    "id, version, name, email, address, description, gym_type, monthly_fee_cents,"
    " currency, timezone, reminder_days, created_at, updated_at"
)


async def get_gym(conn: psycopg.AsyncConnection[Any], gym_id: UUID) -> GymView | None:
    async with conn.cursor(row_factory=class_row(GymView)) as cur:
        await cur.execute(f"SELECT {_GYM_COLUMNS} FROM gyms WHERE id = %s", (gym_id,))  # noqa: S608
        return await cur.fetchone()


async def open_gym_access(conn: psycopg.AsyncConnection[Any], gym_id: UUID) -> GymAccess | None:
    """Timezone, token generation and revoked auditor tokens of an open gym, in one
    round trip; None if the gym is closed or unknown."""
    cur = await conn.execute(
        "SELECT g.timezone, g.token_generation, ARRAY("
        "   SELECT a.token_id FROM auditor_tokens a WHERE a.gym_id = g.id"
        "   AND a.revoked_at IS NOT NULL AND a.expires_at > now() - %s::interval)"
        " FROM gyms g WHERE g.id = %s",
        (REVOKED_KEPT_PAST_EXPIRY, gym_id),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return GymAccess(
        timezone=str(row[0]), token_generation=int(row[1]), revoked_auditor_tokens=frozenset(row[2])
    )


async def revocation_shown_at(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, token_id: UUID, projection: str
) -> int | None:
    """The projection's position if the read model already shows the auditor token
    revoked (by its own revocation or a password change), else None. One statement,
    so the position is the one the revocation was read at (a separate
    engine.projection_position() could see a later one)."""
    cur = await conn.execute(
        "SELECT p.position FROM auditor_tokens a JOIN projector_positions p ON p.name = %s"
        " WHERE a.token_id = %s AND a.gym_id = %s AND a.revoked_at IS NOT NULL",
        (projection, token_id, gym_id),
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


class Login(msgspec.Struct, frozen=True):
    gym_id: UUID
    password_hash: str
    token_generation: int


async def find_login(conn: psycopg.AsyncConnection[Any], email: str) -> Login | None:
    """The open gym with this email: its id, password hash and the generation a token
    issued for that hash belongs to (read together, so they always match)."""
    cur = await conn.execute(
        "SELECT l.gym_id, l.password_hash, g.token_generation"
        " FROM gym_logins l JOIN gyms g ON g.id = l.gym_id WHERE l.email = %s",
        (email.strip().lower(),),
    )
    row = await cur.fetchone()
    return None if row is None else Login(row[0], row[1], int(row[2]))


async def auditor_tokens(
    conn: psycopg.AsyncConnection[Any], gym_id: UUID, limit: int, offset: int
) -> list[AuditorTokenView]:
    """The gym's auditor tokens, newest grant first."""
    async with conn.cursor(row_factory=class_row(AuditorTokenView)) as cur:
        await cur.execute(
            "SELECT token_id AS id, granted_at, expires_at, revoked_at FROM auditor_tokens"
            " WHERE gym_id = %s ORDER BY granted_at DESC, token_id LIMIT %s OFFSET %s",
            (gym_id, limit, offset),
        )
        return await cur.fetchall()


def view_of(gym: Gym) -> GymView:
    """The row this projection holds for `gym`: what a route answers from the write
    side while the projector has not caught up."""
    return msgspec.convert(gym, GymView, from_attributes=True)
